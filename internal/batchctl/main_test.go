package batchctl

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
	"github.com/temporal-batch/temporal-batch/internal/scheme"
)

// The envtest tests run the commands in-process against a real
// kube-apiserver and etcd with the BatchJob CRD. No controller runs: the
// tests write status themselves, as the controller would.

var (
	testEnv *envtest.Environment
	k8s     client.WithWatch
)

// waitFor bounds every wait on the control plane; generous because other
// suites share the machine.
const waitFor = 60 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	logf.SetLogger(logr.Discard())
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(runWithControlPlane(m))
}

func runWithControlPlane(m *testing.M) int {
	assets, err := envtestAssets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()
	k8s, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		fmt.Fprintf(os.Stderr, "client: %v\n", err)
		return 1
	}
	return m.Run()
}

// envtestAssets finds kube-apiserver, etcd and kubectl: $KUBEBUILDER_ASSETS,
// or bin/k8s-* of the repository.
func envtestAssets() (string, error) {
	root, err := localenv.RepoRoot()
	if err != nil {
		return "", err
	}
	return localenv.KubeAssets(root)
}

// controlPlane skips a test that needs the control plane under -short.
func controlPlane(t *testing.T) {
	t.Helper()
	if k8s == nil {
		t.Skip("needs kube-apiserver and etcd (envtest); skipped with -short")
	}
}

// syncBuffer is a bytes.Buffer that a command running in a goroutine writes
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is the outcome of one command line.
type result struct {
	Out, Err string
	Code     int
}

// run runs kubectl batch with args in-process against the control plane.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, k8s, args...)
}

func runWith(t *testing.T, c client.WithWatch, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	code := Run(ctx, args, Options{
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Client:    c,
	})
	return result{Out: out.String(), Err: errOut.String(), Code: code}
}

// background runs a command in a goroutine; wait returns its result.
type background struct {
	out, errOut syncBuffer
	done        chan int
}

func runInBackground(t *testing.T, c client.WithWatch, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	b := &background{done: make(chan int, 1)}
	go func() {
		defer cancel()
		b.done <- Run(ctx, args, Options{
			IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &b.out, ErrOut: &b.errOut},
			Client:    c,
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

func (b *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case code := <-b.done:
		b.done <- code // for the cleanup
		return result{Out: b.out.String(), Err: b.errOut.String(), Code: code}
	case <-time.After(2 * waitFor):
		t.Fatalf("the command did not finish in %s; output so far:\n%s\n%s", 2*waitFor, b.out.String(), b.errOut.String())
		return result{}
	}
}

// waitOutput waits until the command printed s.
func (b *background) waitOutput(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(b.out.String(), s) }, waitFor, 20*time.Millisecond,
		"the command did not print %q; it printed:\n%s\n%s", s, b.out.String(), b.errOut.String())
}

var nsCounter atomic.Int32

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("kb-%d-%d", os.Getpid()%10000, nsCounter.Add(1))
	require.NoError(t, k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

// newJob creates a BatchJob of the synthetic processor; args are its
// spec.processor.args as JSON ("" for none); mods change the spec before.
func newJob(t *testing.T, ns, name, args string, mods ...func(*batchv1alpha1.BatchJobSpec)) *batchv1alpha1.BatchJob {
	t.Helper()
	parallelism := int32(4)
	job := &batchv1alpha1.BatchJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1alpha1.BatchJobSpec{
			TaskQueue:   "jobs",
			Processor:   batchv1alpha1.ProcessorSpec{Name: "synthetic", PageSize: 100},
			Parallelism: &parallelism,
		},
	}
	if args != "" {
		job.Spec.Processor.Args = &apiextensionsv1.JSON{Raw: []byte(args)}
	}
	for _, m := range mods {
		m(&job.Spec)
	}
	require.NoError(t, k8s.Create(context.Background(), job))
	return job
}

// setStatus writes the job's status as the controller would.
func setStatus(t *testing.T, job *batchv1alpha1.BatchJob, mutate func(*batchv1alpha1.BatchJobStatus)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current := &batchv1alpha1.BatchJob{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), current); err != nil {
			return err
		}
		mutate(&current.Status)
		current.Status.ObservedGeneration = current.Generation
		return k8s.Status().Update(context.Background(), current)
	})
	require.NoError(t, err)
}

