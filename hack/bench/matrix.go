package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// orchestration is a shape of the orchestrator's job: how its pages are
// chained. Every shape runs the same pages.
type orchestration struct {
	name string
	// shape sets the chains and the lookahead of a job of pages pages.
	shape func(spec *temporalbatch.ProcessorSpec, pages, parallelism, chains int)
}

var orchestrations = []orchestration{
	{name: "classic", shape: func(spec *temporalbatch.ProcessorSpec, _, _, _ int) {
		spec.FirstCursor, spec.Lookahead = "0", 1
	}},
	{name: "lookahead", shape: func(spec *temporalbatch.ProcessorSpec, _, parallelism, _ int) {
		spec.FirstCursor, spec.Lookahead = "0", parallelism
	}},
	{name: "default", shape: func(spec *temporalbatch.ProcessorSpec, _, _, _ int) {
		// The lookahead a job gets when it does not set one: twice the
		// effective parallelism.
		spec.FirstCursor, spec.Lookahead = "0", 0
	}},
	{name: "cursors", shape: func(spec *temporalbatch.ProcessorSpec, pages, _, chains int) {
		spec.Cursors, spec.Lookahead = chainCursors(pages, chains), 1
	}},
}

func orchestrationNames() []string {
	names := make([]string, len(orchestrations))
	for i, o := range orchestrations {
		names[i] = o.name
	}
	return names
}

func orchestrationNamed(name string) (orchestration, bool) {
	for _, o := range orchestrations {
		if o.name == name {
			return o, true
		}
	}
	return orchestration{}, false
}

// cell is one point of the matrix.
type cell struct {
	parallelism int
	pageTime    time.Duration
	pages       int
}

func (c cell) String() string {
	return fmt.Sprintf("parallelism %d, %s, %d pages", c.parallelism, pageTimeLabel(c.pageTime), c.pages)
}

type bench struct {
	c             client.Client
	orchestrators *temporalbatch.Client
	cfg           config
	work          *pageWork
	log           io.Writer
}

// variant is what a cell measures: the baseline or an orchestration.
type variant struct {
	name string
	// run runs a workflow of pages pages in cell c, checks that it processed
	// every page once, and returns its ID and first run ID.
	run func(ctx context.Context, c cell, id string, pages int) (workflowID, runID string, err error)
}

func (b *bench) variants() []variant {
	vs := []variant{{name: "baseline", run: b.runBaseline}}
	for _, name := range b.cfg.variants {
		o, _ := orchestrationNamed(name)
		vs = append(vs, variant{name: o.name, run: func(ctx context.Context, c cell, id string, pages int) (string, string, error) {
			return b.runOrchestrator(ctx, c, id, pages, func(spec *temporalbatch.ProcessorSpec) {
				o.shape(spec, pages, c.parallelism, b.cfg.chains)
			})
		}})
	}
	return vs
}

