package controller

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// Orchestrator is what the controller needs of Temporal: the calls of
// temporalbatch.Client, each safe to repeat.
type Orchestrator interface {
	Start(ctx context.Context, in temporalbatch.Input) (runID string, err error)
	SetDesiredState(ctx context.Context, workflowID string, d temporalbatch.DesiredState) error
	// RunningProgress fails with temporalbatch.ErrClosed once the workflow
	// has closed; Outcome then tells how it ended.
	RunningProgress(ctx context.Context, workflowID string) (temporalbatch.Progress, error)
	Outcome(ctx context.Context, workflowID string) (res temporalbatch.Result, closed bool, endErr error, err error)
	Redrive(ctx context.Context, workflowID string, r temporalbatch.RedriveRequest) error
	Cancel(ctx context.Context, workflowID string) error
	Terminate(ctx context.Context, workflowID, reason string) error
}

var _ Orchestrator = (*temporalbatch.Client)(nil)

// workflowID is the orchestrator workflow ID of a job.
func workflowID(job *batchv1alpha1.BatchJob) string {
	return temporalbatch.WorkflowID(job.Namespace, job.Name, string(job.UID))
}

// temporalProblem classifies an error from Temporal into a condition reason
// and a message that says what to do, or returns "" when it is not about
// reaching or using Temporal.
func temporalProblem(err error, namespace string) (reason, message string) {
	var nsNotFound *serviceerror.NamespaceNotFound
	var notFound *serviceerror.NotFound
	var denied *serviceerror.PermissionDenied
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	switch {
	case errors.As(err, &nsNotFound):
		return batchv1alpha1.ReasonNamespaceNotFound, fmt.Sprintf("Temporal namespace %q does not exist: create it (temporal operator namespace create %s) or point the operator at another", namespace, namespace)
	case errors.As(err, &notFound):
		return batchv1alpha1.ReasonWorkflowNotFound, fmt.Sprintf("%s: the orchestrator workflow's history is gone from Temporal namespace %q (its retention period passed, or the server's data was wiped): %v", workflowGone, namespace, err)
	case errors.As(err, &denied):
		return batchv1alpha1.ReasonTemporalPermissionDenied, fmt.Sprintf("the manager's Temporal credentials lack a permission on namespace %q: %v; grant it to the manager's identity (or fix --temporal-namespace); retrying with backoff", namespace, err)
	case errors.As(err, &unavailable), errors.As(err, &deadline), errors.Is(err, context.DeadlineExceeded):
		return batchv1alpha1.ReasonTemporalUnavailable, fmt.Sprintf("Temporal does not answer: %v; retrying with backoff", err)
	}
	return "", ""
}

// workflowGone opens the message of a job whose workflow Temporal no
// longer has.
const workflowGone = "the job's state is lost; create a new BatchJob to run it again"
