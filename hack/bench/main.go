// Command bench measures the BatchOrchestrator's page throughput against a
// baseline without orchestration, both on one Temporal dev server in one run.
//
// The baseline is a plain workflow that keeps -parallelism no-op activities in
// flight until -pages have completed. The orchestrator variant runs a job of
// -pages pages at -parallelism whose processor does nothing but enqueue the
// next page. Both use the same activity options and the same worker options,
// on task queues of their own. After one small warm-up run of each, the
// variants alternate for -rounds rounds and the medians are reported: pages
// per second, wall time, history events per page (over every run of a
// workflow that continued as new), the mean number of pages in flight and the
// orchestrator/baseline ratio.
//
// Pipelined pagination learns a page's cursor only once the page before it
// has started, so the orchestrator keeps more than one page in flight only
// when a page takes longer than the round trip that enqueues its successor.
// -page-time gives every page of both variants a processing time, to measure
// the orchestrator where parallelism can take effect; the default 0 measures
// the bare cost per page.
//
// Usage:
//
//	go run ./hack/bench [-pages 2000] [-parallelism 8] [-rounds 3] [-page-time 0] [-markdown]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Task queues, disjoint per variant so that neither polls the other's tasks.
// Each variant has a workflow queue and a page queue, so that activities are
// never dispatched eagerly to the workflow's own worker in one variant only.
const (
	baselineWorkflowQueue     = "bench-baseline-workflows"
	baselinePageQueue         = "bench-baseline-pages"
	orchestratorWorkflowQueue = "bench-orchestrator-workflows"
	orchestratorPageQueue     = "bench-orchestrator-pages"
)

// Registered names.
const (
	baselineWorkflowType = "BenchBaseline"
	baselinePageActivity = "bench-baseline-page"
	noopProcessor        = "bench-noop"
)

// pageSize is the items a page claims to hold; no item is touched.
const pageSize = 100

type config struct {
	pages, parallelism, rounds, warmupPages int
	pageTime                                time.Duration
	markdown, breakdown                     bool
	timeout                                 time.Duration
	dynamicConfig                           []string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.pages, "pages", 2000, "pages per measured run")
	flag.IntVar(&cfg.parallelism, "parallelism", 8, "pages in flight, and activity slots of each page worker")
	flag.IntVar(&cfg.rounds, "rounds", 3, "measured runs of each variant; the median is reported")
	flag.IntVar(&cfg.warmupPages, "warmup-pages", 100, "pages of the unmeasured warm-up run of each variant")
	flag.BoolVar(&cfg.markdown, "markdown", false, "also print the results as a markdown table")
	flag.BoolVar(&cfg.breakdown, "events", false, "also print history events per page by event type (median round of each variant)")
	flag.DurationVar(&cfg.pageTime, "page-time", 0, "time each page of both variants spends processing after it enqueued the next (0 = no-op pages)")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "limit for a single run")
	flag.Func("dynamic-config", "dev server dynamic config value `KEY=JSON`; repeatable", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=JSON")
		}
		cfg.dynamicConfig = append(cfg.dynamicConfig, v)
		return nil
	})
	flag.Parse()
	if cfg.pages < 1 || cfg.parallelism < 1 || cfg.rounds < 1 || cfg.warmupPages < 1 {
		fmt.Fprintln(os.Stderr, "bench: -pages, -parallelism, -rounds and -warmup-pages must be at least 1")
		os.Exit(2)
	}
	if cfg.pageTime < 0 || cfg.pageTime >= heartbeatTimeout {
		fmt.Fprintf(os.Stderr, "bench: -page-time must be at least 0 and less than the pages' heartbeat timeout (%s)\n", heartbeatTimeout)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run owns every resource it starts and stops them all before it returns,
// whatever the outcome: workers first, then the client, then the dev server.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "starting the Temporal dev server")
	srv, err := devserver.Start(ctx, devserver.Options{DynamicConfig: cfg.dynamicConfig})
	if err != nil {
		return err
	}
	defer srv.Stop()
	c, err := srv.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	workers, err := startWorkers(c, cfg.parallelism, cfg.pageTime)
	for _, w := range workers {
		defer w.Stop()
	}
	if err != nil {
		return err
	}

	b := &bench{c: c, orchestrators: temporalbatch.NewClient(c, orchestratorWorkflowQueue), cfg: cfg, log: stderr}
	variants := []variant{
		{name: "baseline", run: b.runBaseline},
		{name: "orchestrator", run: b.runOrchestrator},
	}
	for _, v := range variants {
		m, err := b.measure(ctx, v, "warmup", cfg.warmupPages)
		if err != nil {
			return fmt.Errorf("%s warm-up: %w", v.name, err)
		}
		fmt.Fprintf(stderr, "warm-up %-12s %s\n", v.name, m)
	}
	results := make([][]measurement, len(variants))
	for r := range cfg.rounds {
		for i, v := range variants {
			m, err := b.measure(ctx, v, fmt.Sprintf("r%d", r+1), cfg.pages)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", v.name, r+1, err)
			}
			fmt.Fprintf(stderr, "round %d/%d %-12s %s\n", r+1, cfg.rounds, v.name, m)
			results[i] = append(results[i], m)
		}
	}

	rows := make([]row, len(variants))
	for i, v := range variants {
		rows[i] = summarize(v.name, results[i])
	}
	report(stdout, cfg, rows)
	return nil
}

