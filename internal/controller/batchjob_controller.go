// Package controller reconciles BatchJob resources: it starts and steers the
// orchestrator workflow, scales the worker Deployment and writes progress
// into status. Each pass observes, plans (a pure function) and executes.
package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// BatchJobReconciler reconciles BatchJob objects.
type BatchJobReconciler struct {
	client.Client
	Scheme       *runtime.Scheme
	Recorder     events.EventRecorder
	Orchestrator Orchestrator
	// Connection is what worker pods are told about Temporal.
	Connection Connection
	Intervals  Intervals
	// Timeout bounds one reconcile pass.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is the random source of the poll jitter, uniform in [0, 1);
	// math/rand/v2's Float64 when nil.
	Rand func() float64
	// Reports holds the progress of the orchestrator runs this process
	// hosts; nil: progress is always queried.
	Reports *ProgressHub
	// TaskQueuePolicy is the task queues a job may name; "" is Any.
	TaskQueuePolicy TaskQueuePolicy
}

// The verbs are those the controller's client calls (rbac_test.go checks
// them against the calls of the envtest suite). The client reads BatchJobs
// and Deployments through the cache, which lists and watches: it never
// gets one. BatchJobs are patched (the finalizer) and deleted
// (ttlSecondsAfterFinished); status is written by update only; worker
// Deployments are created and patched. update on batchjobs/finalizers is not
// a call: the API server asks for it to set blockOwnerDeletion in the
// worker Deployment's owner reference.
// +kubebuilder:rbac:groups=batch.temporalbatch.io,resources=batchjobs,verbs=list;watch;patch;delete
// +kubebuilder:rbac:groups=batch.temporalbatch.io,resources=batchjobs/status,verbs=update
// +kubebuilder:rbac:groups=batch.temporalbatch.io,resources=batchjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one BatchJob a step closer to its spec.
func (r *BatchJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	reconciles.WithLabelValues(req.Namespace, req.Name).Inc()
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	var job batchv1alpha1.BatchJob
	if err := r.Get(ctx, req.NamespacedName, &job); err != nil {
		if apierrors.IsNotFound(err) {
			forgetJobMetrics(req.Namespace, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !job.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &job)
	}
	if !controllerutil.ContainsFinalizer(&job, batchv1alpha1.Finalizer) {
		patch := client.MergeFrom(job.DeepCopy())
		controllerutil.AddFinalizer(&job, batchv1alpha1.Finalizer)
		if err := r.Patch(ctx, &job, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}

	obs, err := r.observe(ctx, &job)
	if err != nil {
		return ctrl.Result{}, err
	}
	p := planJob(obs, r.Intervals)
	return r.execute(ctx, &job, obs, p)
}

// observe reads the worker Deployment and the orchestrator's progress.
func (r *BatchJobReconciler) observe(ctx context.Context, job *batchv1alpha1.BatchJob) (observation, error) {
	obs := observation{job: job, now: r.now(), jitter: 2*r.rand() - 1}
	if job.Spec.Worker != nil {
		var d appsv1.Deployment
		err := r.Get(ctx, types.NamespacedName{Namespace: job.Namespace, Name: workersName(job)}, &d)
		switch {
		case err == nil:
			obs.workers = observeWorkers(job, r.Connection, &d)
		case !apierrors.IsNotFound(err):
			return obs, err
		}
	}
	in, err := orchestratorInput(job)
	if err == nil && job.Status.Workflow == nil {
		// Checked before the start only: spec.taskQueue cannot change, and
		// a job started under an earlier policy runs on.
		err = r.TaskQueuePolicy.check(job)
	}
	if err != nil {
		obs.invalidSpec = err
		return obs, nil
	}
	if job.Status.Workflow == nil {
		in.EnqueueToken = newEnqueueToken()
	}
	obs.input = in
	if job.Status.Workflow == nil {
		return obs, nil
	}
	// A finished job has nothing to read unless someone asked for a re-drive.
	redrive := job.Annotations[batchv1alpha1.AnnotationRedrive]
	if finished(job.Status.Phase) && (redrive == "" || redrive == job.Status.LastRedrive) && job.Status.ObservedGeneration == job.Generation {
		return obs, nil
	}
	id := job.Status.Workflow.ID
	if err := r.readOrchestrator(ctx, &obs, id); err != nil {
		reason, msg := temporalProblem(err, job.Status.Workflow.Namespace)
		if reason == "" {
			return obs, fmt.Errorf("read progress of workflow %s: %w", id, err)
		}
		obs.temporalReason, obs.temporalMessage = reason, msg
	}
	return obs, nil
}

// execute carries out a plan: Temporal calls, the Deployment, status and
// events, then deletion or the requeue. What to write is the plan's.
func (r *BatchJobReconciler) execute(ctx context.Context, job *batchv1alpha1.BatchJob, obs observation, p plan) (ctrl.Result, error) {
	out := r.callTemporal(ctx, p)
	// A Deployment that cannot be written does not keep the status from
	// being written: a workflow started this pass must reach
	// status.workflow, or deleting the job could not cancel it.
	if p.replicas != nil {
		if _, err := r.ensureWorkers(ctx, job, *p.replicas); err != nil {
			out.workers = err
		}
	}
	st, evs := p.statusAfter(job, out, r.Connection.Namespace)
	if err := r.report(ctx, job, st, evs); err != nil {
		return ctrl.Result{}, errors.Join(err, out.workers)
	}
	if out.workers != nil {
		return ctrl.Result{Priority: ptr(pollPriority)}, fmt.Errorf("worker Deployment: %w", out.workers)
	}
	return r.finish(ctx, job, obs, p, out.err)
}

// callTemporal makes the plan's Temporal calls in order: start, desired
// state, re-drive. It stops at the first that fails.
func (r *BatchJobReconciler) callTemporal(ctx context.Context, p plan) outcome {
	logger := log.FromContext(ctx)
	var calls outcome
	wf := p.status.Workflow
	if p.start != nil {
		runID, err := r.Orchestrator.Start(ctx, *p.start)
		if err != nil {
			calls.err = err
			return calls
		}
		wf = &batchv1alpha1.WorkflowRef{Namespace: r.Connection.Namespace, ID: p.start.Job.WorkflowID, RunID: runID}
		calls.started = wf
		logger.Info("Started orchestrator workflow", "workflowID", wf.ID, "runID", runID)
	}
	if p.sendDesired != nil {
		if err := r.Orchestrator.SetDesiredState(ctx, wf.ID, *p.sendDesired); err != nil {
			calls.err = err
			return calls
		}
	}
	if p.redrive != "" {
		if err := r.Orchestrator.Redrive(ctx, wf.ID, temporalbatch.RedriveRequest{ID: p.redrive, IncludeUnknown: p.redriveUnknown}); err != nil {
			calls.err = err
			return calls
		}
		calls.redriven = true
		logger.Info("Re-drive requested", "redrive", p.redrive, "includeUnknown", p.redriveUnknown)
	}
	return calls
}

// report writes the status, then records its events and metrics.
func (r *BatchJobReconciler) report(ctx context.Context, job *batchv1alpha1.BatchJob, st batchv1alpha1.BatchJobStatus, evs []event) error {
	if err := r.writeStatus(ctx, job, st); err != nil {
		return err
	}
	for _, e := range evs {
		typ := corev1.EventTypeNormal
		if e.warning {
			typ = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(job, nil, typ, e.reason, e.reason, "%s", truncate(e.message, maxEventNote))
	}
	recordJobMetrics(job, st)
	return nil
}

// finish deletes the job when its TTL passed, else says when to look again:
// errors back off through the rate limiter rather than a fixed requeue.
func (r *BatchJobReconciler) finish(ctx context.Context, job *batchv1alpha1.BatchJob, obs observation, p plan, temporalErr error) (ctrl.Result, error) {
	if p.deleteJob {
		log.FromContext(ctx).Info("Deleting finished job: ttlSecondsAfterFinished passed")
		if err := r.Delete(ctx, job, client.PropagationPolicy("Background")); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, nil
	}
	// Looking again, after an interval or an error, waits behind what a
	// user or a run asked for (see pollPriority).
	again := ctrl.Result{Priority: ptr(pollPriority)}
	if temporalErr != nil {
		return again, fmt.Errorf("temporal: %w", temporalErr)
	}
	if obs.temporalReason != "" && !(obs.temporalReason == batchv1alpha1.ReasonWorkflowNotFound && finished(p.status.Phase)) {
		return again, errors.New(obs.temporalMessage)
	}
	again.RequeueAfter = p.requeueAfter
	return again, nil
}

// pollPriority is the workqueue priority of a pass the controller asks for
// itself: a poll, or a retry after an error. Passes that events ask for (a
// job created, a spec edit, a re-drive, a deletion, a run's report that
// status must show) keep the default priority 0 and go first, so that with
// hundreds of jobs polled every few seconds an edit does not queue behind
// every job's poll. It is the priority controller-runtime gives the objects
// of its first list after a start, so that polls of running jobs cannot
// starve jobs not read since a restart either.
var pollPriority = handler.LowPriority

func (r *BatchJobReconciler) rand() float64 {
	if r.Rand != nil {
		return r.Rand()
	}
	return rand.Float64()
}

func (r *BatchJobReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the controller: BatchJobs and their worker
// Deployments, with backoff from 1 s to 2 min on errors. Status-only updates
// of a BatchJob do not trigger a pass (see jobChanged); a report in Reports
// that status must show at once does (see ProgressHub).
func (r *BatchJobReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrent int, skipNameValidation bool) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&batchv1alpha1.BatchJob{}, builder.WithPredicates(jobChanged)).
		Owns(&appsv1.Deployment{})
	if r.Reports != nil {
		b = b.WatchesRawSource(r.Reports.source())
	}
	return b.
		Named("batchjob").
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(maxConcurrent, 1),
			SkipNameValidation:      &skipNameValidation,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 2*time.Minute),
		}).
		Complete(r)
}
