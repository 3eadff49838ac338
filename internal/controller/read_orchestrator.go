package controller

import (
	"context"
	"time"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// readOrchestrator reads a started job's orchestrator into obs. The usual
// poll of a running job costs no Temporal call when the workflow runs in
// this process (its report in the ProgressHub), and one otherwise: the
// progress query, which the server rejects without asking a worker once the
// workflow has closed. Describe (and the workflow's result) is read only
// when the query was rejected or failed, or the run reports an end state: a
// closed workflow's Result is the final word, a failed query may mean the
// workflow closed or is gone, and a run that reports its end may still be
// closing. Describing first, as every pass once did, doubled the calls to
// answer "running" nearly always.
func (r *BatchJobReconciler) readOrchestrator(ctx context.Context, obs *observation, id string) error {
	pr, queryErr := r.runningProgress(ctx, id)
	if queryErr == nil && !finished(phaseOf(pr.State)) {
		obs.progress = &pr
		return nil
	}
	res, closed, endErr, err := r.Orchestrator.Outcome(ctx, id)
	switch {
	case err != nil:
		return err
	case closed && res.Next.State == nil:
		obs.closedWithoutResult, obs.endErr = true, endErr
	case closed:
		obs.progress = &res.Progress
	case queryErr == nil:
		// The run reports its end and has not closed: pages are being
		// cancelled or failures are on their way to the failure handler.
		// The job is not over until the workflow is.
		obs.progress, obs.finishing = &pr, true
	default:
		return queryErr
	}
	return nil
}

// runningProgress is the run's report in the hub when there is a recent
// one, and the progress query otherwise.
func (r *BatchJobReconciler) runningProgress(ctx context.Context, id string) (temporalbatch.Progress, error) {
	if r.Reports != nil {
		if pr, ok := r.Reports.Latest(id, r.now(), r.reportMaxAge()); ok {
			return pr, nil
		}
	}
	pr, err := r.Orchestrator.RunningProgress(ctx, id)
	if err == nil && r.Reports != nil {
		r.Reports.Queried(id, r.now())
	}
	return pr, err
}

// reportMaxAge is how long a report stands for the run's progress without
// a query: a run that reports nothing for longer is idle (suspended, or
// pages that take long) or runs on another replica's worker, and a query
// tells which. The idle poll interval bounds it, so an idle job costs a
// query per idle interval, as it did before reports.
func (r *BatchJobReconciler) reportMaxAge() time.Duration {
	return max(r.Intervals.Idle, r.Intervals.Running)
}