// startWorkers starts a workflow worker and a page worker per variant. Both
// page workers get the same options: parallelism activity slots each.
func startWorkers(c client.Client, parallelism int, pageTime time.Duration) ([]worker.Worker, error) {
	pageOptions := worker.Options{MaxConcurrentActivityExecutionSize: parallelism}
	pages := pageWork{time: pageTime}

	baselineWorkflows := worker.New(c, baselineWorkflowQueue, worker.Options{})
	baselineWorkflows.RegisterWorkflowWithOptions(baselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflowType})
	baselinePages := worker.New(c, baselinePageQueue, pageOptions)
	baselinePages.RegisterActivityWithOptions(pages.baseline, activity.RegisterOptions{Name: baselinePageActivity})

	orchestratorWorkflows := worker.New(c, orchestratorWorkflowQueue, worker.Options{})
	temporalbatch.Register(orchestratorWorkflows)
	orchestratorPages := worker.New(c, orchestratorPageQueue, pageOptions)
	processor.Register(orchestratorPages, noopProcessor, pages.enqueueNext)

	var started []worker.Worker
	for _, w := range []worker.Worker{baselineWorkflows, baselinePages, orchestratorWorkflows, orchestratorPages} {
		if err := w.Start(); err != nil {
			return started, err
		}
		started = append(started, w)
	}
	return started, nil
}

type bench struct {
	c             client.Client
	orchestrators *temporalbatch.Client
	cfg           config
	log           io.Writer
}

type variant struct {
	name string
	// run starts a workflow of pages pages, waits for it and returns its ID
	// and first run ID.
	run func(ctx context.Context, id string, pages int) (workflowID, runID string, err error)
}

// measurement is one run of a variant.
type measurement struct {
	pages  int
	wall   time.Duration
	events eventCount
}

func (m measurement) pagesPerSecond() float64 { return float64(m.pages) / m.wall.Seconds() }

func (m measurement) eventsPerPage() float64 { return float64(m.events.total) / float64(m.pages) }

// meanInFlight is the time-average number of pages scheduled and not yet
// closed (Little's law: the summed page latencies over the wall time).
func (m measurement) meanInFlight() float64 { return m.events.pageTime.Seconds() / m.wall.Seconds() }

func (m measurement) String() string {
	return fmt.Sprintf("%d pages in %s: %.1f pages/s, %.2f events/page, %.2f pages in flight, %d run(s)",
		m.pages, m.wall.Round(time.Millisecond), m.pagesPerSecond(), m.eventsPerPage(), m.meanInFlight(), m.events.runs)
}

func (b *bench) measure(ctx context.Context, v variant, label string, pages int) (measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	id := fmt.Sprintf("bench-%s-%s-%s", v.name, label, strconv.FormatInt(time.Now().UnixNano(), 36))
	began := time.Now()
	workflowID, runID, err := v.run(ctx, id, pages)
	wall := time.Since(began)
	if err != nil {
		return measurement{}, err
	}
	events, err := countEvents(ctx, b.c, workflowID, runID)
	if err != nil {
		return measurement{}, fmt.Errorf("count history events of %s: %w", workflowID, err)
	}
	return measurement{pages: pages, wall: wall, events: events}, nil
}

const heartbeatTimeout = 30 * time.Second

