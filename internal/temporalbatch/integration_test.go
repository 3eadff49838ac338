package temporalbatch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// The integration tests run the orchestrator and the real example processors
// in-process against a Temporal dev server they start themselves.

var (
	server             *devserver.Server
	temporalClient     client.Client
	orchestratorQueue  = "temporal-batch-orchestrator-it"
	orchestratorClient *temporalbatch.Client
)

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		temporalClient.Close()
		server.Stop()
	}
	os.Exit(code)
}

var serverOnce sync.Once

// requireServer starts the dev server and the orchestrator worker the first
// time an integration test needs them, so unit test runs need neither.
func requireServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server (skipped with -short)")
	}
	serverOnce.Do(func() {
		ctx := context.Background()
		srv, err := devserver.Start(ctx, devserver.Options{})
		if err != nil {
			t.Fatalf("integration tests need a Temporal dev server: %v", err)
		}
		c, err := srv.Dial(ctx)
		if err != nil {
			srv.Stop()
			t.Fatal(err)
		}
		w := worker.New(c, orchestratorQueue, worker.Options{})
		temporalbatch.Register(w)
		temporalbatch.RegisterActivities(w, c)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		server, temporalClient = srv, c
		orchestratorClient = temporalbatch.NewClient(c, orchestratorQueue)
	})
	if server == nil {
		t.Fatal("the Temporal dev server did not start (see the first failure)")
	}
}

// pageWorker runs the example processors on a task queue of the test's own
// and measures how many page processors run at once.
type pageWorker struct {
	queue string
	w     worker.Worker
	conc  *concurrency
}

func startPageWorker(t *testing.T, slots int, register func(worker.Registry)) *pageWorker {
	t.Helper()
	queue := "jobs-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	conc := &concurrency{}
	w := worker.New(temporalClient, queue, worker.Options{
		MaxConcurrentActivityExecutionSize: slots,
		Interceptors:                       []interceptor.WorkerInterceptor{conc},
	})
	examples.Register(w)
	if register != nil {
		register(w)
	}
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &pageWorker{queue: queue, w: w, conc: conc}
}

// concurrency counts page processor executions in flight, as the workers see them.
type concurrency struct {
	interceptor.WorkerInterceptorBase
	cur, peak atomic.Int64
}

func (c *concurrency) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &countingInbound{c: c}
	i.Next = next
	return i
}

type countingInbound struct {
	interceptor.ActivityInboundInterceptorBase
	c *concurrency
}

func (i *countingInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if strings.HasPrefix(activity.GetInfo(ctx).ActivityType.Name, "synthetic") {
		n := i.c.cur.Add(1)
		for {
			p := i.c.peak.Load()
			if n <= p || i.c.peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer i.c.cur.Add(-1)
	}
	return i.Next.ExecuteActivity(ctx, in)
}

type syntheticArgs struct {
	TotalItems int               `json:"totalItems"`
	ItemDelay  string            `json:"itemDelay,omitempty"`
	FetchDelay string            `json:"fetchDelay,omitempty"`
	FailItems  map[string]string `json:"failItems,omitempty"`
	FailPages  map[string]any    `json:"failPages,omitempty"`
	// FailWhileExists: FailPages fail only while this file exists.
	FailWhileExists string `json:"failWhileExists,omitempty"`
	Ledger          string `json:"ledger,omitempty"`
}

func newJob(t *testing.T, queue, processorName string, args syntheticArgs, pageSize, parallelism int) temporalbatch.Input {
	t.Helper()
	raw, err := json.Marshal(args)
	require.NoError(t, err)
	name := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	uid := strconv.FormatInt(time.Now().UnixNano(), 36)
	return temporalbatch.Input{
		Job:       processor.JobRef{Namespace: "it", Name: name, WorkflowID: temporalbatch.WorkflowID("it", name, uid)},
		TaskQueue: queue,
		Processor: temporalbatch.ProcessorSpec{
			Name: processorName, PageSize: pageSize, Args: raw,
			Timeout: time.Minute, HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
		},
		Retry: temporalbatch.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Second,
			MaximumAttempts: 5, StuckPageRetryInterval: time.Second,
		},
		Desired: temporalbatch.DesiredState{Generation: 1, Parallelism: parallelism},
	}
}

