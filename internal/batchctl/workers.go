package batchctl

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// rollingOut says whether the worker Deployment replaces pods of an older
// spec.worker template: the controller says so on Progressing while pages
// run; otherwise (a suspended or finished job) pods of two templates say it.
func rollingOut(job *batchv1alpha1.BatchJob) bool {
	w := job.Status.Workers
	if w == nil {
		return false
	}
	if c := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.ConditionProgressing); c != nil && c.Reason == batchv1alpha1.ReasonWorkersRollingOut {
		return true
	}
	return w.TemplateGeneration > 0 && w.TemplateGeneration != job.Generation && w.UpdatedReplicas < w.Replicas
}

// workersText is the worker pods and the template they run: "3 ready of 4,
// 2 on the template of generation 5, rolling out".
func workersText(job *batchv1alpha1.BatchJob) string {
	w := job.Status.Workers
	s := fmt.Sprintf("%d ready of %d", w.ReadyReplicas, w.Replicas)
	switch {
	case rollingOut(job):
		s += fmt.Sprintf(", %d on the template of generation %d, rolling out", w.UpdatedReplicas, job.Generation)
	case w.TemplateGeneration > 0 && w.TemplateGeneration == job.Generation && w.Replicas > 0:
		s += fmt.Sprintf(", all on the template of generation %d", w.TemplateGeneration)
	}
	return s
}

// redriveWaits: the re-drive asked for waits for the worker rollout
// (batch.temporalbatch.io/redrive-after-rollout) to reach the job's
// generation.
func redriveWaits(job *batchv1alpha1.BatchJob) bool {
	asked := job.Annotations[batchv1alpha1.AnnotationRedrive]
	if asked == "" || asked == job.Status.LastRedrive || job.Spec.Worker == nil || job.Annotations[batchv1alpha1.AnnotationRedriveAfterRollout] != "true" {
		return false
	}
	w := job.Status.Workers
	return w == nil || w.TemplateGeneration != job.Generation
}