// The page settings both variants share: the baseline derives its activity
// options from them exactly as the orchestrator does.
func processorSpec(pages int) temporalbatch.ProcessorSpec {
	args, _ := json.Marshal(noopArgs{Pages: pages})
	return temporalbatch.ProcessorSpec{
		Name:             noopProcessor,
		PageSize:         pageSize,
		Args:             args,
		FirstCursor:      "0",
		Timeout:          time.Minute,
		HeartbeatTimeout: heartbeatTimeout,
		Delivery:         temporalbatch.AtLeastOnce,
	}
}

func retryPolicy() temporalbatch.RetryPolicy {
	return temporalbatch.RetryPolicy{
		InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Second,
		MaximumAttempts: 5, StuckPageRetryInterval: time.Second,
	}
}

func (b *bench) runOrchestrator(ctx context.Context, id string, pages int) (string, string, error) {
	job := processor.JobRef{Namespace: "bench", Name: id, WorkflowID: temporalbatch.WorkflowID("bench", id, "0")}
	in := temporalbatch.Input{
		Job:       job,
		TaskQueue: orchestratorPageQueue,
		Processor: processorSpec(pages),
		Retry:     retryPolicy(),
		Desired:   temporalbatch.DesiredState{Generation: 1, Parallelism: b.cfg.parallelism},
	}
	runID, err := b.orchestrators.Start(ctx, in)
	if err != nil {
		return "", "", err
	}
	var res temporalbatch.Result
	// Get follows the chain of runs to the last one's result.
	if err := b.c.GetWorkflow(ctx, job.WorkflowID, runID).Get(ctx, &res); err != nil {
		return "", "", err
	}
	p := res.Progress
	if p.State != temporalbatch.StateSucceeded || p.Pages.Completed != int64(pages) {
		return "", "", fmt.Errorf("orchestrator ended %s (%s) with %d of %d pages", p.State, p.Message, p.Pages.Completed, pages)
	}
	if p.Parallelism.MaxAchieved > b.cfg.parallelism {
		return "", "", fmt.Errorf("orchestrator ran %d pages at once, more than %d", p.Parallelism.MaxAchieved, b.cfg.parallelism)
	}
	return job.WorkflowID, runID, nil
}

func (b *bench) runBaseline(ctx context.Context, id string, pages int) (string, string, error) {
	in := baselineInput{
		Job:         processor.JobRef{Namespace: "bench", Name: id, WorkflowID: id},
		Pages:       pages,
		Parallelism: b.cfg.parallelism,
		TaskQueue:   baselinePageQueue,
		Processor:   processorSpec(pages),
		Retry:       retryPolicy(),
	}
	run, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: baselineWorkflowQueue}, baselineWorkflowType, in)
	if err != nil {
		return "", "", err
	}
	var completed int
	if err := run.Get(ctx, &completed); err != nil {
		return "", "", err
	}
	if completed != pages {
		return "", "", fmt.Errorf("baseline completed %d of %d pages", completed, pages)
	}
	return id, run.GetRunID(), nil
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

type noopArgs struct {
	Pages int `json:"pages"`
}

// pageWork is what a page does in both variants: nothing but wait for time,
// if set, and report the page's items as processed without touching any.
type pageWork struct {
	time time.Duration
}

func (w pageWork) process(ctx context.Context) error {
	if w.time <= 0 {
		return nil
	}
	select {
	case <-time.After(w.time):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// baseline is the baseline's page activity, with the page processor
// contract's input and result.
func (w pageWork) baseline(ctx context.Context, in processor.PageInput) (processor.PageResult, error) {
	if err := w.process(ctx); err != nil {
		return processor.PageResult{}, err
	}
	return processor.PageResult{ItemsProcessed: int64(in.Page.Size)}, nil
}

// enqueueNext is the orchestrator's page processor: it enqueues the next page
// unless this is the last one, then does the page's work.
func (w pageWork) enqueueNext(ctx context.Context, page *processor.Page) (processor.Result, error) {
	var args noopArgs
	if err := page.DecodeArgs(&args); err != nil {
		return processor.Result{}, err
	}
	if page.Number+1 < int64(args.Pages) {
		if err := page.EnqueueNext(ctx, strconv.FormatInt(page.Number+1, 10)); err != nil {
			return processor.Result{}, err
		}
	}
	if err := w.process(ctx); err != nil {
		return processor.Result{}, err
	}
	return processor.Result{ItemsProcessed: int64(page.Size)}, nil
}

// eventCount is the history of a workflow over every run of its chain.
type eventCount struct {
	runs   int
	total  int
	byType map[enumspb.EventType]int
	// pageTime sums, over the page activities, the time from scheduled to closed.
	pageTime time.Duration
}

// countEvents reads the history of runID and of every run it continued as.
func countEvents(ctx context.Context, c client.Client, workflowID, runID string) (eventCount, error) {
	n := eventCount{byType: map[enumspb.EventType]int{}}
	for runID != "" {
		n.runs++
		next := ""
		scheduled := map[int64]time.Time{}
		it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return eventCount{}, err
			}
			n.total++
			n.byType[ev.GetEventType()]++
			at := ev.GetEventTime().AsTime()
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				scheduled[ev.GetEventId()] = at
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
				n.pageTime += at.Sub(scheduled[ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()])
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
				next = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
			}
		}
		runID = next
	}
	return n, nil
}