func start(t *testing.T, in temporalbatch.Input) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := orchestratorClient.Start(ctx, in)
	require.NoError(t, err)
	t.Cleanup(func() { _ = orchestratorClient.Terminate(context.Background(), in.Job.WorkflowID, "test over") })
}

// wait returns the workflow's Result, or the error it ended with.
func wait(t *testing.T, id string, timeout time.Duration) (temporalbatch.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res temporalbatch.Result
	err := temporalClient.GetWorkflow(ctx, id, "").Get(ctx, &res)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "job did not finish within %s", timeout)
	return res, err
}

func progress(t *testing.T, id string) temporalbatch.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := orchestratorClient.Progress(ctx, id)
	require.NoError(t, err)
	return p
}

// readLedger returns how many times each item was processed.
func readLedger(t *testing.T, path string) map[int]int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	seen := map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		require.Len(t, fields, 3, "ledger line %q", sc.Text())
		item, err := strconv.Atoi(fields[0])
		require.NoError(t, err)
		seen[item]++
	}
	require.NoError(t, sc.Err())
	return seen
}

func requireEveryItem(t *testing.T, ledger map[int]int, total int, skip func(int) bool) {
	t.Helper()
	var missing []int
	for i := range total {
		if skip != nil && skip(i) {
			continue
		}
		if ledger[i] == 0 {
			missing = append(missing, i)
		}
	}
	require.Empty(t, missing, "items never processed")
}

func TestIntegrationTenThousandItems(t *testing.T) {
	requireServer(t)
	const total, pageSize, parallelism = 10000, 100, 8
	pw := startPageWorker(t, 32, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, ItemDelay: "200us", Ledger: ledger}, pageSize, parallelism)
	start(t, in)

	// Sample pages in flight, as the orchestrator reports them, while it runs.
	var sampled, peakReported atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p, err := orchestratorClient.Progress(ctx, in.Job.WorkflowID)
			cancel()
			if err == nil {
				sampled.Add(1)
				if p.Pages.InFlight > peakReported.Load() {
					peakReported.Store(p.Pages.InFlight)
				}
			}
		}
	})
	res, err := wait(t, in.Job.WorkflowID, 5*time.Minute)
	close(stop)
	wg.Wait()
	require.NoError(t, err)

	p := res.Progress
	require.Equal(t, temporalbatch.StateSucceeded, p.State)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	require.EqualValues(t, total, p.Items.Processed)
	require.Zero(t, p.Items.Failed)
	require.Zero(t, p.Pages.Failed+p.Pages.Stuck+p.Pages.InFlight+p.Pages.Pending)
	requireEveryItem(t, readLedger(t, ledger), total, nil)

	t.Logf("in flight: peak seen by workers %d, peak reported %d over %d samples, max achieved %d", pw.conc.peak.Load(), peakReported.Load(), sampled.Load(), p.Parallelism.MaxAchieved)
	require.Positive(t, sampled.Load())
	require.LessOrEqual(t, pw.conc.peak.Load(), int64(parallelism))
	require.LessOrEqual(t, peakReported.Load(), int64(parallelism))
	require.LessOrEqual(t, p.Parallelism.MaxAchieved, parallelism)
	require.Greater(t, pw.conc.peak.Load(), int64(1), "pages never ran in parallel")
}

