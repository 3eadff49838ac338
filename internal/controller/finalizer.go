package controller

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// finalize applies spec.cancellationPolicy to the workflow, then lets the job
// go. Worker Deployments go with their owner.
func (r *BatchJobReconciler) finalize(ctx context.Context, job *batchv1alpha1.BatchJob) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(job, batchv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx)
	// Even a finished job may have been re-driven into a new run, so the
	// policy applies whenever a workflow may have been started; both calls
	// are no-ops on a closed workflow. Without status.workflow the policy
	// goes to the job's deterministic workflow ID: a start may have
	// succeeded without its status write (the pass failed after it), and a
	// workflow that was never started is simply not found.
	id, namespace := workflowID(job), r.Connection.Namespace
	if wf := job.Status.Workflow; wf != nil {
		id, namespace = wf.ID, wf.Namespace
	}
	var err error
	switch job.Spec.CancellationPolicy {
	case batchv1alpha1.CancellationTerminate:
		err = r.Orchestrator.Terminate(ctx, id, "BatchJob deleted (cancellationPolicy: Terminate)")
	case batchv1alpha1.CancellationAbandon:
		logger.Info("Leaving the workflow running (cancellationPolicy: Abandon)", "workflowID", id)
	default:
		err = r.Orchestrator.Cancel(ctx, id)
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		err = nil
	}
	if err != nil {
		reason, msg := temporalProblem(err, namespace)
		if reason == "" {
			reason, msg = batchv1alpha1.ReasonTemporalUnavailable, err.Error()
		}
		st := *job.Status.DeepCopy()
		setCondition(&st, job.Generation, batchv1alpha1.ConditionReady, metav1.ConditionFalse, reason, "cannot apply cancellationPolicy on delete: "+msg)
		if werr := r.writeStatus(ctx, job, st); werr != nil {
			logger.Error(werr, "Recording the failed cancellation")
		}
		return ctrl.Result{}, fmt.Errorf("apply cancellationPolicy %s to workflow %s: %w", job.Spec.CancellationPolicy, id, err)
	}
	if job.Status.Workflow != nil {
		note := fmt.Sprintf("applied cancellationPolicy %s to workflow %s", job.Spec.CancellationPolicy, id)
		r.Recorder.Eventf(job, nil, "Normal", "Deleted", "Deleted", "%s", truncate(note, maxEventNote))
	}
	patch := client.MergeFrom(job.DeepCopy())
	controllerutil.RemoveFinalizer(job, batchv1alpha1.Finalizer)
	if err := r.Patch(ctx, job, patch); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("remove finalizer: %w", err)
	}
	forgetJobMetrics(job.Namespace, job.Name)
	if r.Reports != nil && job.Status.Workflow != nil {
		r.Reports.Forget(job.Status.Workflow.ID)
	}
	return ctrl.Result{}, nil
}
