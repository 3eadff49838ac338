package temporalbatch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Shapes of jobs whose histories the replay suite keeps, besides the classic
// and the lookahead-chains ones: each exercises paths of the orchestrator the
// others do not, so that a change to any of them is caught by replay.

// TestIntegrationReplayStuckFixedAndRedriven: a page stuck on a bug and a
// page failed for good; the bug is fixed (the file goes), the retry policy
// is edited through the desired state, a re-drive runs the failed page; the
// stuck page succeeds at its next retry with no re-drive.
func TestIntegrationReplayStuckFixedAndRedriven(t *testing.T) {
	requireServer(t)
	const total, pageSize = 2000, 100
	bug := filepath.Join(t.TempDir(), "bug")
	require.NoError(t, os.WriteFile(bug, nil, 0o644))
	ledger := filepath.Join(t.TempDir(), "ledger")
	col := &collector{}
	pw := startPageWorker(t, 8, func(r worker.Registry) {
		processor.RegisterFailureHandler(r, "CollectFailures", col.handle)
	})
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, ItemDelay: "1ms", Ledger: ledger, FailWhileExists: bug,
		FailPages: map[string]any{"2": map[string]any{"type": "Bug", "attempts": 0}, "5": map[string]any{"type": "InvalidRecord", "attempts": 0}},
	}, pageSize, 3)
	in.Retry.MaximumAttempts = 2
	in.Retry.StuckPageRetryInterval = time.Hour
	in.Retry.NonRetryableErrorTypes = []string{"InvalidRecord"}
	in.FailurePolicy.Handler = "CollectFailures"
	in.EnqueueToken = "replay-token"
	start(t, in)
	id := in.Job.WorkflowID
	ctx := context.Background()

	require.Eventually(t, func() bool {
		p := progress(t, id)
		return p.Pages.Stuck == 1 && p.Pages.Failed == 1
	}, time.Minute, 20*time.Millisecond)
	require.NoError(t, os.Remove(bug), "the fix is deployed")
	retry := in.Retry
	retry.MaximumAttempts, retry.StuckPageRetryInterval = 3, 500*time.Millisecond
	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{Generation: 2, Parallelism: 3, Retry: &retry}))
	require.NoError(t, orchestratorClient.Redrive(ctx, id, temporalbatch.RedriveRequest{ID: "after-fix"}))
	require.NoError(t, orchestratorClient.Redrive(ctx, id, temporalbatch.RedriveRequest{ID: "after-fix"}), "the same request again acts no more")

	res, err := wait(t, id, 2*time.Minute)
	require.NoError(t, err)
	require.EqualValues(t, total, res.Progress.Items.Processed)
	require.Equal(t, "after-fix", res.Progress.LastRedrive)
	require.EqualValues(t, 2, res.Progress.Generation)
	seen := readLedger(t, ledger)
	requireEveryItem(t, seen, total, nil)

	replayFirstRun(t, id, historyName("stuck-fixed-redriven"))
}

// TestIntegrationReplayAtMostOnce: an AtMostOnce job with a page that fails
// and a failure policy lowered while pages run, which ends the job and
// cancels them: their outcome is unknown, and no item runs twice.
func TestIntegrationReplayAtMostOnce(t *testing.T) {
	requireServer(t)
	const total, pageSize = 3000, 100
	ledger := filepath.Join(t.TempDir(), "ledger")
	pw := startPageWorker(t, 8, nil)
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, ItemDelay: "5ms", Ledger: ledger,
		FailPages: map[string]any{"3": map[string]any{"type": "Flaky", "attempts": 1}},
	}, pageSize, 4)
	in.Processor.Delivery = temporalbatch.AtMostOnce
	in.Processor.Lookahead = 2
	start(t, in)
	id := in.Job.WorkflowID
	ctx := context.Background()

	require.Eventually(t, func() bool { return progress(t, id).Pages.Failed == 1 }, time.Minute, 20*time.Millisecond)
	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{
		Generation: 2, Parallelism: 4, FailurePolicy: &temporalbatch.FailurePolicy{MaxFailedPages: new(int64(0))},
	}))
	_, err := wait(t, id, 2*time.Minute)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, temporalbatch.ReasonPagesFailed, appErr.Type())
	var res temporalbatch.Result
	require.NoError(t, appErr.Details(&res))
	p := res.Progress
	require.GreaterOrEqual(t, p.Pages.Unknown, int64(1), "page 3, and the pages cancelled in flight")
	require.Equal(t, p.Pages.Failed, p.Pages.Unknown, "every failed AtMostOnce page here may have done part of its work")
	for item, n := range readLedger(t, ledger) {
		require.Equal(t, 1, n, "item %d", item)
	}

	replayFirstRun(t, id, historyName("at-most-once"))
}
