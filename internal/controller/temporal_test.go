package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func TestWorkflowID(t *testing.T) {
	job := planJobFixture()
	require.Equal(t, "batchjob/shop/inflate-prices/7d3c2a10-5b1f-4f0e-9a52-1c2d3e4f5a6b", workflowID(job))

	// Deleting and re-creating a job with the same name must not reach the old workflow.
	again := planJobFixture(func(j *batchv1alpha1.BatchJob) { j.UID = "0f9e8d7c-0000-4000-8000-000000000001" })
	require.NotEqual(t, workflowID(job), workflowID(again))
}

func TestTemporalProblem(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		reason  string
		message []string
	}{
		{
			name:    "namespace not found",
			err:     serviceerror.NewNamespaceNotFound("batch"),
			reason:  batchv1alpha1.ReasonNamespaceNotFound,
			message: []string{`Temporal namespace "batch" does not exist`, "temporal operator namespace create batch"},
		},
		{
			name:    "namespace not found, wrapped",
			err:     fmt.Errorf("start workflow: %w", serviceerror.NewNamespaceNotFound("batch")),
			reason:  batchv1alpha1.ReasonNamespaceNotFound,
			message: []string{`"batch"`},
		},
		{
			name:    "server unavailable",
			err:     serviceerror.NewUnavailable("connection refused"),
			reason:  batchv1alpha1.ReasonTemporalUnavailable,
			message: []string{"Temporal does not answer", "connection refused"},
		},
		{
			name:    "server deadline exceeded",
			err:     serviceerror.NewDeadlineExceeded("context deadline exceeded"),
			reason:  batchv1alpha1.ReasonTemporalUnavailable,
			message: []string{"Temporal does not answer"},
		},
		{
			name:    "reconcile deadline exceeded",
			err:     fmt.Errorf("query progress: %w", context.DeadlineExceeded),
			reason:  batchv1alpha1.ReasonTemporalUnavailable,
			message: []string{"Temporal does not answer", "deadline exceeded"},
		},
		{
			name: "unrelated error",
			err:  errors.New("json: cannot unmarshal string into Go value of type int"),
		},
		{
			name:    "workflow not found: its history is gone",
			err:     fmt.Errorf("describe: %w", serviceerror.NewNotFound("workflow execution not found")),
			reason:  batchv1alpha1.ReasonWorkflowNotFound,
			message: []string{"the job's state is lost", "create a new BatchJob", "retention", `namespace "batch"`, "workflow execution not found"},
		},
		{
			name:    "permission denied",
			err:     serviceerror.NewPermissionDenied("Request unauthorized.", ""),
			reason:  batchv1alpha1.ReasonTemporalPermissionDenied,
			message: []string{`namespace "batch"`, "credentials lack a permission", "Request unauthorized.", "retrying with backoff"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reason, message := temporalProblem(tc.err, "batch")
			require.Equal(t, tc.reason, reason)
			if tc.reason == "" {
				require.Empty(t, message)
			}
			for _, m := range tc.message {
				require.Contains(t, message, m)
			}
		})
	}
}
