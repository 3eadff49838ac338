package batchctl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func withWorker(image string) func(*batchv1alpha1.BatchJobSpec) {
	return func(spec *batchv1alpha1.BatchJobSpec) {
		spec.Worker = &batchv1alpha1.WorkerSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "worker", Image: image}},
		}}}
	}
}

// deployFix edits the job's worker image, as a user deploying fixed code.
func deployFix(t *testing.T, job *batchv1alpha1.BatchJob) {
	t.Helper()
	require.NoError(t, k8s.Patch(t.Context(), job, rawMerge(`{"spec":{"worker":{"template":{"spec":{"containers":[{"name":"worker","image":"ghcr.io/acme/pricer:v2"}]}}}}}`)))
}

func TestGetAndWatchShowTheRollout(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`, withWorker("ghcr.io/acme/pricer:v1"))
	setStatus(t, job, func(st *batchv1alpha1.BatchJobStatus) {
		running(st)
		st.Workers = &batchv1alpha1.WorkerStatus{Replicas: 4, ReadyReplicas: 4, UpdatedReplicas: 4, TemplateGeneration: 1}
	})
	r := run(t, "get", "inflate-prices", "-n", ns)
	assert.Contains(t, r.Out, "4 ready of 4, all on the template of generation 1")

	deployFix(t, job)
	setStatus(t, job, func(st *batchv1alpha1.BatchJobStatus) {
		st.Workers = &batchv1alpha1.WorkerStatus{Replicas: 4, ReadyReplicas: 3, UpdatedReplicas: 2, TemplateGeneration: 1}
		st.Conditions[0] = cond(batchv1alpha1.ConditionProgressing, "True", batchv1alpha1.ReasonWorkersRollingOut,
			"rolling out the worker template of generation 2: 2 of 4 workers run it, 3 ready")
	})
	r = run(t, "get", "inflate-prices", "-n", ns)
	assert.Contains(t, r.Out, "3 ready of 4, 2 on the template of generation 2, rolling out")

	r = run(t, "watch", "inflate-prices", "-n", ns, "--timeout", "1s")
	assert.Contains(t, r.Out, "workers 3 ready of 4, 2 on the template of generation 2, rolling out")
}

func TestRedriveAfterRollout(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`, withWorker("ghcr.io/acme/pricer:v1"))
	setStatus(t, job, func(st *batchv1alpha1.BatchJobStatus) {
		failed(st)
		st.Workers = &batchv1alpha1.WorkerStatus{TemplateGeneration: 1}
	})

	deployFix(t, job)
	r := run(t, "redrive", "inflate-prices", "-n", ns, "--after-rollout")
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "its 2 failed pages run again with a fresh retry budget, once every worker pod runs the template of generation 2\n")
	annotations := fetch(t, job).Annotations
	assert.Equal(t, "true", annotations[batchv1alpha1.AnnotationRedriveAfterRollout])
	assert.NotEmpty(t, annotations[batchv1alpha1.AnnotationRedrive])

	r = run(t, "get", "inflate-prices", "-n", ns)
	assert.Contains(t, r.Out, "(requested, waits for the worker rollout to reach generation 2)")

	// A plain re-drive does not wait.
	r = run(t, "redrive", "inflate-prices", "-n", ns)
	require.Equal(t, 0, r.Code, r.Err)
	assert.NotContains(t, fetch(t, job).Annotations, batchv1alpha1.AnnotationRedriveAfterRollout)

	// Without spec.worker the operator cannot tell when workers run new code.
	elsewhere := newJob(t, ns, "elsewhere", "")
	setStatus(t, elsewhere, failed)
	r = run(t, "redrive", "elsewhere", "-n", ns, "--after-rollout")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Err, "has no spec.worker: its workers run outside the operator")
	assert.Empty(t, fetch(t, elsewhere).Annotations[batchv1alpha1.AnnotationRedrive])
}
