package temporalbatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

func corruptPage(page int64) error {
	return temporal.NewNonRetryableApplicationError("bad rows", "Corrupt", nil)
}

func TestRedriveRequeuesFailedPagesWithAFreshBudget(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	// Page 3 fails for good the first time only, after enqueuing page 4.
	d.afterEnqueue = failCalls(3, 1, corruptPage(3))
	in := simInput(d, 1)
	var failed *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		failed = progressAt(env, 45*time.Second)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalRedrive, RedriveRequest{ID: "2026-11-28T10:00:00Z"})
		}, 55*time.Second)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	require.Equal(t, int64(1), failed.Pages.Failed)
	require.Len(t, failed.FailedPages, 1)
	require.Equal(t, int64(3), failed.FailedPages[0].Number)

	p := res.Progress
	require.Zero(t, p.Pages.Failed)
	require.Empty(t, p.FailedPages)
	require.Equal(t, "2026-11-28T10:00:00Z", p.LastRedrive)
	require.Equal(t, 2, d.callsOf(3))
	require.Equal(t, map[string]int64{"Corrupt": 1}, p.ByType, "the failure stays in the record")
}

func TestRedriveIDActsOnce(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	d.afterEnqueue = failCalls(3, 2, corruptPage(3))
	in := simInput(d, 1)
	var afterRepeat *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		redrive := func(id string, at time.Duration) {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRedrive, RedriveRequest{ID: id}) }, at)
		}
		redrive("first", 55*time.Second) // page 3 runs again at 60s and fails again
		redrive("first", 65*time.Second) // the same request: nothing happens
		afterRepeat = progressAt(env, 75*time.Second)
		redrive("second", 85*time.Second) // a new request: page 3 runs a third time
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	require.Equal(t, int64(1), afterRepeat.Pages.Failed, "a repeated re-drive ID does not re-queue")
	require.Equal(t, "first", afterRepeat.LastRedrive)
	require.Equal(t, 3, d.callsOf(3))
	require.Equal(t, "second", res.Progress.LastRedrive)
	require.Empty(t, res.Progress.FailedPages)
	require.Equal(t, map[string]int64{"Corrupt": 1}, res.Progress.ByType, "the re-driven page counts once")
	require.Equal(t, int64(2), res.Progress.Counters.FailedAttempts)
}

