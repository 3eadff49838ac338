package temporalbatch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
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

	// The next run gives it the attempts left: 5 - 1.
	require.Equal(t, int32(4), (&orchestrator{in: next}).activityOptions(carried[0]).RetryPolicy.MaximumAttempts)
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
