package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// writeStatus writes the status once per pass: it skips a write that changes
// nothing and retries on conflict against the latest object.
func (r *BatchJobReconciler) writeStatus(ctx context.Context, job *batchv1alpha1.BatchJob, st batchv1alpha1.BatchJobStatus) error {
	if equality.Semantic.DeepEqual(job.Status, st) {
		return nil
	}
	// The whole status goes in one update, guarded by resourceVersion: a
	// merge patch against a status the server has not stored yet would drop
	// the zero counters the schema requires.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		job.Status = st
		err := r.Status().Update(ctx, job)
		if apierrors.IsConflict(err) {
			if getErr := r.Get(ctx, client.ObjectKeyFromObject(job), job); getErr != nil {
				return getErr
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}
