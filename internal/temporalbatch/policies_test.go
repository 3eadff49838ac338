package temporalbatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// A retry policy edited while the job runs reaches the stuck pages: they run
// again at the new stuckPageRetryInterval, counted from the change, with the
// new number of attempts, and the job succeeds without a re-drive.
func TestRetryPolicyChangeReachesStuckPages(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = time.Second
	// Page 3 fails four times: with two attempts a round it is stuck after
	// the first round and would wait an hour for its next.
	d.afterEnqueue = failCalls(3, 4, temporal.NewApplicationError("bug in the worker", "Bug"))
	in := simInput(d, 2)
	in.Retry.MaximumAttempts = 2
	in.Retry.StuckPageRetryInterval = time.Hour
	var stuck, applied *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		stuck = progressAt(env, time.Minute)
		env.RegisterDelayedCallback(func() {
			retry := in.Retry
			retry.MaximumAttempts, retry.StuckPageRetryInterval = 5, 10*time.Second
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 2, Retry: &retry})
		}, 2*time.Minute)
		applied = progressAt(env, 2*time.Minute+time.Second)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, int64(1), stuck.Pages.Stuck)
	require.Equal(t, int64(2), applied.Generation, "the edit is acknowledged")
	require.Equal(t, 5, d.callsOf(3), "two attempts, then three of the new five")
	require.Less(t, res.Progress.CompletionTime.Sub(res.Progress.StartTime), 3*time.Minute, "the stuck page ran again 10s after the edit, not after an hour")
}

// A lower maxFailedPages than the pages failed so far ends the job at once.
func TestLoweringMaxFailedPagesEndsTheJob(t *testing.T) {
	d := newSimDataSet(1000, 10)
	d.duration = 10 * time.Second
	d.afterEnqueue = corruptPages(2, 4)
	in := simInput(d, 2)
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 2, FailurePolicy: &FailurePolicy{MaxFailedPages: new(int64(1))}})
		}, 2*time.Minute)
	})
	appErr, res := failedWith(t, env, ReasonPagesFailed)
	require.Contains(t, appErr.Error(), "more than failurePolicy.maxFailedPages (1)")
	require.Less(t, res.Progress.Pages.Completed, d.pages()-2, "the job stopped without running the rest")
}

// A failure handler set while the job runs gets the failures from then on;
// one removed drops what waited for it.
func TestFailureHandlerSetWhileRunning(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	d.result = func(page int64, res *processor.PageResult) {
		res.ItemsFailed = 1
		res.ItemsProcessed--
		res.FailedItems = []processor.FailedItem{{Item: "x", Type: "Rejected"}}
	}
	sink := &simFailureSink{}
	in := simInput(d, 1)
	in.FailurePolicy = FailurePolicy{}
	env := runSim(t, d, sink, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 1, FailurePolicy: &FailurePolicy{Handler: simHandlerName}})
		}, 45*time.Second)
	})
	res := succeeded(t, env)
	got := sink.failures()
	require.NotEmpty(t, got, "the handler set at 45s got failures")
	require.Less(t, len(got), int(d.pages()), "not those recorded before it was set")
	for _, f := range got {
		require.GreaterOrEqual(t, f.Page, int64(4), "pages 0-3 completed before the handler was set")
	}
	require.Zero(t, res.Progress.Counters.HandlerDropped)
}