func TestRedriveOfAClosedJob(t *testing.T) {
	t.Run("a broken chain", func(t *testing.T) {
		d := newSimDataSet(100, 10)
		d.duration = 10 * time.Second
		// The frontier fails for good before enqueuing, the first time only.
		d.beforeEnqueue = failCalls(4, 1, corruptPage(4))
		in := simInput(d, 3)
		env := runSim(t, d, nil, in, nil)
		_, broken := failedWith(t, env, ReasonChainBroken)
		require.Equal(t, int64(4), broken.Progress.Pages.Completed)

		next := broken.Next
		next.Redrive = "fix-1"
		env = runSim(t, d, nil, next, nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)

		p := res.Progress
		require.Equal(t, int64(100), p.Items.Processed, "no page counted twice")
		require.Equal(t, 2, p.Runs)
		require.Equal(t, "fix-1", p.LastRedrive)
		require.Equal(t, broken.Progress.StartTime, p.StartTime, "the job's start time carries over")
		require.Empty(t, p.FailedPages)
		require.Equal(t, 2, d.callsOf(4))
		for page := range d.pages() {
			if page != 4 {
				require.Equal(t, 1, d.callsOf(page), "page %d", page)
			}
		}

		// Starting again with the same re-drive ID does nothing: the chain is
		// still broken if the page failed again.
		d2 := newSimDataSet(100, 10)
		d2.beforeEnqueue = failCalls(4, -1, corruptPage(4))
		env = runSim(t, d2, nil, simInput(d2, 1), nil)
		_, broken = failedWith(t, env, ReasonChainBroken)
		next = broken.Next
		next.Redrive = "fix-1"
		env = runSim(t, d2, nil, next, nil)
		_, again := failedWith(t, env, ReasonChainBroken)
		require.Equal(t, 2, d2.callsOf(4))
		next = again.Next
		next.Redrive = "fix-1"
		env = runSim(t, d2, nil, next, nil)
		failedWith(t, env, ReasonChainBroken)
		require.Equal(t, 2, d2.callsOf(4), "the same re-drive ID does not run the page again")
	})

	t.Run("failed pages at the end", func(t *testing.T) {
		// Without maxFailedPages the job runs to its end, then fails for
		// its failed pages; a re-drive once the cause is fixed succeeds.
		d := newSimDataSet(100, 10)
		d.duration = 10 * time.Second
		d.afterEnqueue = func(page int64, call int) error {
			if (page == 2 || page == 5) && call == 1 {
				return corruptPage(page)
			}
			return nil
		}
		in := simInput(d, 2)
		env := runSim(t, d, nil, in, nil)
		failed := pagesFailed(t, env)
		require.Equal(t, d.pages()-2, failed.Progress.Pages.Completed)
		require.Equal(t, int64(2), failed.Progress.Pages.Failed)

		next := failed.Next
		next.Redrive = "fix-1"
		env = runSim(t, d, nil, next, nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)
		p := res.Progress
		require.Equal(t, int64(100), p.Items.Processed, "no page counted twice")
		require.Equal(t, 2, p.Runs)
		require.Equal(t, "fix-1", p.LastRedrive)
		require.Equal(t, failed.Progress.StartTime, p.StartTime)
		require.Zero(t, p.Pages.Failed)
		require.Contains(t, p.Message, "0 pages failed")
		require.Equal(t, map[string]int64{"Corrupt": 2}, p.ByType)
		for page := range d.pages() {
			want := 1
			if page == 2 || page == 5 {
				want = 2
			}
			require.Equal(t, want, d.callsOf(page), "page %d", page)
		}
	})

	t.Run("too many failed pages", func(t *testing.T) {
		d := newSimDataSet(100, 10)
		d.afterEnqueue = func(page int64, call int) error {
			if (page == 2 || page == 5) && call == 1 {
				return corruptPage(page)
			}
			return nil
		}
		in := simInput(d, 1)
		in.FailurePolicy.MaxFailedPages = new(int64)
		env := runSim(t, d, nil, in, nil)
		_, failed := failedWith(t, env, ReasonPagesFailed)
		require.Equal(t, int64(2), failed.Progress.Pages.Completed)

		next := failed.Next
		next.Redrive = "fix-1"
		env = runSim(t, d, nil, next, nil)
		// Page 5 fails on its first run too, in the second run: the job
		// fails again, and a second re-drive finishes it.
		_, failed = failedWith(t, env, ReasonPagesFailed)
		require.Equal(t, int64(1), failed.Progress.Pages.Failed)
		require.Equal(t, int64(5), failed.Progress.FailedPages[0].Number)

		next = failed.Next
		next.Redrive = "fix-2"
		env = runSim(t, d, nil, next, nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)
		require.Equal(t, 3, res.Progress.Runs)
		require.Equal(t, int64(2), res.Progress.ByType["Corrupt"])
	})
}

func TestRedriveOfABrokenChainWhileOtherPagesRun(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	d.beforeEnqueue = failCalls(4, 1, corruptPage(4))
	var broken *Progress
	env := runSim(t, d, nil, simInput(d, 8), func(env *testsuite.TestWorkflowEnvironment) {
		broken = progressAt(env, 2*time.Second)
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRedrive, RedriveRequest{ID: "fix"}) }, 5*time.Second)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, StateRunning, broken.State, "the job waits for its pages in flight")
	require.Equal(t, int64(1), broken.Pages.Failed)
	require.Equal(t, int64(4), broken.Pages.InFlight)
	require.Equal(t, 2, d.callsOf(4))
}

func TestRedriveRetriesStuckPagesAtOnce(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(3, 2, flaky(3))
	in := simInput(d, 1)
	in.Retry.MaximumAttempts = 2
	in.Retry.StuckPageRetryInterval = time.Hour
	var start time.Time
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		start = env.Now()
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRedrive, RedriveRequest{ID: "now"}) }, 5*time.Minute)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, 3, d.callsOf(3))
	require.NotNil(t, res.Progress.CompletionTime)
	require.Equal(t, 5*time.Minute, res.Progress.CompletionTime.Sub(start), "the stuck page ran on re-drive, not an hour later")
}
