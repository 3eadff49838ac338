package temporalbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Activity types the simulated jobs use.
const (
	simProcessorName = "simulated-processor"
	simHandlerName   = "simulated-failure-handler"
)

// simDataSet is a page processor over a data set of items 0..items-1, paged
// like the bundled synthetic processor: a page's cursor is the decimal offset
// of its first item. It records what it saw so tests can check what a user of
// the orchestrator would notice: which pages ran, when, and how many at once.
type simDataSet struct {
	items    int
	pageSize int

	// duration, when positive, is how long a successful page takes on the
	// workflow clock: the page completes asynchronously through a timer, so
	// that the test environment's clock moves as a server's would and several
	// pages overlap deterministically. Zero completes pages at once.
	duration time.Duration
	// pageDuration, when set, overrides duration per page.
	pageDuration func(page int64) time.Duration
	// firstCursor is the cursor of page 0 (spec.processor.firstCursor).
	firstCursor string
	// noSignal: the processor does not signal EnqueuePage.
	noSignal bool
	// nextCursor: the processor returns the next cursor in its result.
	nextCursor bool
	// noToken: the processor predates enqueue tokens and sends none.
	noToken bool
	// cursorPad makes every cursor after the first this many bytes longer.
	cursorPad int
	// ignoreLookahead: the processor predates lookahead and enqueues one
	// page whatever it is asked for (and also when asked for none).
	ignoreLookahead bool
	// chains, when set, are the item offsets where the job's chains start
	// (processor.cursors): cursors are then "<offset>:<end>" and page
	// numbers are the orchestrator's, not the page's index.
	chains []int

	// beforeEnqueue and afterEnqueue may fail an attempt, before and after the
	// next page was enqueued; call counts the page's attempts across retries
	// and re-runs, from 1.
	beforeEnqueue func(page int64, call int) error
	afterEnqueue  func(page int64, call int) error
	// onInput sees every attempt's input first.
	onInput func(in processor.PageInput)
	// failIf may fail an attempt before anything else, by its input.
	failIf func(in processor.PageInput) error
	// onStart runs first in every attempt, e.g. to send extra signals.
	onStart func(env *testsuite.TestWorkflowEnvironment, page int64, call int)
	// result adjusts a successful page's result, e.g. to report item failures.
	result func(page int64, res *processor.PageResult)

	env      atomic.Pointer[testsuite.TestWorkflowEnvironment]
	inflight atomic.Int64
	// clock is where the next run's workflow clock starts: where the last
	// one stopped, so that runs of one job follow each other in time
	// whatever the wall clock did meanwhile.
	clock time.Time

	mu         sync.Mutex
	calls      map[int64]int
	seen       map[int]int
	signals    int
	starts     []simStart
	violations []string
}

// simStart is one attempt of a page as the processor saw it.
type simStart struct {
	Page int64
	Call int
	// At is the workflow clock when the attempt started.
	At time.Time
	// InFlight is the number of attempts running, this one included.
	InFlight int64
	// Lookahead is the successors the page was asked for (-1: not said).
	Lookahead int
	// Seq is the order in which the orchestrator scheduled the page.
	Seq int64
}

func newSimDataSet(items, pageSize int) *simDataSet {
	return &simDataSet{
		items:    items,
		pageSize: pageSize,
		calls:    map[int64]int{},
		seen:     map[int]int{},
		clock:    time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	}
}

// pages is the number of pages; an empty data set still has its first,
// empty page.
func (d *simDataSet) pages() int64 { return max(int64((d.items+d.pageSize-1)/d.pageSize), 1) }

func (d *simDataSet) cursor(page int64) string {
	if page == 0 {
		return d.firstCursor
	}
	return strconv.FormatInt(page*int64(d.pageSize), 10) + d.padding()
}

func (d *simDataSet) padding() string {
	if d.cursorPad == 0 {
		return ""
	}
	return "|" + strings.Repeat("p", d.cursorPad-1)
}

func (d *simDataSet) violate(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.violations = append(d.violations, fmt.Sprintf(format, args...))
}

