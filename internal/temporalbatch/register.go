package temporalbatch

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers the orchestrator workflow on a worker polling the
// orchestrator task queue.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(BatchOrchestrator, workflow.RegisterOptions{Name: WorkflowType})
}