func TestIntegrationPauseResume(t *testing.T) {
	requireServer(t)
	// About 5 s of work, so that it is still running when suspended.
	const total, pageSize = 6000, 100
	pw := startPageWorker(t, 8, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, ItemDelay: "3ms", Ledger: ledger}, pageSize, 4)
	start(t, in)
	id := in.Job.WorkflowID
	ctx := context.Background()

	require.Eventually(t, func() bool { return progress(t, id).Pages.Completed >= 5 }, time.Minute, 50*time.Millisecond)
	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{Generation: 2, Parallelism: 4, Suspend: true}))

	// Suspended: in-flight pages finish, no new page starts.
	var paused temporalbatch.Progress
	require.Eventually(t, func() bool {
		paused = progress(t, id)
		return paused.State == temporalbatch.StateSuspended && paused.Generation == 2 && paused.Pages.InFlight == 0
	}, time.Minute, 50*time.Millisecond)
	require.Less(t, paused.Items.Processed, int64(total), "the job finished before it could be paused")
	require.Never(t, func() bool {
		p := progress(t, id)
		return p.Pages.Completed != paused.Pages.Completed || p.Pages.InFlight != 0
	}, time.Second, 100*time.Millisecond, "a page started or completed while suspended")
	require.Zero(t, pw.conc.cur.Load())

	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{Generation: 3, Parallelism: 4}))
	res, err := wait(t, id, 3*time.Minute)
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Progress.Generation)
	require.EqualValues(t, total, res.Progress.Items.Processed)
	require.EqualValues(t, total/pageSize, res.Progress.Pages.Completed)
	requireEveryItem(t, readLedger(t, ledger), total, nil)
}

func TestIntegrationContinueAsNew(t *testing.T) {
	requireServer(t)
	const total, pageSize = 4000, 100
	pw := startPageWorker(t, 8, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{TotalItems: total, Ledger: ledger}, pageSize, 4)
	in.ContinueAsNewAfterPages = 8
	start(t, in)

	res, err := wait(t, in.Job.WorkflowID, 3*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.GreaterOrEqual(t, p.Runs, 3)
	require.EqualValues(t, total, p.Items.Processed)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	requireEveryItem(t, readLedger(t, ledger), total, nil)

	// The carried state of every run, from the continue-as-new events.
	sizes := carriedStateSizes(t, in.Job.WorkflowID)
	t.Logf("runs: %d; carried state per continue-as-new (bytes): %v", p.Runs, sizes)
	require.Len(t, sizes, p.Runs-1)
	for i, s := range sizes {
		// Bounded by parallelism and the sample windows (recent failures,
		// rate samples), never by the pages seen: the last run has seen
		// several times the pages of the first.
		require.Less(t, s, 4096, "run %d carried %d bytes", i+1, s)
	}
}

// carriedStateSizes returns the JSON size of the state each run handed to the next.
func carriedStateSizes(t *testing.T, id string) []int {
	t.Helper()
	ctx := context.Background()
	var sizes []int
	// Walk the chain forward from the first run.
	first, err := firstRunID(ctx, id)
	require.NoError(t, err)
	for runID := first; runID != ""; {
		ev, err := lastEvent(ctx, id, runID)
		require.NoError(t, err)
		attrs := ev.GetWorkflowExecutionContinuedAsNewEventAttributes()
		if attrs == nil {
			break
		}
		var next temporalbatch.Input
		require.NoError(t, json.Unmarshal(attrs.GetInput().GetPayloads()[0].GetData(), &next))
		raw, err := json.Marshal(next.State)
		require.NoError(t, err)
		sizes = append(sizes, len(raw))
		runID = attrs.GetNewExecutionRunId()
	}
	return sizes
}

func firstRunID(ctx context.Context, id string) (string, error) {
	// The current run's first event names the run it continued from; follow back.
	runID := ""
	for {
		it := temporalClient.GetWorkflowHistory(ctx, id, runID, false, 0)
		ev, err := it.Next()
		if err != nil {
			return "", err
		}
		started := ev.GetWorkflowExecutionStartedEventAttributes()
		if started.GetContinuedExecutionRunId() == "" {
			if runID == "" {
				desc, err := temporalClient.DescribeWorkflowExecution(ctx, id, "")
				if err != nil {
					return "", err
				}
				return desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), nil
			}
			return runID, nil
		}
		runID = started.GetContinuedExecutionRunId()
	}
}