func (d *simDataSet) process(ctx context.Context, in processor.PageInput) (processor.PageResult, error) {
	env := d.env.Load()
	n := in.Page.Number
	running := d.inflight.Add(1)
	async := false
	defer func() {
		if !async {
			d.inflight.Add(-1)
		}
	}()

	d.mu.Lock()
	d.calls[n]++
	call := d.calls[n]
	asked := -1
	if in.Lookahead != nil {
		asked = *in.Lookahead
	}
	var seq int64
	fmt.Sscanf(activity.GetInfo(ctx).ActivityID, "page-%d-%d", new(int64), &seq)
	d.starts = append(d.starts, simStart{Page: n, Call: call, At: env.Now(), InFlight: running, Lookahead: asked, Seq: seq})
	d.mu.Unlock()

	first, limit := int(n)*d.pageSize, d.items
	if d.chains != nil {
		if _, err := fmt.Sscanf(in.Page.Cursor, "%d:%d", &first, &limit); err != nil || first < 0 || first >= limit || limit > d.items {
			d.violate("page %d started at cursor %q, not <offset>:<end> within %d items", n, in.Page.Cursor, d.items)
			return processor.PageResult{}, temporal.NewNonRetryableApplicationError("bad cursor", "InvalidCursor", nil)
		}
	} else {
		if n < 0 || n >= d.pages() {
			d.violate("page %d started, but the data set has %d pages", n, d.pages())
		}
		if in.Page.Cursor != d.cursor(n) {
			d.violate("page %d started at cursor %q, want %q", n, in.Page.Cursor, d.cursor(n))
		}
	}
	if in.Page.Size != d.pageSize {
		d.violate("page %d asked for %d items, want %d", n, in.Page.Size, d.pageSize)
	}
	if in.Job.WorkflowID == "" {
		d.violate("page %d has no workflow ID to signal", n)
	}

	if d.onInput != nil {
		d.onInput(in)
	}
	if d.failIf != nil {
		if err := d.failIf(in); err != nil {
			return processor.PageResult{}, err
		}
	}
	if d.onStart != nil {
		d.onStart(env, n, call)
	}
	if d.beforeEnqueue != nil {
		if err := d.beforeEnqueue(n, call); err != nil {
			return processor.PageResult{}, err
		}
	}
	end := min(first+d.pageSize, limit)
	hasNext := end < limit
	if next := d.successors(in, end, limit); len(next) > 0 && !d.noSignal && !enqueuedBefore(ctx) {
		token := in.EnqueueToken
		if d.noToken {
			token = ""
		}
		var body any = processor.EnqueuePage{Number: n + 1, Cursor: next[0], Token: token}
		if len(next) > 1 {
			body = processor.EnqueuePageBatch{Number: n + 1, Cursors: next, Token: token}
		}
		d.mu.Lock()
		d.signals++
		d.mu.Unlock()
		env.SignalWorkflow(processor.EnqueuePageSignal, body)
		activity.RecordHeartbeat(ctx, processor.HeartbeatMarker{EnqueuedNext: true})
	}
	if d.afterEnqueue != nil {
		if err := d.afterEnqueue(n, call); err != nil {
			return processor.PageResult{}, err
		}
	}
	res := processor.PageResult{ItemsProcessed: int64(end - first)}
	if hasNext && d.nextCursor {
		res.NextCursor = d.offsetCursor(end, limit)
	}
	d.mu.Lock()
	for item := first; item < end; item++ {
		d.seen[item]++
	}
	d.mu.Unlock()
	if d.result != nil {
		d.result(n, &res)
	}
	duration := d.duration
	if d.pageDuration != nil {
		duration = d.pageDuration(n)
	}
	if duration <= 0 {
		return res, nil
	}
	async = true
	token := activity.GetInfo(ctx).TaskToken
	env.RegisterDelayedCallback(func() {
		d.inflight.Add(-1)
		if err := env.CompleteActivity(token, res, nil); err != nil {
			d.violate("complete page %d: %v", n, err)
		}
	}, duration)
	return processor.PageResult{}, activity.ErrResultPending
}

// successors are the cursors the page enqueues: as many as it was asked
// for, fewer at the end of its part of the data.
func (d *simDataSet) successors(in processor.PageInput, end, limit int) []string {
	want := 1
	if in.Lookahead != nil && !d.ignoreLookahead {
		want = *in.Lookahead
	}
	var next []string
	size := 0
	for at := end; at < limit && len(next) < want; at += d.pageSize {
		c := d.offsetCursor(at, limit)
		// As processor.Page.EnqueueNext does: the longest prefix that fits.
		if size += len(c); size > processor.MaxEnqueueBytes {
			break
		}
		next = append(next, c)
	}
	return next
}

