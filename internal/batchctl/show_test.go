package batchctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func TestGetShowsProgressFailuresAndConditions(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`)
	setStatus(t, job, running)

	r := run(t, "get", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	for _, want := range []string{
		"Phase:", "Running",
		"42%", "|", "4,200 of 10,000 items processed, 3 failed",
		"42 completed, 4 in flight, 1 pending",
		"812.5 items/s",
		// (10,000 - 4,203) items at 812.5 items/s.
		"ETA:", "7s",
		"4 in effect of 4 desired",
		"batchjob/shop/inflate-prices/1234",
		"Failures by type:", "InvalidRecord",
		"Failure handler: 2 failures not accepted within spec.failurePolicy.handlerTimeout",
		"Recent failures", "sku-991", "price is negative",
		"Conditions:", "Progressing", "Accepted",
	} {
		assert.Contains(t, r.Out, want)
	}
}

func TestGetWithoutDataSetSizeEstimatesNothing(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "unsized", `{"percent": 3}`)
	setStatus(t, job, running)

	r := run(t, "get", "unsized", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "4,200 items processed, 3 failed (size of the data set unknown)")
	assert.Contains(t, r.Out, "unknown: the size of the data set is not known")
	assert.NotContains(t, r.Out, "%")
}

func TestGetNewJobShowsPending(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	newJob(t, ns, "fresh", `{"totalItems": 500}`)

	r := run(t, "get", "fresh", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "Pending")
	assert.Contains(t, r.Out, "0%")
	assert.Contains(t, r.Out, "not started yet")
	assert.Contains(t, r.Out, "Failures: none")
}

func TestGetOutputJSONAndYAML(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "as-json", `{"totalItems": 10000}`)
	setStatus(t, job, running)

	r := run(t, "get", "as-json", "-n", ns, "-o", "json")
	require.Equal(t, 0, r.Code, r.Err)
	var got batchv1alpha1.BatchJob
	require.NoError(t, json.Unmarshal([]byte(r.Out), &got), r.Out)
	assert.Equal(t, "BatchJob", got.Kind)
	assert.Equal(t, batchv1alpha1.GroupVersion.String(), got.APIVersion)
	assert.Equal(t, "as-json", got.Name)
	assert.Equal(t, int64(4200), got.Status.Items.Processed)
	assert.Empty(t, got.ManagedFields, "managed fields are left out like kubectl does")

	r = run(t, "get", "as-json", "-n", ns, "-o", "yaml")
	require.Equal(t, 0, r.Code, r.Err)
	require.NoError(t, yaml.Unmarshal([]byte(r.Out), &got))
	assert.Equal(t, "as-json", got.Name)

	r = run(t, "get", "as-json", "-n", ns, "-o", "jsonpath={.status.phase}")
	require.Equal(t, 0, r.Code, r.Err)
	assert.Equal(t, "Running", r.Out)

	r = run(t, "get", "as-json", "-n", ns, "-o", "xml")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Err, `unable to match a printer suitable for the output format "xml"`)
}

func TestGetMissingJob(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	r := run(t, "get", "nope", "-n", ns)
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "error: batchjob \"nope\" not found in namespace \""+ns+"\"\n", r.Err)

	r = run(t, "get", "-n", ns)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Err, "a job name is required: kubectl batch get NAME")
}

func TestList(t *testing.T) {
	controlPlane(t)
	ns, other := newNamespace(t), newNamespace(t)
	sized := newJob(t, ns, "sized", `{"totalItems": 10000}`)
	setStatus(t, sized, running)
	newJob(t, ns, "unsized", "")
	newJob(t, other, "elsewhere", `{"totalItems": 10}`)

	r := run(t, "list", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	lines := strings.Split(strings.TrimSpace(r.Out), "\n")
	require.Len(t, lines, 3, r.Out)
	assert.Equal(t, []string{"NAME", "PHASE", "PROGRESS", "RATE", "AGE"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"sized", "Running", "4,200/10,000", "(42%)", "812.5/s"}, strings.Fields(lines[1])[:5])
	assert.Equal(t, []string{"unsized", "Pending", "0", "-"}, strings.Fields(lines[2])[:4])
	assert.NotContains(t, r.Out, "elsewhere")

	r = run(t, "list", "-A")
	require.Equal(t, 0, r.Code, r.Err)
	assert.True(t, strings.HasPrefix(r.Out, "NAMESPACE"), r.Out)
	assert.Contains(t, r.Out, other)
	assert.Contains(t, r.Out, "elsewhere")
	assert.Contains(t, r.Out, "sized")

	r = run(t, "list", "-n", ns, "-o", "json")
	require.Equal(t, 0, r.Code, r.Err)
	var list batchv1alpha1.BatchJobList
	require.NoError(t, json.Unmarshal([]byte(r.Out), &list), r.Out)
	require.Len(t, list.Items, 2)
	assert.Equal(t, "sized", list.Items[0].Name)
	assert.Equal(t, "BatchJob", list.Items[0].Kind)

	empty := newNamespace(t)
	r = run(t, "list", "-n", empty)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Empty(t, r.Out)
	assert.Contains(t, r.Err, "No batchjobs found in namespace \""+empty+"\"")
}

func TestKubeconfigFlags(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	newJob(t, ns, "via-kubeconfig", "")

	user, err := testEnv.AddUser(envtest.User{Name: "kubectl-batch-test", Groups: []string{"system:masters"}}, nil)
	require.NoError(t, err)
	raw, err := user.KubeConfig()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, raw, 0o600))

	// No client given: the command builds its own from --kubeconfig.
	r := runWith(t, nil, "--kubeconfig", path, "list", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "via-kubeconfig")

	r = runWith(t, nil, "--kubeconfig", path, "--context", "no-such-context", "list", "-n", ns)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Err, "no-such-context")
}

func TestCompletion(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	newJob(t, ns, "alpha", "")
	newJob(t, ns, "beta", "")

	r := run(t, "__complete", "-n", ns, "get", "")
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "alpha\tPending")
	assert.Contains(t, r.Out, "beta\tPending")

	r = run(t, "__complete", "-n", ns, "scale", "al")
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "alpha")
	assert.NotContains(t, r.Out, "beta")

	r = run(t, "__complete", "get", "-n", ns[:len(ns)-1])
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, ns)

	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r = run(t, "completion", shell)
		require.Equal(t, 0, r.Code, r.Err)
		assert.Contains(t, r.Out, "kubectl-batch", shell)
	}
}

func TestGetShowsChainsLookaheadAndChainBound(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "two-chains", `{"totalItems": 10000}`, withCursors)
	setStatus(t, job, chainBoundRunning)

	r := run(t, "get", "two-chains", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	for _, want := range []string{
		"Occupancy:", "0.6 pages in flight on average of 4 slots (last window)",
		"Chains:", "1 of 2 done",
		"Lookahead:", "2 (spec.processor.lookahead)",
		"Chain-bound:", "the chains set the pace, not the parallelism: raise spec.processor.lookahead or split the data with spec.processor.cursors",
		"ChainBound",
	} {
		assert.Contains(t, r.Out, want)
	}
}

func TestGetOneChainFollowingTheParallelism(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "one-chain", `{"totalItems": 10000}`)
	setStatus(t, job, func(st *batchv1alpha1.BatchJobStatus) {
		running(st)
		st.Chains = &batchv1alpha1.ChainStatus{Total: 1, Lookahead: 8}
		st.Pages.MeanInFlight = "3.9"
	})

	r := run(t, "get", "one-chain", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "Lookahead:")
	assert.Contains(t, r.Out, "8 (follows the effective parallelism)")
	assert.Contains(t, r.Out, "3.9 pages in flight on average of 4 slots")
	assert.NotContains(t, r.Out, "Chains:", "one chain: the progress says it all")
	assert.NotContains(t, r.Out, "Chain-bound:")
}

func TestPagesTextNamesIgnoredAndUnknownPages(t *testing.T) {
	p := progress{Pages: batchv1alpha1.PageStatus{Completed: 30, Failed: 2, Unknown: 1, Ignored: 3}}
	assert.Equal(t, "30 completed, 0 in flight, 2 failed, 1 of them with an unknown outcome (AtMostOnce: re-driven only with --include-unknown), "+
		"3 of the completed ignored by a failure rule (their items count as failed)", p.PagesText())
}
