package temporalbatch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// requireExactlyOnce fails unless the ledger holds every item exactly once:
// what AtLeastOnce delivery without failures must give.
func requireExactlyOnce(t *testing.T, ledger map[int]int, total int) {
	t.Helper()
	var missing, twice []int
	for i := range total {
		switch n := ledger[i]; {
		case n == 0:
			missing = append(missing, i)
		case n > 1:
			twice = append(twice, i)
		}
	}
	require.Empty(t, missing, "items never processed")
	require.Empty(t, twice, "items processed more than once")
	require.Len(t, ledger, total, "items outside the data set")
}

func TestIntegrationLookaheadAcrossContinueAsNew(t *testing.T) {
	requireServer(t)
	const total, pageSize = 6000, 50
	pw := startPageWorker(t, 8, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, Ledger: ledger}, pageSize, 6)
	in.Processor.Lookahead = 10
	in.ContinueAsNewAfterPages = 30
	start(t, in)

	res, err := wait(t, in.Job.WorkflowID, 3*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.GreaterOrEqual(t, p.Runs, 3)
	require.EqualValues(t, total, p.Items.Processed)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	require.Equal(t, temporalbatch.ChainCounts{Total: 1, Done: 1}, p.Chains)
	require.Equal(t, 10, p.Lookahead)
	require.Zero(t, p.Counters.MalformedSignals+p.Counters.UnexpectedSignals)
	requireExactlyOnce(t, readLedger(t, ledger), total)
	require.LessOrEqual(t, p.Parallelism.MaxAchieved, 6)

	sizes := carriedStateSizes(t, in.Job.WorkflowID)
	t.Logf("runs: %d; carried state per continue-as-new (bytes): %v", p.Runs, sizes)
	for i, s := range sizes {
		require.Less(t, s, 8192, "run %d carried %d bytes", i+1, s)
	}
}

func TestIntegrationCursorsAcrossContinueAsNew(t *testing.T) {
	requireServer(t)
	const total, pageSize = 6000, 50
	pw := startPageWorker(t, 8, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, Ledger: ledger}, pageSize, 8)
	in.Processor.Cursors = examples.SplitSynthetic(total, 4)
	in.Processor.Lookahead = 1
	in.ContinueAsNewAfterPages = 30
	start(t, in)

	res, err := wait(t, in.Job.WorkflowID, 3*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.GreaterOrEqual(t, p.Runs, 3)
	require.EqualValues(t, total, p.Items.Processed)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	require.Equal(t, temporalbatch.ChainCounts{Total: 4, Done: 4}, p.Chains)
	require.Zero(t, p.Counters.MalformedSignals+p.Counters.UnexpectedSignals)
	requireExactlyOnce(t, readLedger(t, ledger), total)
}

// A page waiting a minute for its retry does not hold continue-as-new: the
// run carries it to the next, where it runs again once its cause is fixed.
func TestIntegrationContinueAsNewCarriesPagesInRetryBackoff(t *testing.T) {
	requireServer(t)
	const total, pageSize = 3000, 50
	pw := startPageWorker(t, 8, nil)
	dir := t.TempDir()
	ledger, outage := filepath.Join(dir, "ledger"), filepath.Join(dir, "outage")
	require.NoError(t, os.WriteFile(outage, nil, 0o644))
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, ItemDelay: "2ms", Ledger: ledger,
		FailPages:       map[string]any{"5": map[string]any{"type": "Flaky", "attempts": 0}},
		FailWhileExists: outage,
	}, pageSize, 4)
	in.Processor.Lookahead = 8
	in.Retry.InitialInterval, in.Retry.MaximumInterval = time.Minute, time.Minute
	in.ContinueAsNewAfterPages = 20
	start(t, in)
	id := in.Job.WorkflowID

	// Runs follow each other although page 5 fails until the outage ends
	// and waits a minute before each retry: without carrying it, the first
	// run could not continue as new before the minute is out.
	require.Eventually(t, func() bool { return progress(t, id).Runs >= 3 }, 40*time.Second, 100*time.Millisecond)
	require.NoError(t, os.Remove(outage))
	res, err := wait(t, id, 3*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.EqualValues(t, total, p.Items.Processed)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	requireExactlyOnce(t, readLedger(t, ledger), total)
}

// TestIntegrationReplayLookahead records (with -record-history) and replays a
// job with lookahead and several chains through retried pages, item
// failures, a failure handler, a desired-state change, duplicate and
// malformed signals, and continue-as-new.
func TestIntegrationReplayLookahead(t *testing.T) {
	requireServer(t)
	const total, pageSize = 3000, 50
	col := &collector{}
	pw := startPageWorker(t, 8, func(r worker.Registry) {
		processor.RegisterFailureHandler(r, "CollectFailures", col.handle)
	})
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, ItemDelay: "2ms",
		FailPages: map[string]any{"2": map[string]any{"type": "Flaky", "attempts": 1}, "5": map[string]any{"type": "Flaky", "attempts": 2}},
		FailItems: map[string]string{"42": "BadPrice"},
	}, pageSize, 4)
	in.Processor.Cursors = examples.SplitSynthetic(total, 3)
	in.Processor.Lookahead = 5
	in.FailurePolicy.Handler = "CollectFailures"
	in.ContinueAsNewAfterPages = 20
	start(t, in)
	id := in.Job.WorkflowID
	ctx := context.Background()

	require.Eventually(t, func() bool { return progress(t, id).Pages.Completed >= 3 }, time.Minute, 20*time.Millisecond)
	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{Generation: 2, Parallelism: 6}))
	require.NoError(t, temporalClient.SignalWorkflow(ctx, id, "", temporalbatch.SignalEnqueuePage, processor.EnqueuePageBatch{Number: 1, Cursors: []string{"0"}}))
	require.NoError(t, temporalClient.SignalWorkflow(ctx, id, "", temporalbatch.SignalEnqueuePage, map[string]any{"number": 2}))
	res, err := wait(t, id, 2*time.Minute)
	require.NoError(t, err)
	require.EqualValues(t, total-1, res.Progress.Items.Processed)
	require.Equal(t, temporalbatch.ChainCounts{Total: 3, Done: 3}, res.Progress.Chains)
	require.GreaterOrEqual(t, res.Progress.Runs, 2)

	first, err := firstRunID(ctx, id)
	require.NoError(t, err)
	hist := fullHistory(t, id, first)
	r := newReplayer(t)
	require.NoError(t, r.ReplayWorkflowHistory(nil, hist), "the first run's history does not replay")

	if *recordHistory {
		raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
		require.NoError(t, err)
		path := filepath.Join("testdata", "history-v2-lookahead-chains.json")
		require.NoError(t, os.WriteFile(path, raw, 0o644))
		t.Logf("wrote %s (%d events)", path, len(hist.GetEvents()))
	}
}
