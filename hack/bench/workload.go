package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Task queues, disjoint between the baseline and the orchestrator so that
// neither polls the other's tasks. Each has a workflow queue and a page queue,
// so that activities are never dispatched eagerly to the workflow's own worker
// in one variant only. Page queues are per parallelism (pageQueue): a page
// worker's activity slots are fixed when it starts.
const (
	baselineWorkflowQueue     = "bench-baseline-workflows"
	orchestratorWorkflowQueue = "bench-orchestrator-workflows"
)

// Registered names.
const (
	baselineWorkflowType = "BenchBaseline"
	baselinePageActivity = "bench-baseline-page"
	offsetProcessor      = "bench-offset"
)

// pageSize is the items a page claims to hold; no item is touched.
const pageSize = 100

const heartbeatTimeout = 30 * time.Second

func pageQueue(baseline bool, parallelism int) string {
	if baseline {
		return fmt.Sprintf("bench-baseline-pages-p%d", parallelism)
	}
	return fmt.Sprintf("bench-orchestrator-pages-p%d", parallelism)
}

// startWorkflowWorkers starts the baseline's and the orchestrator's workflow
// workers, with default options; they serve every cell.
func startWorkflowWorkers(c client.Client) ([]worker.Worker, error) {
	baseline := worker.New(c, baselineWorkflowQueue, worker.Options{})
	baseline.RegisterWorkflowWithOptions(baselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflowType})
	orchestrator := worker.New(c, orchestratorWorkflowQueue, worker.Options{})
	temporalbatch.Register(orchestrator)
	temporalbatch.RegisterActivities(orchestrator, c)
	return startAll(baseline, orchestrator)
}

// startPageWorkers starts the baseline's and the orchestrator's page workers
// for one parallelism, with the same options: parallelism activity slots each.
func startPageWorkers(c client.Client, parallelism int, work *pageWork) ([]worker.Worker, error) {
	opts := worker.Options{MaxConcurrentActivityExecutionSize: parallelism}
	baseline := worker.New(c, pageQueue(true, parallelism), opts)
	baseline.RegisterActivityWithOptions(work.baseline, activity.RegisterOptions{Name: baselinePageActivity})
	orchestrator := worker.New(c, pageQueue(false, parallelism), opts)
	processor.Register(orchestrator, offsetProcessor, work.offsets)
	return startAll(baseline, orchestrator)
}

// startAll starts workers in order and returns those started, to be stopped
// by the caller even when one fails to start.
func startAll(workers ...worker.Worker) ([]worker.Worker, error) {
	var started []worker.Worker
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return started, err
		}
		started = append(started, w)
	}
	return started, nil
}

func stopAll(workers []worker.Worker) {
	for _, w := range workers {
		w.Stop()
	}
}

// pageArgs are processor.args of every run, baseline included.
type pageArgs struct {
	// Pages of the run: where a cursor without an end stops.
	Pages int `json:"pages"`
	// PageTime is how long each page waits after enqueuing its successors.
	PageTime time.Duration `json:"pageTime,omitempty"`
}

// offsetCursor is a page's place in the run: page Index, in a chain that stops
// before page End. Written "<index>" for a chain ending at the run's last page
// and "<index>:<end>" for one of several chains over disjoint ranges.
type offsetCursor struct {
	Index, End int
	ranged     bool
}

func parseCursor(s string, pages int) (offsetCursor, error) {
	index, end, ranged := s, "", false
	if i := strings.IndexByte(s, ':'); i >= 0 {
		index, end, ranged = s[:i], s[i+1:], true
	}
	c := offsetCursor{End: pages, ranged: ranged}
	var err error
	if c.Index, err = strconv.Atoi(index); err != nil {
		return c, fmt.Errorf("cursor %q: want <index> or <index>:<end>", s)
	}
	if ranged {
		if c.End, err = strconv.Atoi(end); err != nil {
			return c, fmt.Errorf("cursor %q: want <index> or <index>:<end>", s)
		}
	}
	if c.Index < 0 || c.Index >= c.End || c.End > pages {
		return c, fmt.Errorf("cursor %q is outside the run's %d pages", s, pages)
	}
	return c, nil
}

// at is the cursor of page index of the same chain.
func (c offsetCursor) at(index int) string {
	if c.ranged {
		return fmt.Sprintf("%d:%d", index, c.End)
	}
	return strconv.Itoa(index)
}

// successors are the cursors of up to n pages after c in its chain.
func (c offsetCursor) successors(n int) []string {
	var out []string
	for i := c.Index + 1; i < c.End && len(out) < n; i++ {
		out = append(out, c.at(i))
	}
	return out
}

// chainCursors splits pages into chains contiguous ranges, as the cursors
// variant's processor.cursors.
func chainCursors(pages, chains int) []string {
	out := make([]string, chains)
	for i := range chains {
		c := offsetCursor{Index: i * pages / chains, End: (i + 1) * pages / chains, ranged: true}
		out[i] = c.at(c.Index)
	}
	return out
}

// pageWork is what a page does in every variant: wait for the page time, if
// set, and report the page's items as processed without touching any. It
// records every page processed, to check that a run processed each of its
// pages.
type pageWork struct {
	mu sync.Mutex
	// processed counts, per workflow ID, the times each page index completed.
	processed map[string][]uint16
}

func newPageWork() *pageWork { return &pageWork{processed: map[string][]uint16{}} }

