package controller

import "context"

// readOrchestrator reads a started job's orchestrator into obs. The usual
// poll of a running job is one Temporal call: the progress query, which the
// server rejects without asking a worker once the workflow has closed.
// Describe (and the workflow's result) is read only when the query was
// rejected or failed, or reports an end state: a closed workflow's Result is
// the final word, a failed query may mean the workflow closed or is gone,
// and a run that reports its end may still be closing. Describing first, as
// every pass once did, doubled the calls to answer "running" nearly always.
func (r *BatchJobReconciler) readOrchestrator(ctx context.Context, obs *observation, id string) error {
	pr, queryErr := r.Orchestrator.RunningProgress(ctx, id)
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
		// The run reports its end and has not closed yet.
		obs.progress = &pr
	default:
		return queryErr
	}
	return nil
}
