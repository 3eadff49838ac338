package temporalbatch_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// A job with an enqueue token runs to its end on a real server with the
// example processors, whose pkg/processor sends the token; a signal from a
// sender without it is rejected and changes nothing.
func TestIntegrationEnqueueToken(t *testing.T) {
	requireServer(t)
	const total, pageSize = 1000, 50
	pw := startPageWorker(t, 8, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, ItemDelay: "1ms", Ledger: ledger}, pageSize, 4)
	in.EnqueueToken = "4MXJ7ZQHT2C5VN3K6PWD8RBYGA"
	start(t, in)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, temporalClient.SignalWorkflow(ctx, in.Job.WorkflowID, "", temporalbatch.SignalEnqueuePage,
		processor.EnqueuePage{Number: 1, Cursor: "500", Token: "guessed"}))

	res, err := wait(t, in.Job.WorkflowID, 2*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.Equal(t, temporalbatch.StateSucceeded, p.State)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	require.EqualValues(t, total, p.Items.Processed)
	require.EqualValues(t, 1, p.Counters.RejectedSignals)
	require.Zero(t, p.Counters.MalformedSignals)
	ledgerSeen := readLedger(t, ledger)
	requireEveryItem(t, ledgerSeen, total, nil)
	for item, n := range ledgerSeen {
		require.Equal(t, 1, n, "item %d processed %d times", item, n)
	}
}
