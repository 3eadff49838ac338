package temporalbatch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

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

func TestIntegrationChainsAcrossContinueAsNew(t *testing.T) {
	requireServer(t)
	const total, pageSize = 6000, 50
	for _, tc := range []struct {
		name              string
		chains, lookahead int
		parallelism       int
	}{
		{name: "lookahead 10", chains: 1, lookahead: 10, parallelism: 6},
		{name: "four cursors", chains: 4, lookahead: 1, parallelism: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw := startPageWorker(t, 8, nil)
			ledger := filepath.Join(t.TempDir(), "ledger")
			in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, Ledger: ledger}, pageSize, tc.parallelism)
			if tc.chains > 1 {
				in.Processor.Cursors = examples.SplitSynthetic(total, tc.chains)
			}
			in.Processor.Lookahead = tc.lookahead
			in.ContinueAsNewAfterPages = 30
			start(t, in)

			res, err := wait(t, in.Job.WorkflowID, 3*time.Minute)
			require.NoError(t, err)
			p := res.Progress
			require.GreaterOrEqual(t, p.Runs, 3)
			require.EqualValues(t, total, p.Items.Processed)
			require.EqualValues(t, total/pageSize, p.Pages.Completed)
			require.Equal(t, temporalbatch.ChainCounts{Total: tc.chains, Done: tc.chains}, p.Chains)
			require.Equal(t, tc.lookahead, p.Lookahead)
			require.Zero(t, p.Counters.MalformedSignals+p.Counters.UnexpectedSignals)
			require.LessOrEqual(t, p.Parallelism.MaxAchieved, tc.parallelism)
			requireExactlyOnce(t, readLedger(t, ledger), total)

			sizes := carriedStateSizes(t, in.Job.WorkflowID)
			t.Logf("runs: %d; carried state per continue-as-new (bytes): %v", p.Runs, sizes)
			for i, s := range sizes {
				require.Less(t, s, 8192, "run %d carried %d bytes", i+1, s)
			}
		})
	}
}

// A page waiting 20 s for its retry does not hold continue-as-new: the run
// carries it to the next, where it runs again once its cause is fixed.
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
	in.Retry.InitialInterval, in.Retry.MaximumInterval = 20*time.Second, 20*time.Second
	in.ContinueAsNewAfterPages = 20
	start(t, in)
	id := in.Job.WorkflowID

	// Runs follow each other although page 5 fails until the outage ends
	// and waits 20 s before each retry: without carrying it, the first run
	// could not continue as new before those 20 s are out.
	require.Eventually(t, func() bool { return progress(t, id).Runs >= 3 }, 15*time.Second, 100*time.Millisecond)
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

	replayFirstRun(t, id, historyName("lookahead-chains"))
}
