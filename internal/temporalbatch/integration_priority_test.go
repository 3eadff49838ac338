package temporalbatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// TestIntegrationPriorityReachesThePages: every page activity is scheduled
// with the job's priority and fairness key and weight, and a desired state
// that changes them reaches the pages started after it.
func TestIntegrationPriorityReachesThePages(t *testing.T) {
	requireServer(t)
	const total, pageSize = 2000, 100
	pw := startPageWorker(t, 4, nil)
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, ItemDelay: "2ms"}, pageSize, 2)
	in.Priority = temporalbatch.Priority{Key: 2, FairnessKey: "team-a", FairnessWeight: 3}
	start(t, in)
	id := in.Job.WorkflowID
	ctx := context.Background()
	require.Eventually(t, func() bool { return progress(t, id).Pages.Completed >= 5 }, time.Minute, 20*time.Millisecond)
	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{
		Generation: 2, Parallelism: 2, Priority: &temporalbatch.Priority{Key: 4, FairnessKey: "team-a", FairnessWeight: 0.5},
	}))
	_, err := wait(t, id, time.Minute)
	require.NoError(t, err)

	first, err := firstRunID(ctx, id)
	require.NoError(t, err)
	var before, after int
	for _, ev := range fullHistory(t, id, first).GetEvents() {
		a := ev.GetActivityTaskScheduledEventAttributes()
		if a == nil {
			continue
		}
		p := a.GetPriority()
		require.NotNil(t, p, "activity %s has no priority", a.GetActivityId())
		require.Equal(t, "team-a", p.GetFairnessKey())
		switch p.GetPriorityKey() {
		case 2:
			require.Zero(t, after, "a page started after the change has the old priority")
			require.InDelta(t, 3, p.GetFairnessWeight(), 1e-6)
			before++
		case 4:
			require.InDelta(t, 0.5, p.GetFairnessWeight(), 1e-6)
			after++
		default:
			t.Fatalf("activity %s has priority key %d", a.GetActivityId(), p.GetPriorityKey())
		}
	}
	require.Positive(t, before)
	require.Positive(t, after, "pages started after the desired state carry its priority")
}