func lastEvent(ctx context.Context, id, runID string) (*historypb.HistoryEvent, error) {
	it := temporalClient.GetWorkflowHistory(ctx, id, runID, false, 0)
	var last *historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		last = ev
	}
	if last == nil {
		return nil, errors.New("empty history")
	}
	return last, nil
}

func TestIntegrationTransientPageFailure(t *testing.T) {
	requireServer(t)
	const total, pageSize = 1000, 100
	pw := startPageWorker(t, 8, nil)
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, Ledger: ledger,
		FailPages: map[string]any{"3": map[string]any{"type": "Flaky", "attempts": 2}},
	}, pageSize, 4)
	start(t, in)

	res, err := wait(t, in.Job.WorkflowID, 2*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.EqualValues(t, total, p.Items.Processed)
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	require.Zero(t, p.Pages.Failed)
	requireEveryItem(t, readLedger(t, ledger), total, nil)
	// Page 3's items were processed by its third attempt.
	require.Contains(t, ledgerLines(t, ledger), "300 3 3")
}

func ledgerLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(raw)), "\n")
}

// collector is a failure handler that keeps what it receives.
type collector struct {
	mu       sync.Mutex
	batches  int
	failures []processor.FailureReport
}

func (c *collector) handle(_ context.Context, b processor.FailureBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	c.failures = append(c.failures, b.Failures...)
	return nil
}

func (c *collector) snapshot() (int, []processor.FailureReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batches, append([]processor.FailureReport(nil), c.failures...)
}

func TestIntegrationNonRetryableFailureAndHandler(t *testing.T) {
	requireServer(t)
	const total, pageSize = 1000, 100
	col := &collector{}
	pw := startPageWorker(t, 8, func(r worker.Registry) {
		processor.RegisterFailureHandler(r, "CollectFailures", col.handle)
	})
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, Ledger: ledger,
		FailPages: map[string]any{"2": map[string]any{"type": "InvalidRecord", "attempts": 0}},
		FailItems: map[string]string{"5": "BadPrice", "701": "BadPrice", "702": "MissingSKU"},
	}, pageSize, 4)
	in.Retry.NonRetryableErrorTypes = []string{"InvalidRecord"}
	in.FailurePolicy.Handler = "CollectFailures"
	start(t, in)

	// The failed page had enqueued its successor: the job runs to its end,
	// then fails for the page, which a re-drive can run again.
	_, err := wait(t, in.Job.WorkflowID, 2*time.Minute)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, temporalbatch.ReasonPagesFailed, appErr.Type())
	var res temporalbatch.Result
	require.NoError(t, appErr.Details(&res))
	p := res.Progress
	require.Equal(t, temporalbatch.StateFailed, p.State)
	require.Equal(t, temporalbatch.ReasonPagesFailed, p.Reason)
	require.Contains(t, p.Message, "1 pages failed for good, more than failurePolicy.toleratedFailedPages (0): page 2 failed with InvalidRecord")
	require.Contains(t, p.Message, "kubectl batch redrive "+in.Job.Name+" -n it")
	require.EqualValues(t, 1, p.Pages.Failed)
	require.Len(t, p.FailedPages, 1)
	require.EqualValues(t, 2, p.FailedPages[0].Number)
	require.Empty(t, p.FailedPages[0].Cursor, "the Result leaves the cursor to Next")
	require.Len(t, res.Next.State.Parked, 1)
	require.Equal(t, "200", res.Next.State.Parked[0].Cursor)
	require.Equal(t, "InvalidRecord", p.FailedPages[0].ErrorType)
	require.EqualValues(t, total/pageSize-1, p.Pages.Completed)
	require.EqualValues(t, total-pageSize-3, p.Items.Processed)
	require.EqualValues(t, 3, p.Items.Failed)
	require.Equal(t, map[string]int64{"InvalidRecord": 1, "BadPrice": 2, "MissingSKU": 1}, p.ByType)
	require.EqualValues(t, 1, p.Counters.FailedAttempts)
	require.NotNil(t, res.Next.State, "the Result carries what a re-drive starts from")

	// The non-retryable page failed before processing an item; every other
	// page's items are in the ledger.
	for _, l := range ledgerLines(t, ledger) {
		require.NotEqual(t, "2", strings.Fields(l)[1], "the failed page processed items: %s", l)
	}
	requireEveryItem(t, readLedger(t, ledger), total, func(i int) bool { return i/pageSize == 2 || i == 5 || i == 701 || i == 702 })

	// The handler heard of every failure.
	_, got := col.snapshot()
	var kinds []string
	for _, f := range got {
		kinds = append(kinds, fmt.Sprintf("%d/%s/%s", f.Page, f.Item, f.Type))
	}
	require.ElementsMatch(t, []string{"2//InvalidRecord", "0/5/BadPrice", "7/701/BadPrice", "7/702/MissingSKU"}, kinds)
}

