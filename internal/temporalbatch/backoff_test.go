package temporalbatch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// pagesInBackoff fakes the local activity: page's first attempt failed, so
// while it has not run again it waits for its second attempt.
func pagesInBackoff(d *simDataSet, page int64, calls *int) func(context.Context) ([]PageInBackoff, error) {
	return func(context.Context) ([]PageInBackoff, error) {
		*calls++
		var waiting []PageInBackoff
		for _, s := range d.startsSnapshot() {
			if s.Page == page && d.callsOf(page) == 1 {
				waiting = append(waiting, PageInBackoff{ActivityID: fmt.Sprintf("page-%d-%d", page, s.Seq), Attempt: 2})
			}
		}
		return waiting, nil
	}
}

func TestContinueAsNewDoesNotWaitForPagesInRetryBackoff(t *testing.T) {
	d := newSimDataSet(200, 10)
	d.duration = time.Second
	d.afterEnqueue = failCalls(3, 1, temporal.NewApplicationError("connection reset", "Flaky"))
	in := lookaheadInput(d, 4, 4)
	in.Retry.InitialInterval, in.Retry.MaximumInterval = time.Hour, time.Hour
	in.ContinueAsNewAfterPages = 5
	calls := 0
	started := d.clock
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterActivityWithOptions(pagesInBackoff(d, 3, &calls), activity.RegisterOptions{Name: PagesInBackoffActivity})
	})

	next := continuedAsNew(t, env)
	require.Positive(t, calls)
	require.Less(t, env.Now().Sub(started), time.Minute, "the run did not wait an hour for page 3's retry")
	var carried []Page
	for _, p := range queued(next.State) {
		if p.Number == 3 {
			carried = append(carried, p)
		}
	}
	require.Equal(t, []Page{{Number: 3, Cursor: "30", Attempts: 1}}, carried, "page 3 waits in the next run with the attempt it used")
	require.Equal(t, 1, d.callsOf(3))

	// The next run gives it the attempts left (5 - 1), and its processor
	// counts on from attempt 2.
	require.Equal(t, int32(4), (&orchestrator{in: next, st: next.State}).activityOptions(carried[0]).RetryPolicy.MaximumAttempts)
	d2 := newSimDataSet(200, 10)
	d2.duration, d2.clock = time.Second, d.clock
	var prior []int32
	d2.onInput = func(in processor.PageInput) {
		if in.Page.Number == 3 {
			prior = append(prior, in.PriorAttempts)
		}
	}
	next.ContinueAsNewAfterPages = 0
	env = runSim(t, d2, nil, next, nil)
	succeeded(t, env)
	require.Equal(t, []int32{1}, prior)
}

func TestContinueAsNewWaitsForPagesWhenTheyCannotBeListed(t *testing.T) {
	d := newSimDataSet(200, 10)
	d.duration = time.Second
	d.afterEnqueue = failCalls(3, 1, temporal.NewApplicationError("connection reset", "Flaky"))
	in := lookaheadInput(d, 4, 4)
	in.Retry.InitialInterval, in.Retry.MaximumInterval = time.Minute, time.Minute
	in.ContinueAsNewAfterPages = 5
	started := d.clock
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterActivityWithOptions(func(context.Context) ([]PageInBackoff, error) {
			return nil, errors.New("frontend unavailable")
		}, activity.RegisterOptions{Name: PagesInBackoffActivity})
	})
	next := continuedAsNew(t, env)
	require.GreaterOrEqual(t, env.Now().Sub(started), time.Minute, "page 3 ran its retry in this run")
	require.Equal(t, 2, d.callsOf(3))
	for _, p := range queued(next.State) {
		require.NotEqual(t, int64(3), p.Number)
	}
}

func TestOnlyPagesWhoseRetryIsNotDueAreCarried(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	scheduled, started := enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, enumspb.PENDING_ACTIVITY_STATE_STARTED
	pending := []*workflowpb.PendingActivityInfo{
		{ActivityId: "page-1-1", State: scheduled, Attempt: 3, NextAttemptScheduleTime: at(time.Minute)},
		{ActivityId: "page-2-2", State: started, Attempt: 2},
		{ActivityId: "page-3-3", State: scheduled, Attempt: 1},
		{ActivityId: "page-4-4", State: scheduled, Attempt: 2, NextAttemptScheduleTime: at(500 * time.Millisecond)},
		{ActivityId: "page-5-5", State: scheduled, Attempt: 2, NextAttemptScheduleTime: at(-time.Second)},
	}
	require.Equal(t, []PageInBackoff{{ActivityID: "page-1-1", Attempt: 3}}, inBackoff(pending, now.Add(backoffMargin)),
		"only page 1 waits for a retry due later than the margin; the others run, wait for a worker, or are due")
}

func TestRetriedParkedPageStartsWithAFreshBudget(t *testing.T) {
	st := &State{Parked: []ParkedPage{{Page: Page{Number: 3, Cursor: "30", Attempts: 4}, State: PageStuck}}}
	o := &orchestrator{st: st, frontierOf: map[int64]int{}, version: versionLookahead}
	o.requeueParked(PageStuck, false)
	require.Equal(t, []Page{{Number: 3, Cursor: "30"}}, st.Pending, "a stuck page retried gets a fresh retry budget")
}
