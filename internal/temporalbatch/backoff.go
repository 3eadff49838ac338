package temporalbatch

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Continue-as-new waits for the pages in flight, because a page's result
// can only reach the run that started it. A page waiting in retry backoff is
// not running, though: waiting for it would stall the pipeline for up to
// retry.maximumInterval. While it drains, the orchestrator asks Temporal
// which of its pages wait for a retry, cancels them (nothing runs, so
// nothing is lost) and carries them, with the attempts they used, to the
// next run.

// PagesInBackoffActivity is the local activity, run by the orchestrator's own
// worker, that lists the run's pages waiting for a retry.
const PagesInBackoffActivity = "BatchOrchestrator.PagesInBackoff"

// backoffCheckInterval is how often a draining run looks for pages in backoff.
const backoffCheckInterval = 2 * time.Second

// backoffMargin: a page whose next attempt is due sooner than this is waited
// for rather than cancelled, so that a cancellation never races the attempt
// starting on a worker (with the page then running in two runs at once).
const backoffMargin = time.Second

// PageInBackoff is a page activity waiting for its next attempt.
type PageInBackoff struct {
	ActivityID string `json:"activityId"`
	// Attempt is the attempt it waits to start; Attempt-1 were used.
	Attempt int32 `json:"attempt"`
}

// backoffLister lists a workflow run's page activities that wait for a retry.
type backoffLister struct {
	client client.Client
}

// PagesInBackoff describes the calling workflow run and returns its
// activities waiting for a retry whose next attempt is more than
// backoffMargin away.
func (b *backoffLister) PagesInBackoff(ctx context.Context) ([]PageInBackoff, error) {
	we := activity.GetInfo(ctx).WorkflowExecution
	desc, err := b.client.DescribeWorkflowExecution(ctx, we.ID, we.RunID)
	if err != nil {
		return nil, err
	}
	return inBackoff(desc.GetPendingActivities(), time.Now().Add(backoffMargin)), nil
}

// inBackoff picks the activities scheduled for a retry not due before after.
func inBackoff(pending []*workflowpb.PendingActivityInfo, after time.Time) []PageInBackoff {
	var pages []PageInBackoff
	for _, a := range pending {
		next := a.GetNextAttemptScheduleTime()
		if a.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED && a.GetAttempt() > 1 && next != nil && next.AsTime().After(after) {
			pages = append(pages, PageInBackoff{ActivityID: a.GetActivityId(), Attempt: a.GetAttempt()})
		}
	}
	return pages
}

// releaseBackoff runs while the run drains to continue as new: it cancels the
// pages that wait for a retry, so that they wait in the next run instead.
func (o *orchestrator) releaseBackoff(ctx workflow.Context) {
	if o.version < versionLookahead || o.in.Processor.Delivery == AtMostOnce || o.checkingBackoff {
		return
	}
	if !o.backoffCheckAt.IsZero() && o.now.Before(o.backoffCheckAt) {
		o.setAlarm(ctx, o.backoffCheckAt)
		return
	}
	o.checkingBackoff = true
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	future := workflow.ExecuteLocalActivity(lctx, PagesInBackoffActivity)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var pages []PageInBackoff
		err := future.Get(ctx, &pages)
		o.checkingBackoff = false
		o.backoffCheckAt = workflow.Now(ctx).Add(backoffCheckInterval)
		o.dirty = true
		if err != nil {
			// Without the list the run waits for every page, as it
			// would for a running one.
			o.logger.Warn("Could not list pages waiting for a retry; draining waits for them", "Error", err)
			return
		}
		byID := map[string]int32{}
		for _, p := range pages {
			byID[p.ActivityID] = p.Attempt
		}
		for _, n := range sortedKeys(o.inflight) {
			f := o.inflight[n]
			if attempt, ok := byID[f.activityID]; ok {
				f.Attempts += attempt - 1
				f.cancel()
			}
		}
	})
}
