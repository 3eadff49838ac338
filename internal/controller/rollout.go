package controller

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// annotationTemplateGeneration, on the worker Deployment (not its pod
// template, which would roll the pods on every edit of the job), is the job
// generation whose spec.worker the Deployment's template was written from.
const annotationTemplateGeneration = "batch.temporalbatch.io/template-generation"

// workerObservation is what one pass read of the worker Deployment.
type workerObservation struct {
	replicas, ready, updated int32
	// templateGeneration is the job generation the Deployment's template
	// was written from (annotationTemplateGeneration); 0 when unknown.
	templateGeneration int64
	// currentTemplate: the Deployment carries the template of the job's
	// spec as it is now.
	currentTemplate bool
	// rolledOut: the Deployment controller observed the Deployment's latest
	// spec and no pod of an older template is left.
	rolledOut bool
}

// observeWorkers reads the worker Deployment d of job.
func observeWorkers(job *batchv1alpha1.BatchJob, conn Connection, d *appsv1.Deployment) *workerObservation {
	_, hash := workerDeployment(job, conn)
	gen, _ := strconv.ParseInt(d.Annotations[annotationTemplateGeneration], 10, 64)
	return &workerObservation{
		replicas: d.Status.Replicas, ready: d.Status.ReadyReplicas, updated: d.Status.UpdatedReplicas,
		templateGeneration: gen,
		currentTemplate:    d.Spec.Template.Annotations[annotationPodSpec] == hash,
		rolledOut:          d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == d.Status.Replicas,
	}
}

// workerStatus is status.workers: the Deployment's replicas, and the
// latest job generation whose template every worker pod runs. That is the
// current generation once the Deployment carries the current template and
// has replaced every pod of an older one, else what status said before.
// Readiness is not asked for: a pod that is not ready yet runs the new
// template too, and a scale-up would otherwise hold the generation back.
func workerStatus(obs observation) *batchv1alpha1.WorkerStatus {
	var prev int64
	if w := obs.job.Status.Workers; w != nil {
		prev = w.TemplateGeneration
	}
	d := obs.workers
	if d == nil {
		return &batchv1alpha1.WorkerStatus{TemplateGeneration: prev}
	}
	st := &batchv1alpha1.WorkerStatus{Replicas: d.replicas, ReadyReplicas: d.ready, UpdatedReplicas: d.updated, TemplateGeneration: prev}
	if d.currentTemplate && d.rolledOut {
		st.TemplateGeneration = obs.job.Generation
	}
	return st
}

// workersRollingOut says whether the Deployment replaces worker pods of an
// older template: pods of two templates run, or a template written after
// the one every pod last ran has not reached every pod yet. The first
// template of a job is no rollout: no pod runs older code.
func workersRollingOut(obs observation) bool {
	d := obs.workers
	if obs.job.Spec.Worker == nil || d == nil || d.currentTemplate && d.rolledOut {
		return false
	}
	ran := workerStatus(obs).TemplateGeneration
	return d.updated < d.replicas || ran > 0 && (!d.currentTemplate || d.templateGeneration > ran)
}

// workersRolledOut: every worker pod runs the template of the job's
// current generation (see workerStatus); true for a job without workers.
func workersRolledOut(obs observation) bool {
	return obs.job.Spec.Worker == nil || workerStatus(obs).TemplateGeneration == obs.job.Generation
}

// rolloutMessage says how far the rollout of the current template got.
func rolloutMessage(obs observation) string {
	d := obs.workers
	updated := d.updated
	if !d.currentTemplate {
		// Written to the Deployment this pass: no pod runs it yet.
		updated = 0
	}
	return fmt.Sprintf("rolling out the worker template of generation %d: %d of %d workers run it, %d ready; stopping workers let their pages finish",
		obs.job.Generation, updated, d.replicas, d.ready)
}
