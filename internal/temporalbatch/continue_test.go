package temporalbatch

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

func TestContinueAsNewAfterInFlightPagesDrained(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	in := simInput(d, 2)
	in.ContinueAsNewAfterPages = 3
	env := runSim(t, d, nil, in, nil)

	// Pages 0 and 1 ran from 0s, 2 and 3 from 10s; page 2 completing at 20s
	// made three, and page 3, in flight then, completed before the run ended.
	next := continuedAsNew(t, env)
	st := next.State
	require.NotNil(t, st)
	require.Equal(t, int64(4), st.Counters.PagesCompleted)
	require.Equal(t, int64(40), st.Counters.ItemsProcessed)
	require.Equal(t, []Page{{Number: 4, Cursor: "40"}}, queued(st), "the page enqueued meanwhile waits in the carried state")
	require.Equal(t, int64(4), st.Chains[0].Frontier)
	require.Equal(t, 1, st.Runs)
	require.Len(t, d.startsSnapshot(), 4, "no page started while draining")
	require.Empty(t, next.Redrive)
	require.Equal(t, in.Processor, next.Processor)
	require.Equal(t, in.Desired, next.Desired)

	p := queryProgress(t, env)
	require.Zero(t, p.Pages.InFlight)
	require.Equal(t, int64(4), p.Pages.Completed)

	// The following runs finish the job with exact totals.
	runs := 1
	for {
		runs++
		require.Less(t, runs, 10)
		env = runSim(t, d, nil, next, nil)
		if env.GetWorkflowError() == nil {
			break
		}
		next = continuedAsNew(t, env)
		require.Equal(t, runs, next.State.Runs)
	}
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, runs, res.Progress.Runs)
	require.Equal(t, 2, res.Progress.Parallelism.MaxAchieved)
	for page := range d.pages() {
		require.Equal(t, 1, d.callsOf(page), "page %d runs once over all runs", page)
	}
}

func TestContinueAsNewWhenTemporalSuggestsIt(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	env := runSim(t, d, nil, simInput(d, 2), func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 15*time.Second)
	})
	next := continuedAsNew(t, env)
	// The pages started at 10s finished at 20s; nothing started after 15s.
	require.Equal(t, int64(4), next.State.Counters.PagesCompleted)
	require.Len(t, d.startsSnapshot(), 4)

	env = runSim(t, d, nil, next, nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, 2, res.Progress.Runs)
}

// carriedStateSize runs a job of the given number of pages to its end,
// continuing as new every few pages, and returns the largest carried state.
// With timed, pages take time and some fail once, so that the rate samples
// and the failure samples fill up.
func carriedStateSize(t *testing.T, pages int, timed bool) int {
	t.Helper()
	d := newSimDataSet(pages*10, 10)
	d.result = func(page int64, res *processor.PageResult) {
		res.FailedItems = []processor.FailedItem{{Item: "sku-" + d.cursor(page), Type: "InvalidRecord", Message: "no price"}}
		res.ItemsFailed = 1
		res.ItemsProcessed--
	}
	if timed {
		d.duration = 10 * time.Second
		d.afterEnqueue = func(page int64, call int) error {
			if page%7 == 3 && call == 1 {
				return flaky(page)
			}
			return nil
		}
	}
	in := simInput(d, 2)
	in.ContinueAsNewAfterPages = 3
	largest := 0
	for runs := 1; ; runs++ {
		require.Less(t, runs, pages)
		env := runSim(t, d, nil, in, nil)
		if env.GetWorkflowError() == nil {
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)
			require.Equal(t, int64(pages), res.Progress.Items.Failed)
			return largest
		}
		in = continuedAsNew(t, env)
		b, err := json.Marshal(in.State)
		require.NoError(t, err)
		largest = max(largest, len(b))
	}
}

