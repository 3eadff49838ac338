package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// ranTemplate is job once status said every worker pod ran the template of
// generation g.
func ranTemplate(job *batchv1alpha1.BatchJob, g int64) *batchv1alpha1.BatchJob {
	j := job.DeepCopy()
	j.Status.Workers = &batchv1alpha1.WorkerStatus{Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3, TemplateGeneration: g}
	return j
}

func withRedriveAfterRollout(v string) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) {
		j.Annotations = map[string]string{batchv1alpha1.AnnotationRedrive: v, batchv1alpha1.AnnotationRedriveAfterRollout: "true"}
	}
}

// appliedGeneration is a report of a run that applied generation g.
func appliedGeneration(g int64) func(*temporalbatch.Progress) {
	return func(pr *temporalbatch.Progress) { pr.Generation = g }
}

func requireTemplateGeneration(want int64) func(t *testing.T, p plan) {
	return func(t *testing.T, p plan) {
		t.Helper()
		require.Equal(t, want, p.status.Workers.TemplateGeneration, "status.workers.templateGeneration")
	}
}

// An edit of spec.worker at generation 6 rolls out over a job whose pods
// ran the template of generation 5.
func TestPlanWorkerRollout(t *testing.T) {
	running := progressFixture(appliedGeneration(6))
	edited := ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(6)), running), 5)
	runPlanCases(t, []planCase{
		{
			name: "template edited, the Deployment not written yet: rolling out, templateGeneration stays",
			obs: observation{job: edited, progress: ptr(running), workers: &workerObservation{
				replicas: 3, ready: 3, updated: 3, templateGeneration: 5, rolledOut: true,
			}},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkersRollingOut, "rolling out the worker template of generation 6: 0 of 3 workers run it, 3 ready"},
				batchv1alpha1.ConditionReconciling: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkersRollingOut, ""},
				batchv1alpha1.ConditionStalled:     {metav1.ConditionFalse, batchv1alpha1.ReasonWorkersRollingOut, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, ""},
			},
			check: requireTemplateGeneration(5),
		},
		{
			name: "new pods replace old ones: rolling out, with the counts",
			obs: observation{job: edited, progress: ptr(running), workers: &workerObservation{
				replicas: 4, ready: 3, updated: 1, templateGeneration: 6, currentTemplate: true,
			}},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkersRollingOut, "1 of 4 workers run it, 3 ready; stopping workers let their pages finish; 120 pages completed"},
			},
			check: func(t *testing.T, p plan) {
				require.Equal(t, &batchv1alpha1.WorkerStatus{Replicas: 4, ReadyReplicas: 3, UpdatedReplicas: 1, TemplateGeneration: 5}, p.status.Workers)
			},
		},
		{
			name: "every pod runs the new template: templateGeneration is the job's generation, the rollout is over",
			obs: observation{job: edited, progress: ptr(running), workers: &workerObservation{
				replicas: 5, ready: 4, updated: 5, templateGeneration: 6, currentTemplate: true, rolledOut: true,
			}},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			},
			check: requireTemplateGeneration(6),
		},
		{
			// The Deployment's generation moves with its replicas: until
			// its controller observes it, nothing says every pod runs the
			// template of generation 7, and nothing rolls out either.
			name: "a scale-up after a parallelism edit is no rollout",
			obs: observation{
				job:      ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(7)), running), 6),
				progress: ptr(progressFixture(appliedGeneration(7))),
				workers:  &workerObservation{replicas: 3, ready: 2, updated: 3, templateGeneration: 6, currentTemplate: true},
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			},
			check: requireTemplateGeneration(6),
		},
		{
			name: "the first template of a new job is no rollout",
			obs: observation{
				job:      reported(planJobFixture(withWorkers(2)), progressFixture()),
				progress: ptr(progressFixture()),
				workers:  &workerObservation{templateGeneration: 1, currentTemplate: true},
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			},
			check: requireTemplateGeneration(0),
		},
		{
			name: "pods of two templates run though status knew of none: rolling out",
			obs: observation{
				job:      reported(planJobFixture(withWorkers(2), withGeneration(2)), progressFixture(appliedGeneration(2))),
				progress: ptr(progressFixture(appliedGeneration(2))),
				workers:  &workerObservation{replicas: 4, ready: 4, updated: 2, templateGeneration: 2, currentTemplate: true},
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkersRollingOut, "2 of 4 workers run it"},
			},
		},
		{
			name: "stalled wins over rolling out",
			obs: observation{job: edited, progress: ptr(progressFixture(appliedGeneration(6), func(pr *temporalbatch.Progress) {
				pr.LastProgressTime = planNow.Add(-time.Hour)
			})), workers: &workerObservation{replicas: 4, ready: 3, updated: 1, templateGeneration: 6, currentTemplate: true}},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonStalled, ""},
			},
		},
	})
}