// matrix measures every cell, printing each cell's results as it completes
// and, with -markdown, all of them as tables at the end.
func (b *bench) matrix(ctx context.Context, stdout io.Writer) error {
	variants := b.variants()
	var results []cellResult
	for _, parallelism := range b.cfg.parallelism {
		err := b.withPageWorkers(parallelism, func() error {
			for i, pageTime := range b.cfg.pageTimes {
				c := cell{parallelism: parallelism, pageTime: pageTime, pages: b.cfg.pagesFor(pageTime)}
				if i == 0 {
					if err := b.warmUp(ctx, c, variants); err != nil {
						return err
					}
				}
				res, err := b.measureCell(ctx, c, variants)
				if err != nil {
					return err
				}
				res.print(stdout, b.cfg.breakdown)
				results = append(results, res)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if b.cfg.markdown {
		printMarkdown(stdout, b.cfg, results)
	}
	return nil
}

// withPageWorkers runs f with page workers of parallelism slots, stopping
// them after.
func (b *bench) withPageWorkers(parallelism int, f func() error) error {
	workers, err := startPageWorkers(b.c, parallelism, b.work)
	defer stopAll(workers)
	if err != nil {
		return err
	}
	return f()
}

// warmUp runs every variant once, unmeasured, on freshly started page workers.
func (b *bench) warmUp(ctx context.Context, c cell, variants []variant) error {
	c.pages = b.cfg.warmupPages
	for _, v := range variants {
		m, err := b.measure(ctx, c, v, "warmup")
		if err != nil {
			return fmt.Errorf("%s warm-up at parallelism %d: %w", v.name, c.parallelism, err)
		}
		fmt.Fprintf(b.log, "warm-up   %-10s %s\n", v.name, m)
	}
	return nil
}

// measureCell runs the variants of a cell in turn, baseline first, for
// -rounds rounds.
func (b *bench) measureCell(ctx context.Context, c cell, variants []variant) (cellResult, error) {
	fmt.Fprintf(b.log, "cell: %s\n", c)
	runs := make([][]measurement, len(variants))
	for r := range b.cfg.rounds {
		for i, v := range variants {
			m, err := b.measure(ctx, c, v, fmt.Sprintf("r%d", r+1))
			if err != nil {
				return cellResult{}, fmt.Errorf("%s, %s round %d: %w", c, v.name, r+1, err)
			}
			fmt.Fprintf(b.log, "round %d/%d %-10s %s\n", r+1, b.cfg.rounds, v.name, m)
			runs[i] = append(runs[i], m)
		}
	}
	res := cellResult{cell: c, rounds: b.cfg.rounds}
	for i, v := range variants {
		res.rows = append(res.rows, summarize(v.name, runs[i]))
	}
	return res, nil
}

func (b *bench) measure(ctx context.Context, c cell, v variant, label string) (measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	id := fmt.Sprintf("bench-p%d-t%s-%s-%s-%s", c.parallelism, c.pageTime, v.name, label, strconv.FormatInt(time.Now().UnixNano(), 36))
	began := time.Now()
	workflowID, runID, err := v.run(ctx, c, id, c.pages)
	wall := time.Since(began)
	if err != nil {
		return measurement{}, err
	}
	events, err := countEvents(ctx, b.c, workflowID, runID, v.name != "baseline")
	if err != nil {
		return measurement{}, fmt.Errorf("count history events of %s: %w", workflowID, err)
	}
	return measurement{pages: c.pages, wall: wall, events: events}, nil
}

// processorSpec is the page settings every variant shares: the baseline
// derives its activity options from them exactly as the orchestrator does.
func processorSpec(pages int, pageTime time.Duration) temporalbatch.ProcessorSpec {
	args, _ := json.Marshal(pageArgs{Pages: pages, PageTime: pageTime})
	return temporalbatch.ProcessorSpec{
		Name:             offsetProcessor,
		PageSize:         pageSize,
		Args:             args,
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

// runOrchestrator runs a job of pages pages, shaped by shape, to its end and
// checks that it completed every page exactly as asked.
func (b *bench) runOrchestrator(ctx context.Context, c cell, id string, pages int, shape func(*temporalbatch.ProcessorSpec)) (string, string, error) {
	job := processor.JobRef{Namespace: "bench", Name: id, WorkflowID: temporalbatch.WorkflowID("bench", id, "0")}
	spec := processorSpec(pages, c.pageTime)
	shape(&spec)
	in := temporalbatch.Input{
		Job:       job,
		TaskQueue: pageQueue(false, c.parallelism),
		Processor: spec,
		Retry:     retryPolicy(),
		Desired:   temporalbatch.DesiredState{Generation: 1, Parallelism: c.parallelism},
	}
	runID, err := b.orchestrators.Start(ctx, in)
	if err != nil {
		return "", "", err
	}
	var res temporalbatch.Result
	// Get follows the chain of runs to the last one's result.
	err = b.c.GetWorkflow(ctx, job.WorkflowID, runID).Get(ctx, &res)
	missing, repeated := b.work.settle(job.WorkflowID, pages)
	if err != nil {
		return "", "", err
	}
	p := res.Progress
	if p.State != temporalbatch.StateSucceeded || p.Pages.Completed != int64(pages) || p.Items.Processed != int64(pages*pageSize) {
		return "", "", fmt.Errorf("orchestrator ended %s (%s) with %d of %d pages and %d of %d items completed",
			p.State, p.Message, p.Pages.Completed, pages, p.Items.Processed, pages*pageSize)
	}
	if missing > 0 {
		return "", "", fmt.Errorf("orchestrator reported %d pages completed, but %d of the %d pages were never processed", p.Pages.Completed, missing, pages)
	}
	if repeated > 0 {
		fmt.Fprintf(b.log, "note: %s processed %d page(s) more than once (retries)\n", id, repeated)
	}
	if p.Parallelism.MaxAchieved > c.parallelism {
		return "", "", fmt.Errorf("orchestrator ran %d pages at once, more than %d", p.Parallelism.MaxAchieved, c.parallelism)
	}
	return job.WorkflowID, runID, nil
}

func (b *bench) runBaseline(ctx context.Context, c cell, id string, pages int) (string, string, error) {
	in := baselineInput{
		Job:         processor.JobRef{Namespace: "bench", Name: id, WorkflowID: id},
		Pages:       pages,
		Parallelism: c.parallelism,
		TaskQueue:   pageQueue(true, c.parallelism),
		Processor:   processorSpec(pages, c.pageTime),
		Retry:       retryPolicy(),
	}
	run, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: baselineWorkflowQueue}, baselineWorkflowType, in)
	if err != nil {
		return "", "", err
	}
	var completed int
	err = run.Get(ctx, &completed)
	missing, _ := b.work.settle(id, pages)
	if err != nil {
		return "", "", err
	}
	if completed != pages || missing > 0 {
		return "", "", fmt.Errorf("baseline completed %d of %d pages, %d never processed", completed, pages, missing)
	}
	return id, run.GetRunID(), nil
}
