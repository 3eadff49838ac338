package temporalbatch

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers the orchestrator workflow on a worker polling the
// orchestrator task queue. Register its activities too (RegisterActivities).
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(BatchOrchestrator, workflow.RegisterOptions{Name: WorkflowType})
}

// RegisterActivities registers the local activity through which the
// orchestrator finds its pages in retry backoff, using c, on the worker that
// runs the orchestrator. Without it, continue-as-new waits for those pages.
func RegisterActivities(r worker.ActivityRegistry, c client.Client) {
	r.RegisterActivityWithOptions((&backoffLister{client: c}).PagesInBackoff, activity.RegisterOptions{Name: PagesInBackoffActivity})
}