// A re-drive asked for after the rollout waits until every worker pod runs
// the template of the job's generation, then goes as usual.
func TestPlanRedriveAfterRollout(t *testing.T) {
	running := progressFixture(appliedGeneration(6))
	failed := progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed", time.Hour), failedPage)
	rollingOut := &workerObservation{replicas: 4, ready: 3, updated: 1, templateGeneration: 6, currentTemplate: true}
	rolledOut := &workerObservation{replicas: 5, ready: 5, updated: 5, templateGeneration: 6, currentTemplate: true, rolledOut: true}
	runningJob := ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(6), withRedriveAfterRollout("r1")), running), 5)
	failedJob := ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(6), withRedriveAfterRollout("r1")), failed), 5)
	runPlanCases(t, []planCase{
		{
			name:  "held while pods of the old template run, and said so",
			obs:   observation{job: runningJob, progress: ptr(running), workers: rollingOut},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5), redrive: "",
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkersRollingOut,
					`re-drive "r1" waits for the worker rollout: status.workers.templateGeneration is 5, not 6 yet`},
			},
		},
		{
			name:  "sent once every pod runs the template of the job's generation",
			obs:   observation{job: runningJob, progress: ptr(running), workers: rolledOut},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second, replicas: ptr[int32](5), redrive: "r1",
			check: requireTemplateGeneration(6),
		},
		{
			// Deploy, then re-drive: the edit and the annotation arrive
			// before the controller wrote the new template.
			name:  "a failed job whose Deployment still has the old template: held, looked at again soon",
			obs:   observation{job: failedJob, progress: ptr(failed), workers: &workerObservation{templateGeneration: 5, rolledOut: true}},
			phase: batchv1alpha1.PhaseFailed, requeue: 5 * time.Second, replicas: ptr[int32](0), redrive: "",
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonFinished, `re-drive "r1" waits for the worker rollout`},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionTrue, batchv1alpha1.ReasonPagesFailed, ""},
			},
		},
		{
			name: "a held re-drive keeps a failed job whose TTL passed",
			obs: observation{
				job:      ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(6), withRedriveAfterRollout("r1"), withTTL(60)), failed), 5),
				progress: ptr(failed), workers: &workerObservation{templateGeneration: 5, rolledOut: true},
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 5 * time.Second, replicas: ptr[int32](0), redrive: "", deleteJob: false,
		},
		{
			name:  "a failed job's workers, scaled to 0, take the new template at once: sent",
			obs:   observation{job: failedJob, progress: ptr(failed), workers: &workerObservation{templateGeneration: 6, currentTemplate: true, rolledOut: true}},
			phase: batchv1alpha1.PhaseFailed, requeue: time.Second, replicas: ptr[int32](0), redrive: "r1",
			check: func(t *testing.T, p plan) {
				require.Equal(t, batchv1alpha1.PhaseRunning, p.statusAfterRedrive.Phase, "the re-driven job runs again")
			},
		},
		{
			name: "without the annotation a re-drive goes at once, rollout or not",
			obs: observation{
				job:      ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(6), withRedrive("r1")), running), 5),
				progress: ptr(running), workers: rollingOut,
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second, replicas: ptr[int32](5), redrive: "r1",
		},
		{
			name:  "a job without spec.worker has no rollout to wait for",
			obs:   observation{job: reported(planJobFixture(withGeneration(6), withRedriveAfterRollout("r1")), running), progress: ptr(running)},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second, redrive: "r1",
		},
		{
			name: "a re-drive already acted on is not held again",
			obs: observation{
				job: ranTemplate(reported(planJobFixture(withWorkers(2), withGeneration(6), withRedriveAfterRollout("r1"), func(j *batchv1alpha1.BatchJob) {
					j.Status.LastRedrive = "r1"
				}), running), 5),
				progress: ptr(running), workers: rollingOut,
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](5), redrive: "",
			check: func(t *testing.T, p plan) {
				c := p.status.Conditions
				for _, cond := range c {
					require.NotContains(t, cond.Message, "waits for the worker rollout")
				}
			},
		},
	})
}

// What a pass reads of the worker Deployment: whether it carries the
// current template, and whether its controller replaced every older pod.
func TestObserveWorkers(t *testing.T) {
	job := workerJob(func(j *batchv1alpha1.BatchJob) { j.Generation = 6 })
	current, hash := workerDeployment(job, workerConn)
	current.Spec.Template.Annotations = withAnnotation(current.Spec.Template.Annotations, annotationPodSpec, hash)
	current.Annotations = map[string]string{annotationTemplateGeneration: "6"}
	current.Generation = 3
	tests := []struct {
		name   string
		status appsv1.DeploymentStatus
		edit   func(*batchv1alpha1.BatchJob)
		want   workerObservation
	}{
		{
			name:   "every pod updated, observed",
			status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3},
			want:   workerObservation{replicas: 3, ready: 2, updated: 3, templateGeneration: 6, currentTemplate: true, rolledOut: true},
		},
		{
			name:   "old pods left",
			status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 4, ReadyReplicas: 4, UpdatedReplicas: 1},
			want:   workerObservation{replicas: 4, ready: 4, updated: 1, templateGeneration: 6, currentTemplate: true},
		},
		{
			name:   "the Deployment controller has not observed the latest spec",
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3},
			want:   workerObservation{replicas: 3, ready: 3, updated: 3, templateGeneration: 6, currentTemplate: true},
		},
		{
			name: "the spec's template changed since",
			edit: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Worker.Template.Spec.Containers[0].Image = "ghcr.io/temporal-batch/example-worker:v2"
			},
			status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3},
			want:   workerObservation{replicas: 3, ready: 3, updated: 3, templateGeneration: 6, rolledOut: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := job.DeepCopy()
			if tc.edit != nil {
				tc.edit(j)
			}
			d := current.DeepCopy()
			d.Status = tc.status
			require.Equal(t, &tc.want, observeWorkers(j, workerConn, d))
		})
	}
}