func TestIntegrationRedrive(t *testing.T) {
	requireServer(t)
	const total, pageSize = 1000, 100
	// A processor whose page 4 is broken until the test fixes it: it fails
	// before enqueuing its successor, so the chain breaks there.
	var fixed atomic.Bool
	pw := startPageWorker(t, 8, func(r worker.Registry) {
		processor.Register(r, "synthetic-until-fixed", func(ctx context.Context, page *processor.Page) (processor.Result, error) {
			if page.Number == 4 && !fixed.Load() {
				return processor.Result{}, processor.NonRetryable("UpstreamSchema", "column price_cents missing at cursor %s", page.Cursor)
			}
			return examples.Synthetic(ctx, page)
		})
	})
	ledger := filepath.Join(t.TempDir(), "ledger")
	in := newJob(t, pw.queue, "synthetic-until-fixed", syntheticArgs{TotalItems: total, Ledger: ledger}, pageSize, 2)
	start(t, in)
	id := in.Job.WorkflowID

	_, err := wait(t, id, 2*time.Minute)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, temporalbatch.ReasonChainBroken, appErr.Type())
	require.Contains(t, appErr.Error(), "page 4 failed for good")
	failedProgress := progress(t, id)
	require.Equal(t, temporalbatch.StateFailed, failedProgress.State)
	require.EqualValues(t, 4, failedProgress.Pages.Completed)
	require.EqualValues(t, 400, failedProgress.Items.Processed)

	// Fix, then re-drive the closed job: it continues from the frontier.
	fixed.Store(true)
	ctx := context.Background()
	require.NoError(t, orchestratorClient.Redrive(ctx, id, temporalbatch.RedriveRequest{ID: "fix-1"}))
	require.NoError(t, orchestratorClient.Redrive(ctx, id, temporalbatch.RedriveRequest{ID: "fix-1"}), "re-drive is idempotent")
	res, err := wait(t, id, 2*time.Minute)
	require.NoError(t, err)
	p := res.Progress
	require.Equal(t, temporalbatch.StateSucceeded, p.State)
	require.Equal(t, "fix-1", p.LastRedrive)
	require.EqualValues(t, total, p.Items.Processed, "counters continue from the failed run without double counting")
	require.EqualValues(t, total/pageSize, p.Pages.Completed)
	require.Zero(t, p.Pages.Failed)
	requireEveryItem(t, readLedger(t, ledger), total, nil)
}

// historyVersion names the histories the replay tests record: the number of
// versions of the orchestrator's logic (docs/versioning.md). A new version
// bumps it, so that the histories of the one before stay as they are.
const historyVersion = "v7"

// historyName is the file a replay test records its shape's history in.
func historyName(shape string) string { return "history-" + historyVersion + "-" + shape + ".json" }