func (d *simDataSet) offsetCursor(offset, limit int) string {
	if d.chains != nil {
		return fmt.Sprintf("%d:%d", offset, limit)
	}
	return strconv.Itoa(offset) + d.padding()
}

// chainCursors are the cursors of the chains, for processor.cursors.
func (d *simDataSet) chainCursors() []string {
	var cursors []string
	for i, start := range d.chains {
		end := d.items
		if i+1 < len(d.chains) {
			end = d.chains[i+1]
		}
		cursors = append(cursors, fmt.Sprintf("%d:%d", start, end))
	}
	return cursors
}

// requireEveryItemOnce fails the test unless every item was processed by
// exactly one successful attempt.
func (d *simDataSet) requireEveryItemOnce(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for item := 0; item < d.items; item++ {
		require.Equal(t, 1, d.seen[item], "item %d processed %d times", item, d.seen[item])
	}
	require.Len(t, d.seen, d.items)
}

// enqueuedBefore reports whether an earlier attempt of the page already
// enqueued the next one, as the heartbeat marker of the contract says.
func enqueuedBefore(ctx context.Context) bool {
	if !activity.HasHeartbeatDetails(ctx) {
		return false
	}
	var m processor.HeartbeatMarker
	return activity.GetHeartbeatDetails(ctx, &m) == nil && m.EnqueuedNext
}

func (d *simDataSet) callsOf(page int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[page]
}

func (d *simDataSet) startsSnapshot() []simStart {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.starts)
}

func (d *simDataSet) maxInFlight() int64 {
	m := int64(0)
	for _, s := range d.startsSnapshot() {
		m = max(m, s.InFlight)
	}
	return m
}

// requireContract fails the test when a page ran that should not have, or
// with a wrong cursor.
func (d *simDataSet) requireContract(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	require.Empty(t, d.violations)
}

// simFailureSink is a failure handler activity that keeps every batch.
type simFailureSink struct {
	mu      sync.Mutex
	batches []processor.FailureBatch
}

func (s *simFailureSink) handle(_ context.Context, b processor.FailureBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, b)
	return nil
}

func (s *simFailureSink) failures() []processor.FailureReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []processor.FailureReport
	for _, b := range s.batches {
		all = append(all, b.Failures...)
	}
	return all
}

// simInput is a job over d with the given parallelism and fast retries, in
// the classic chain (lookahead 1) unless the test sets a lookahead.
func simInput(d *simDataSet, parallelism int) Input {
	return Input{
		Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: WorkflowID("shop", "inflate-prices", "uid")},
		TaskQueue: "inflate-prices",
		Processor: ProcessorSpec{
			Name:        simProcessorName,
			PageSize:    d.pageSize,
			Args:        json.RawMessage(`{"percent":3}`),
			FirstCursor: d.firstCursor,
			Cursors:     d.chainCursors(),
			Lookahead:   1,
			Timeout:     time.Minute,
			Delivery:    AtLeastOnce,
		},
		Retry: RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
			MaximumAttempts:    5,
		},
		Desired: DesiredState{Generation: 1, Parallelism: parallelism},
	}
}

// newSimEnv returns a test environment running the orchestrator with d as its
// page processor; sink, when not nil, is registered as the failure handler.
func newSimEnv(t *testing.T, d *simDataSet, sink *simFailureSink) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	// Failing pages are the point of many tests; their logs are noise.
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.SetStartTime(d.clock)
	Register(env)
	env.RegisterActivityWithOptions(d.process, activity.RegisterOptions{Name: simProcessorName})
	if sink != nil {
		env.RegisterActivityWithOptions(sink.handle, activity.RegisterOptions{Name: simHandlerName})
	}
	d.env.Store(env)
	return env
}

// runSim runs one workflow of the job to its end. setup registers delayed
// callbacks before the workflow starts.
func runSim(t *testing.T, d *simDataSet, sink *simFailureSink, in Input, setup func(env *testsuite.TestWorkflowEnvironment)) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newSimEnv(t, d, sink)
	if setup != nil {
		setup(env)
	}
	env.ExecuteWorkflow(WorkflowType, in)
	require.True(t, env.IsWorkflowCompleted())
	d.clock = env.Now()
	return env
}

