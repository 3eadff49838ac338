package batchctl

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func TestPauseAndResume(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`)
	setStatus(t, job, running)

	r := run(t, "pause", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Equal(t, "batchjob "+ns+"/inflate-prices paused: no new pages start; pages in flight finish\n", r.Out)
	assert.True(t, fetch(t, job).Spec.Suspend)

	r = run(t, "pause", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Equal(t, "batchjob "+ns+"/inflate-prices is already paused\n", r.Out)

	// Until the controller applies it, get says the pause is on its way.
	r = run(t, "get", "inflate-prices", "-n", ns)
	assert.Contains(t, r.Out, "Running (pause requested)")

	r = run(t, "resume", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Equal(t, "batchjob "+ns+"/inflate-prices resumed: new pages start again, up to 4 in flight\n", r.Out)
	assert.False(t, fetch(t, job).Spec.Suspend)

	r = run(t, "resume", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "is not paused: nothing to resume")
}

func TestScale(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", "")
	setStatus(t, job, running)

	r := run(t, "scale", "inflate-prices", "-n", ns, "--parallelism", "20")
	require.Equal(t, 0, r.Code, r.Err)
	assert.Equal(t, "batchjob "+ns+"/inflate-prices scaled: parallelism 4 -> 20: up to 20 pages in flight\n", r.Out)
	require.NotNil(t, fetch(t, job).Spec.Parallelism)
	assert.Equal(t, int32(20), *fetch(t, job).Spec.Parallelism)

	r = run(t, "scale", "inflate-prices", "-n", ns, "--parallelism", "0")
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "parallelism 20 -> 0: no new pages start")
	assert.Equal(t, int32(0), *fetch(t, job).Spec.Parallelism)

	// get shows that the spec asks for more than the workflow applied.
	r = run(t, "get", "inflate-prices", "-n", ns)
	assert.Contains(t, r.Out, "(spec asks for 0; not applied yet)")
}

func TestScaleRejectsBadParallelism(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", "")
	before := fetch(t, job)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--parallelism", "10001"}, "error: --parallelism must be between 0 and 10000, got 10001\n"},
		{[]string{"--parallelism", "-1"}, "error: --parallelism must be between 0 and 10000, got -1\n"},
		{[]string{"--parallelism", "99999999999"}, "error: --parallelism must be between 0 and 10000, got 99999999999\n"},
		{nil, "error: --parallelism is required: kubectl batch scale inflate-prices --parallelism N\n"},
	} {
		r := run(t, append([]string{"scale", "inflate-prices", "-n", ns}, tc.args...)...)
		assert.Equal(t, 1, r.Code, tc.args)
		assert.Equal(t, tc.want, r.Err, tc.args)
		assert.Empty(t, r.Out)
	}
	r := run(t, "scale", "inflate-prices", "-n", ns, "--parallelism", "many")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Err, `invalid argument "many" for "--parallelism" flag`)
	assert.Contains(t, r.Err, "See 'kubectl batch scale --help' for usage")

	after := fetch(t, job)
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing was written")
}

func TestScaleSurfacesAdmissionErrors(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "ramped", "")
	// rampUp.from may not exceed parallelism; the API server says so.
	require.NoError(t, k8s.Patch(t.Context(), job, rawMerge(`{"spec":{"parallelism":8,"rampUp":{"from":6,"every":"30s"}}}`)))
	r := run(t, "scale", "ramped", "-n", ns, "--parallelism", "5")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Err, "spec.rampUp.from must not exceed spec.parallelism")
}

func TestRedrive(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`)
	setStatus(t, job, failed)

	before := time.Now().UTC()
	r := run(t, "redrive", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	first := fetch(t, job).Annotations[batchv1alpha1.AnnotationRedrive]
	require.NotEmpty(t, first)
	at, err := time.Parse(time.RFC3339Nano, first)
	require.NoError(t, err, "the value is an RFC 3339 time")
	assert.False(t, at.Before(before.Truncate(time.Second)), "the value is the current time")
	assert.Len(t, first, len("2006-01-02T15:04:05.000000000Z"), "the time has nanoseconds")
	assert.Equal(t, "batchjob "+ns+"/inflate-prices re-drive requested ("+batchv1alpha1.AnnotationRedrive+"="+first+
		"): its 2 failed pages run again with a fresh retry budget\n", r.Out)

	// Each re-drive is a new value: the controller acts on each once.
	r = run(t, "redrive", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	second := fetch(t, job).Annotations[batchv1alpha1.AnnotationRedrive]
	assert.NotEqual(t, first, second)

	r = run(t, "get", "inflate-prices", "-n", ns)
	assert.Contains(t, r.Out, second+" (requested, not acted on yet)")
}

func TestRedriveSucceededJob(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	clean := newJob(t, ns, "clean", "")
	setStatus(t, clean, succeeded)

	r := run(t, "redrive", "clean", "-n", ns)
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "error: batchjob "+ns+"/clean succeeded with no failed pages: there is nothing to re-drive\n", r.Err)
	assert.Empty(t, fetch(t, clean).Annotations[batchv1alpha1.AnnotationRedrive])

	// A job may succeed with failed pages listed (failurePolicy.toleratedFailedPages).
	withFailures := newJob(t, ns, "with-failures", "")
	setStatus(t, withFailures, func(st *batchv1alpha1.BatchJobStatus) {
		succeeded(st)
		st.Pages.Failed = 1
	})
	r = run(t, "redrive", "with-failures", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "its failed page runs again")
	assert.NotEmpty(t, fetch(t, withFailures).Annotations[batchv1alpha1.AnnotationRedrive])
}

func TestSteeringAFinishedJobIsRefused(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	done := newJob(t, ns, "done", "")
	setStatus(t, done, succeeded)
	broken := newJob(t, ns, "broken", "")
	setStatus(t, broken, failed)
	doneBefore, brokenBefore := fetch(t, done), fetch(t, broken)

	for _, verb := range []string{"pause", "resume", "scale"} {
		args := []string{verb, "done", "-n", ns}
		if verb == "scale" {
			args = append(args, "--parallelism", "3")
		}
		r := run(t, args...)
		assert.Equal(t, 1, r.Code, verb)
		assert.Equal(t, "error: batchjob "+ns+"/done has already succeeded: there is nothing to "+verb+"\n", r.Err)

		args[1] = "broken"
		r = run(t, args...)
		assert.Equal(t, 1, r.Code, verb)
		assert.Equal(t, "error: batchjob "+ns+"/broken has already failed: there is nothing to "+verb+
			"; 'kubectl batch redrive broken -n "+ns+"' runs its failed pages again\n", r.Err)
	}
	assert.Equal(t, doneBefore.ResourceVersion, fetch(t, done).ResourceVersion, "nothing was written")
	assert.Equal(t, brokenBefore.ResourceVersion, fetch(t, broken).ResourceVersion, "nothing was written")
}

func TestSteeringAMissingJob(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	for _, args := range [][]string{
		{"pause", "x"}, {"resume", "x"}, {"scale", "x", "--parallelism", "2"}, {"redrive", "x"}, {"watch", "x"}, {"get", "x"},
	} {
		r := run(t, append(args, "-n", ns)...)
		assert.Equal(t, 1, r.Code, args)
		assert.Equal(t, "error: batchjob \"x\" not found in namespace \""+ns+"\"\n", r.Err, strings.Join(args, " "))
		assert.Empty(t, r.Out)
	}
}
