package temporalbatch_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// A failure handler that no worker serves must not hold the job open: each
// delivery is bounded by failurePolicy.handlerTimeout, and what was not
// delivered is counted.
func TestIntegrationFailureHandlerNobodyServes(t *testing.T) {
	requireServer(t)
	const total, pageSize = 300, 100
	// The page worker runs the pages and knows no handler; once the pages
	// are done it stops, as workers scaled to 0 would, while the handler's
	// batch may still wait for a worker.
	pw := startPageWorker(t, 4, nil)
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total,
		FailItems:  map[string]string{"5": "BadPrice", "201": "BadPrice"},
	}, pageSize, 2)
	in.FailurePolicy.Handler = "NobodyServesThis"
	in.FailurePolicy.HandlerTimeout = 3 * time.Second
	start(t, in)

	require.Eventually(t, func() bool {
		return progress(t, in.Job.WorkflowID).Pages.Completed == total/pageSize
	}, time.Minute, 200*time.Millisecond)
	pw.w.Stop()

	began := time.Now()
	res, err := wait(t, in.Job.WorkflowID, time.Minute)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 30*time.Second, "the job closes once the handler's deliveries time out")
	p := res.Progress
	require.Equal(t, temporalbatch.StateSucceeded, p.State)
	require.EqualValues(t, 2, p.Items.Failed)
	require.EqualValues(t, 2, p.Counters.HandlerDropped, "the failures the handler never took are counted")
	require.Zero(t, p.HandlerQueued)
}