func (w *pageWork) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *pageWork) record(workflowID string, pages, index int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts := w.processed[workflowID]
	if counts == nil {
		counts = make([]uint16, pages)
		w.processed[workflowID] = counts
	}
	if counts[index] < ^uint16(0) {
		counts[index]++
	}
}

// settle forgets a run's pages and returns how many of its pages were never
// processed and how many were processed more than once.
func (w *pageWork) settle(workflowID string, pages int) (missing, repeated int) {
	w.mu.Lock()
	counts := w.processed[workflowID]
	delete(w.processed, workflowID)
	w.mu.Unlock()
	if len(counts) != pages {
		return pages, 0
	}
	for _, n := range counts {
		switch {
		case n == 0:
			missing++
		case n > 1:
			repeated++
		}
	}
	return missing, repeated
}

// baseline is the baseline's page activity, with the page processor
// contract's input and result. Its cursor is the page index.
func (w *pageWork) baseline(ctx context.Context, in processor.PageInput) (processor.PageResult, error) {
	var args pageArgs
	if err := json.Unmarshal(in.Args, &args); err != nil {
		return processor.PageResult{}, processor.NonRetryable(processor.ErrorTypeInvalidArgs, "decode args: %v", err)
	}
	c, err := parseCursor(in.Page.Cursor, args.Pages)
	if err != nil {
		return processor.PageResult{}, processor.NonRetryable(processor.ErrorTypeInvalidPageInput, "%v", err)
	}
	if err := w.wait(ctx, args.PageTime); err != nil {
		return processor.PageResult{}, err
	}
	w.record(in.Job.WorkflowID, args.Pages, c.Index)
	return processor.PageResult{ItemsProcessed: int64(in.Page.Size)}, nil
}

// offsets is the orchestrator's page processor. A frontier page enqueues as
// many successors as it is asked for, computed from its own offset, unless it
// is the last page of its chain; then the page does its work.
func (w *pageWork) offsets(ctx context.Context, page *processor.Page) (processor.Result, error) {
	var args pageArgs
	if err := page.DecodeArgs(&args); err != nil {
		return processor.Result{}, err
	}
	c, err := parseCursor(page.Cursor, args.Pages)
	if err != nil {
		return processor.Result{}, processor.NonRetryable(processor.ErrorTypeInvalidPageInput, "%v", err)
	}
	if next := c.successors(page.Lookahead()); len(next) > 0 {
		if err := page.EnqueueNext(ctx, next...); err != nil {
			return processor.Result{}, err
		}
	}
	if err := w.wait(ctx, args.PageTime); err != nil {
		return processor.Result{}, err
	}
	w.record(page.Job.WorkflowID, args.Pages, c.Index)
	return processor.Result{ItemsProcessed: int64(page.Size)}, nil
}

// baselineInput describes a baseline run: the page activities the
// orchestrator would run, without the orchestration.
type baselineInput struct {
	Job         processor.JobRef            `json:"job"`
	Pages       int                         `json:"pages"`
	Parallelism int                         `json:"parallelism"`
	TaskQueue   string                      `json:"taskQueue"`
	Processor   temporalbatch.ProcessorSpec `json:"processor"`
	Retry       temporalbatch.RetryPolicy   `json:"retry"`
}

// baselineWorkflow keeps in.Parallelism page activities in flight, starting
// the next as one completes, until in.Pages have completed. It returns the
// number completed.
func baselineWorkflow(ctx workflow.Context, in baselineInput) (int, error) {
	sel := workflow.NewSelector(ctx)
	var started, inflight, completed int
	var failed error
	startPage := func() {
		n := int64(started)
		started++
		inflight++
		actx := workflow.WithActivityOptions(ctx, baselineActivityOptions(in, n, started))
		page := processor.PageInput{
			Job:  in.Job,
			Page: processor.PageRef{Number: n, Cursor: strconv.FormatInt(n, 10), Size: in.Processor.PageSize},
			Args: in.Processor.Args,
		}
		sel.AddFuture(workflow.ExecuteActivity(actx, baselinePageActivity, page), func(f workflow.Future) {
			inflight--
			var res processor.PageResult
			if err := f.Get(ctx, &res); err != nil && failed == nil {
				failed = err
			}
			completed++
		})
	}
	for completed < in.Pages {
		for inflight < in.Parallelism && started < in.Pages {
			startPage()
		}
		sel.Select(ctx)
		if failed != nil {
			return completed, failed
		}
	}
	return completed, nil
}

// baselineActivityOptions mirrors the options the orchestrator gives a page
// activity (AtLeastOnce delivery), ID and summary included.
func baselineActivityOptions(in baselineInput, page int64, seq int) workflow.ActivityOptions {
	rp := in.Retry
	return workflow.ActivityOptions{
		TaskQueue:           in.TaskQueue,
		ActivityID:          fmt.Sprintf("page-%d-%d", page, seq),
		StartToCloseTimeout: in.Processor.Timeout,
		HeartbeatTimeout:    in.Processor.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        rp.InitialInterval,
			BackoffCoefficient:     rp.BackoffCoefficient,
			MaximumInterval:        rp.MaximumInterval,
			MaximumAttempts:        rp.MaximumAttempts,
			NonRetryableErrorTypes: rp.NonRetryableErrorTypes,
		},
		Summary: fmt.Sprintf("page %d", page),
	}
}