// succeeded returns the Result of a workflow that succeeded.
func succeeded(t *testing.T, env *testsuite.TestWorkflowEnvironment) Result {
	t.Helper()
	require.NoError(t, env.GetWorkflowError())
	var res Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, StateSucceeded, res.Progress.State)
	require.Equal(t, ReasonCompleted, res.Progress.Reason)
	return res
}

// pagesFailed returns the Result of a workflow that reached its end with
// more pages failed for good than its failure policy tolerates: it failed
// with ReasonPagesFailed, and its message says how to re-drive them.
func pagesFailed(t *testing.T, env *testsuite.TestWorkflowEnvironment) Result {
	t.Helper()
	appErr, res := failedWith(t, env, ReasonPagesFailed)
	require.True(t, appErr.NonRetryable())
	p := res.Progress
	require.Equal(t, StateFailed, p.State)
	require.Equal(t, ReasonPagesFailed, p.Reason)
	require.Positive(t, p.Pages.Failed)
	require.Len(t, p.FailedPages, int(p.Pages.Failed))
	require.Zero(t, p.Pages.InFlight)
	require.Zero(t, p.Pages.Pending, "the job reached its end")
	require.NotNil(t, p.CompletionTime)
	require.Contains(t, p.Message, fmt.Sprintf("%d pages failed for good", p.Pages.Failed))
	require.Contains(t, p.Message, "kubectl batch redrive")
	require.Contains(t, p.Message, "batch.temporalbatch.io/redrive")
	require.Equal(t, p.Message, appErr.Message())
	require.NotNil(t, res.Next.State, "the Result carries the input a re-drive starts from")
	return res
}

// failedWith returns the application error a workflow failed with, and the
// Result in its details, after checking its type.
func failedWith(t *testing.T, env *testsuite.TestWorkflowEnvironment, errType string) (*temporal.ApplicationError, Result) {
	t.Helper()
	err := env.GetWorkflowError()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, errType, appErr.Type(), "%v", err)
	var res Result
	if appErr.HasDetails() {
		require.NoError(t, appErr.Details(&res))
	}
	return appErr, res
}

// continuedAsNew returns the input a workflow continued as new with.
func continuedAsNew(t *testing.T, env *testsuite.TestWorkflowEnvironment) Input {
	t.Helper()
	err := env.GetWorkflowError()
	require.True(t, workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var canErr *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &canErr))
	require.Equal(t, WorkflowType, canErr.WorkflowType.Name)
	var next Input
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(canErr.Input, &next))
	return next
}

// queryProgress asks the workflow for its progress.
func queryProgress(t *testing.T, env *testsuite.TestWorkflowEnvironment) Progress {
	t.Helper()
	v, err := env.QueryWorkflow(QueryProgress)
	require.NoError(t, err)
	var p Progress
	require.NoError(t, v.Get(&p))
	return p
}

// progressAt queries the progress at a time on the workflow clock, relative to
// the start; read the pointer after the workflow finished.
func progressAt(env *testsuite.TestWorkflowEnvironment, after time.Duration) *Progress {
	p := &Progress{}
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryProgress)
		if err == nil {
			err = v.Get(p)
		}
		if err != nil {
			p.Message = "query failed: " + err.Error()
		}
	}, after)
	return p
}

// requireCompleteJob checks the totals of a job that processed every item of d.
func requireCompleteJob(t *testing.T, d *simDataSet, p Progress) {
	t.Helper()
	require.Equal(t, d.pages(), p.Pages.Completed, "pages completed")
	require.Equal(t, d.pages(), p.Counters.PagesCompleted)
	require.Equal(t, int64(d.items)-p.Items.Failed, p.Items.Processed, "items processed")
	require.Zero(t, p.Pages.InFlight)
	require.Zero(t, p.Pages.Pending)
	require.Zero(t, p.Pages.Stuck)
	require.Equal(t, d.pages()-1, p.Frontier.Number, "the last page is the frontier")
	require.Equal(t, ChainCounts{Total: 1, Done: 1}, p.Chains, "the chain ended")
	d.requireContract(t)
}

// queued is every page a carried state holds waiting for a slot, in page
// order, whether it waits as a chain's frontier or behind one.
func queued(st *State) []Page {
	pages := append(append([]Page(nil), st.Frontiers...), st.Pending...)
	slices.SortFunc(pages, func(a, b Page) int { return int(a.Number - b.Number) })
	return pages
}