// Histories of earlier versions (history-v1.json: before lookahead) are never
// written again; the replay tests record the current version's.
var recordHistory = flag.Bool("record-history", false, "write the first run's history of TestIntegrationReplay and TestIntegrationReplayLookahead to testdata/")

// TestIntegrationReplay runs a job that exercises every message and failure
// path, then replays its recorded history against the workflow code.
func TestIntegrationReplay(t *testing.T) {
	requireServer(t)
	// Long enough (about 5 s) that the messages below reach it mid-run.
	const total, pageSize = 4800, 100
	col := &collector{}
	pw := startPageWorker(t, 8, func(r worker.Registry) {
		processor.RegisterFailureHandler(r, "CollectFailures", col.handle)
	})
	in := newJob(t, pw.queue, examples.NameSynthetic, syntheticArgs{
		TotalItems: total, ItemDelay: "3ms",
		FailPages: map[string]any{"1": map[string]any{"type": "Flaky", "attempts": 1}, "3": map[string]any{"type": "InvalidRecord", "attempts": 0}},
		FailItems: map[string]string{"42": "BadPrice"},
	}, pageSize, 3)
	in.Retry.NonRetryableErrorTypes = []string{"InvalidRecord"}
	in.FailurePolicy.Handler = "CollectFailures"
	in.FailurePolicy.ToleratedFailedPages = 1
	in.Desired.RampUp = &temporalbatch.RampUp{From: 1, Step: 1, Every: 200 * time.Millisecond}
	in.Processor.Lookahead = 1
	in.ContinueAsNewAfterPages = 8
	start(t, in)
	id := in.Job.WorkflowID
	ctx := context.Background()

	require.Eventually(t, func() bool { return progress(t, id).Pages.Completed >= 2 }, time.Minute, 20*time.Millisecond)
	require.NoError(t, orchestratorClient.SetDesiredState(ctx, id, temporalbatch.DesiredState{Generation: 2, Parallelism: 4, RampUp: in.Desired.RampUp, RateLimit: &temporalbatch.RateLimit{PagesPerSecond: 50}}))
	require.NoError(t, temporalClient.SignalWorkflow(ctx, id, "", temporalbatch.SignalEnqueuePage, map[string]any{"number": 1, "cursor": "0"}))
	require.NoError(t, temporalClient.SignalWorkflow(ctx, id, "", temporalbatch.SignalEnqueuePage, "not a page"))
	res, err := wait(t, id, 2*time.Minute)
	require.NoError(t, err, "failurePolicy.toleratedFailedPages tolerates the failed page")
	require.EqualValues(t, total-pageSize-1, res.Progress.Items.Processed)
	require.EqualValues(t, 1, res.Progress.Pages.Failed)
	require.Contains(t, res.Progress.Message, "page 3, tolerated by failurePolicy.toleratedFailedPages: 1")
	require.GreaterOrEqual(t, res.Progress.Runs, 2)

	replayFirstRun(t, id, historyName("classic"))
}

// replayFirstRun replays the first run of workflow id against the workflow
// code and, with -record-history, writes it to testdata/name.
func replayFirstRun(t *testing.T, id, name string) {
	t.Helper()
	first, err := firstRunID(context.Background(), id)
	require.NoError(t, err)
	hist := fullHistory(t, id, first)
	require.NoError(t, newReplayer(t).ReplayWorkflowHistory(nil, hist), "the first run's history does not replay")
	if *recordHistory {
		raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
		require.NoError(t, err)
		path := filepath.Join("testdata", name)
		require.NoError(t, os.WriteFile(path, raw, 0o644))
		t.Logf("wrote %s (%d events)", path, len(hist.GetEvents()))
	}
}

func fullHistory(t *testing.T, id, runID string) *historypb.History {
	t.Helper()
	it := temporalClient.GetWorkflowHistory(context.Background(), id, runID, false, 0)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	return hist
}