func TestCarriedStateDoesNotGrowWithPages(t *testing.T) {
	t.Run("instant pages", func(t *testing.T) {
		// 20 pages are enough to fill the recent failures.
		small, large := carriedStateSize(t, 20, false), carriedStateSize(t, 200, false)
		t.Logf("carried state: %d bytes for 20 pages, %d bytes for 200 pages", small, large)
		// Counters and cursors have more digits; nothing else may grow.
		require.InDelta(t, small, large, 64)
	})
	t.Run("pages taking time, with failures", func(t *testing.T) {
		// Both runs fill the bounded rate and failure samples.
		small, large := carriedStateSize(t, 200, true), carriedStateSize(t, 1000, true)
		t.Logf("carried state: %d bytes for 200 pages, %d bytes for 1000 pages", small, large)
		require.Less(t, large, 8<<10)
		require.InDelta(t, small, large, 64)
	})
}

func TestCancellationReturnsTheResultSoFar(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	env := runSim(t, d, nil, simInput(d, 2), func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(env.CancelWorkflow, 25*time.Second)
	})

	err := env.GetWorkflowError()
	require.Error(t, err)
	var canErr *temporal.CanceledError
	require.True(t, errors.As(err, &canErr), "want a cancellation, got %v", err)
	require.True(t, canErr.HasDetails())
	var res Result
	require.NoError(t, canErr.Details(&res))

	p := res.Progress
	require.Equal(t, StateCancelled, p.State)
	require.Equal(t, ReasonCancelled, p.Reason)
	require.NotNil(t, p.CompletionTime)
	require.Equal(t, int64(4), p.Pages.Completed, "pages 0-3 completed; 4 and 5 were in flight")
	require.Equal(t, int64(40), p.Items.Processed)
	require.Zero(t, p.Pages.InFlight)
	require.Equal(t, []Page{{Number: 4, Cursor: "40"}, {Number: 5, Cursor: "50"}, {Number: 6, Cursor: "60"}}, queued(res.Next.State),
		"the cancelled pages and the one they enqueued wait, oldest first")

	// The Result re-drives the job: the rest runs, nothing is counted twice.
	next := res.Next
	next.Redrive = "after-cancel"
	env = runSim(t, d, nil, next, nil)
	done := succeeded(t, env)
	requireCompleteJob(t, d, done.Progress)
	require.Equal(t, int64(100), done.Progress.Items.Processed)
	for page := range d.pages() {
		want := 1
		if page == 4 || page == 5 {
			want = 2 // cancelled in flight, then run again
		}
		require.Equal(t, want, d.callsOf(page), "page %d", page)
	}
}

func TestSignalsWhileDrainingAreCarriedToTheNextRun(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.pageDuration = func(page int64) time.Duration {
		if page == 4 {
			return 30 * time.Second
		}
		return 10 * time.Second
	}
	d.afterEnqueue = failCalls(1, 1, corruptPage(1))
	in := simInput(d, 2)
	in.ContinueAsNewAfterPages = 3
	var draining *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		// Pages 0 and 2 completed at 10s, page 3 at 20s: the run drains
		// until page 4 completes at 40s.
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 3})
			env.SignalWorkflow(SignalRedrive, RedriveRequest{ID: "during-drain"})
		}, 30*time.Second)
		draining = progressAt(env, 35*time.Second)
	})
	require.Equal(t, int64(1), draining.Pages.InFlight)
	require.Equal(t, int64(2), draining.Generation)

	next := continuedAsNew(t, env)
	st := next.State
	require.Equal(t, int64(2), st.Applied.Generation)
	require.Equal(t, 3, st.Applied.Parallelism)
	require.Equal(t, "during-drain", st.LastRedrive)
	require.Empty(t, st.Parked)
	require.Equal(t, []Page{{Number: 1, Cursor: "10", TotalAttempts: 1}, {Number: 5, Cursor: "50"}}, queued(st), "the re-driven page counts the attempt of its first round")
	require.Equal(t, int64(4), st.Counters.PagesCompleted)

	for runs := 2; ; runs++ {
		require.Less(t, runs, 10)
		env = runSim(t, d, nil, next, nil)
		if env.GetWorkflowError() == nil {
			break
		}
		next = continuedAsNew(t, env)
	}
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, 3, res.Progress.Parallelism.MaxAchieved)
	require.Equal(t, 2, d.callsOf(1))
}