// row is a variant's median over the measured rounds.
type row struct {
	name          string
	pagesPerSec   float64
	wall          time.Duration
	eventsPerPage float64
	inFlight      float64
	runs          float64
	// typical is the round whose throughput is the median (the lower middle
	// for an even number of rounds), for the per-type breakdown.
	typical measurement
}

func summarize(name string, ms []measurement) row {
	pps := make([]float64, len(ms))
	walls := make([]float64, len(ms))
	epp := make([]float64, len(ms))
	inFlight := make([]float64, len(ms))
	runs := make([]float64, len(ms))
	for i, m := range ms {
		pps[i], walls[i], epp[i] = m.pagesPerSecond(), m.wall.Seconds(), m.eventsPerPage()
		inFlight[i], runs[i] = m.meanInFlight(), float64(m.events.runs)
	}
	byPPS := slices.Clone(ms)
	slices.SortFunc(byPPS, func(a, b measurement) int { return cmpFloat(a.pagesPerSecond(), b.pagesPerSecond()) })
	return row{
		name:          name,
		pagesPerSec:   median(pps),
		wall:          time.Duration(median(walls) * float64(time.Second)),
		eventsPerPage: median(epp),
		inFlight:      median(inFlight),
		runs:          median(runs),
		typical:       byPPS[(len(byPPS)-1)/2],
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func report(w io.Writer, cfg config, rows []row) {
	base, orch := rows[0], rows[1]
	ratio := orch.pagesPerSec / base.pagesPerSec
	fmt.Fprintf(w, "pages=%d parallelism=%d page-time=%s rounds=%d (medians)\n", cfg.pages, cfg.parallelism, cfg.pageTime, cfg.rounds)
	if len(cfg.dynamicConfig) > 0 {
		fmt.Fprintf(w, "dev server dynamic config: %s\n", strings.Join(cfg.dynamicConfig, " "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tpages/s\twall\tevents/page\tin flight\truns\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%.2f\t%.2f\t%s\t\n", r.name, r.pagesPerSec, r.wall.Round(time.Millisecond), r.eventsPerPage, r.inFlight, formatRuns(r.runs))
	}
	tw.Flush()
	fmt.Fprintf(w, "orchestrator/baseline pages/s: %.2f\n", ratio)

	if cfg.markdown {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| variant | pages/s | wall time | history events/page | mean pages in flight | workflow runs |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %.1f | %s | %.2f | %.2f | %s |\n", r.name, r.pagesPerSec, r.wall.Round(time.Millisecond), r.eventsPerPage, r.inFlight, formatRuns(r.runs))
		}
		fmt.Fprintf(w, "| **orchestrator/baseline** | **%.2f** | | | | |\n", ratio)
	}

	if cfg.breakdown {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "history events per page by type (median round):")
		types := map[enumspb.EventType]bool{}
		for _, r := range rows {
			for t := range r.typical.events.byType {
				types[t] = true
			}
		}
		var sorted []enumspb.EventType
		for t := range types {
			sorted = append(sorted, t)
		}
		slices.Sort(sorted)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		header := []string{"event type"}
		for _, r := range rows {
			header = append(header, r.name)
		}
		fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
		for _, t := range sorted {
			cells := []string{strings.TrimPrefix(t.String(), "EVENT_TYPE_")}
			for _, r := range rows {
				cells = append(cells, fmt.Sprintf("%.3f", float64(r.typical.events.byType[t])/float64(r.typical.pages)))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
		tw.Flush()
	}
}

func formatRuns(runs float64) string {
	if runs == float64(int(runs)) {
		return strconv.Itoa(int(runs))
	}
	return strconv.FormatFloat(runs, 'f', 1, 64)
}
