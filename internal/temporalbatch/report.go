package temporalbatch

import (
	"maps"
	"slices"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Reporter receives the orchestrator's progress from the worker that runs
// it, so that a controller in the same process can read progress without a
// query: zero Temporal calls for a running job whose workflow this process
// hosts. Report is called from workflow code, once per workflow task that
// ran the orchestrator's loop, never while replaying; it must not block.
type Reporter interface {
	Report(Report)
}

// Report is one run's progress summary as the orchestrator last computed it.
type Report struct {
	// Job is the BatchJob the run belongs to.
	Job        processor.JobRef
	WorkflowID string
	RunID      string
	// Progress is the summary (no cursors), with maps and slices of its own.
	Progress Progress
}

// RegisterReporting registers the orchestrator workflow like Register, with
// every run's progress also handed to rep. A process whose worker shares the
// task queue with others gets the reports of the runs it hosts only; a
// reader must fall back to the progress query for the rest.
func RegisterReporting(r worker.WorkflowRegistry, rep Reporter) {
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in Input) (Result, error) {
		return runOrchestrator(ctx, in, rep)
	}, workflow.RegisterOptions{Name: WorkflowType})
}

// report hands the current summary to the reporter. It issues no command
// and changes no state: a replay, with or without a reporter, issues the
// same commands.
func (o *orchestrator) report(ctx workflow.Context) {
	if o.reporter == nil || workflow.IsReplaying(ctx) {
		return
	}
	p := o.summary()
	// The workflow goes on changing its maps and slices; the reader gets
	// copies.
	p.ByType = maps.Clone(p.ByType)
	p.Recent = slices.Clone(p.Recent)
	if p.CompletionTime != nil {
		t := *p.CompletionTime
		p.CompletionTime = &t
	}
	info := workflow.GetInfo(ctx)
	o.reporter.Report(Report{Job: o.in.Job, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Progress: p})
}