// fetch reads the job as stored.
func fetch(t *testing.T, job *batchv1alpha1.BatchJob) *batchv1alpha1.BatchJob {
	t.Helper()
	current := &batchv1alpha1.BatchJob{}
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(job), current))
	return current
}

func cond(t, status, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

// running is the status of a job part way through 10,000 items.
func running(st *batchv1alpha1.BatchJobStatus) {
	start := metav1.NewTime(time.Now().Add(-time.Minute))
	st.Phase = batchv1alpha1.PhaseRunning
	st.StartTime = &start
	st.Workflow = &batchv1alpha1.WorkflowRef{Namespace: "default", ID: "batchjob/shop/inflate-prices/1234", RunID: "run-1"}
	st.Parallelism = batchv1alpha1.ParallelismStatus{Desired: 4, Effective: 4, MaxAchieved: 4}
	st.Pages = batchv1alpha1.PageStatus{Completed: 42, InFlight: 4, Pending: 1}
	st.Items = batchv1alpha1.ItemStatus{Processed: 4200, Failed: 3}
	st.ItemsPerSecond = "812.5"
	at := metav1.NewTime(time.Now().Add(-10 * time.Second))
	st.Failures = &batchv1alpha1.FailureStatus{
		ByType:         map[string]int64{"InvalidRecord": 3},
		HandlerDropped: 2,
		Recent: []batchv1alpha1.FailureRecord{
			{Page: 17, Cursor: "1700", Item: "sku-991", Type: "InvalidRecord", Message: "price is negative", Time: &at},
		},
	}
	st.Conditions = []metav1.Condition{
		cond(batchv1alpha1.ConditionProgressing, "True", batchv1alpha1.ReasonRunning, "pages are running"),
		cond(batchv1alpha1.ConditionReady, "True", batchv1alpha1.ReasonAccepted, "the workflow runs"),
	}
}

// withCursors gives a job two chains and a lookahead of 2.
func withCursors(spec *batchv1alpha1.BatchJobSpec) {
	lookahead := int32(2)
	spec.Processor.Cursors = []string{"0:5000", "5000:10000"}
	spec.Processor.Lookahead = &lookahead
}

// chainBoundRunning is a running job of two chains, one done, that the chains hold
// below its parallelism, as the controller reports it.
func chainBoundRunning(st *batchv1alpha1.BatchJobStatus) {
	running(st)
	st.Chains = &batchv1alpha1.ChainStatus{Total: 2, Done: 1, Lookahead: 2}
	st.Pages.InFlight, st.Pages.Pending, st.Pages.MeanInFlight = 1, 0, "0.6"
	st.Conditions[0] = cond(batchv1alpha1.ConditionProgressing, "True", batchv1alpha1.ReasonChainBound,
		"pages in flight averaged 0.6 of 4 slots while no page was waiting: the 2 chains set the pace; "+
			"raise spec.processor.lookahead (now 2) or split the data into more spec.processor.cursors")
}

func succeeded(st *batchv1alpha1.BatchJobStatus) {
	running(st)
	done := metav1.Now()
	st.Phase = batchv1alpha1.PhaseSucceeded
	st.CompletionTime = &done
	st.Pages = batchv1alpha1.PageStatus{Completed: 100}
	st.Items = batchv1alpha1.ItemStatus{Processed: 9997, Failed: 3}
	st.Parallelism.Effective = 0
	st.Conditions = []metav1.Condition{
		cond(batchv1alpha1.ConditionComplete, "True", batchv1alpha1.ReasonCompleted, "every page finished"),
		cond(batchv1alpha1.ConditionProgressing, "False", batchv1alpha1.ReasonFinished, "the job finished"),
	}
}

func failed(st *batchv1alpha1.BatchJobStatus) {
	running(st)
	done := metav1.Now()
	st.Phase = batchv1alpha1.PhaseFailed
	st.CompletionTime = &done
	st.Pages = batchv1alpha1.PageStatus{Completed: 97, Failed: 2}
	st.Parallelism.Effective = 0
	st.Conditions = []metav1.Condition{
		cond(batchv1alpha1.ConditionFailed, "True", batchv1alpha1.ReasonPagesFailed, "2 pages failed for good, more than failurePolicy.maxFailedPages (1)"),
		cond(batchv1alpha1.ConditionProgressing, "False", batchv1alpha1.ReasonFinished, "the job finished"),
	}
}

// rawMerge is a JSON merge patch.
func rawMerge(patch string) client.Patch {
	return client.RawPatch(types.MergePatchType, []byte(patch))
}
