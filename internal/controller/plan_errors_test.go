package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// A started job's workflow that Temporal no longer has fails the job for
// good; a permission Temporal denies is retried.
func TestPlanTemporalNotFoundAndPermissionDenied(t *testing.T) {
	goneReason, goneMsg := temporalProblem(serviceerror.NewNotFound("workflow execution not found"), "default")
	deniedReason, deniedMsg := temporalProblem(serviceerror.NewPermissionDenied("Request unauthorized.", ""), "default")
	running := reported(planJobFixture(withWorkers(4)), progressFixture())
	failed := reported(planJobFixture(), progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed", time.Minute)))
	runPlanCases(t, []planCase{
		{
			name:  "workflow gone while running: Failed, workers stopped, no poll",
			obs:   observation{job: running, temporalReason: goneReason, temporalMessage: goneMsg},
			phase: batchv1alpha1.PhaseFailed, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed:   {metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowNotFound, "create a new BatchJob"},
				batchv1alpha1.ConditionReady:    {metav1.ConditionFalse, batchv1alpha1.ReasonWorkflowNotFound, "the job's state is lost"},
				batchv1alpha1.ConditionStalled:  {metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowNotFound, running.Status.Workflow.ID},
				batchv1alpha1.ConditionComplete: {metav1.ConditionFalse, batchv1alpha1.ReasonWorkflowNotFound, ""},
			},
			events: []string{"Warning Failed: WorkflowNotFound: workflow " + running.Status.Workflow.ID},
			check: func(t *testing.T, p plan) {
				require.NotNil(t, p.status.CompletionTime)
				require.Equal(t, running.Generation, p.status.ObservedGeneration)
			},
		},
		{
			name: "re-drive of a job whose workflow is gone: says the state is gone, asks nothing",
			obs: observation{job: func() *batchv1alpha1.BatchJob {
				j := failed.DeepCopy()
				j.Annotations = map[string]string{batchv1alpha1.AnnotationRedrive: "r1"}
				return j
			}(), temporalReason: goneReason, temporalMessage: goneMsg},
			phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowNotFound, `re-drive "r1" cannot run: workflow`},
				batchv1alpha1.ConditionReady:  {metav1.ConditionFalse, batchv1alpha1.ReasonWorkflowNotFound, "the job's state is lost"},
			},
			check: func(t *testing.T, p plan) {
				require.Equal(t, failed.Status.CompletionTime, p.status.CompletionTime, "the end stays when it was")
				require.Empty(t, p.status.LastRedrive)
			},
		},
		{
			name:  "permission denied while running: status kept, Ready says what to grant",
			obs:   observation{job: running, temporalReason: deniedReason, temporalMessage: deniedMsg},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](3), partialConditions: true,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalPermissionDenied, `namespace "default"`},
			},
		},
	})
}

// finish retries a Temporal problem with backoff, except a gone workflow:
// no retry brings it back.
func TestFinishRetriesButNotAGoneWorkflow(t *testing.T) {
	r := &BatchJobReconciler{}
	job := reported(planJobFixture(), progressFixture())
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{serviceerror.NewNotFound("workflow execution not found"), false},
		{serviceerror.NewPermissionDenied("Request unauthorized.", ""), true},
		{serviceerror.NewUnavailable("connection refused"), true},
	} {
		reason, msg := temporalProblem(tc.err, "default")
		obs := observation{job: job, now: planNow, temporalReason: reason, temporalMessage: msg}
		p := planJob(obs, planIntervals)
		_, err := r.finish(context.Background(), job, obs, p, nil)
		require.Equal(t, tc.retry, err != nil, "%s: %v", reason, err)
	}
}

// A worker Deployment that cannot be written says so on Ready, naming it;
// a finished job gets its Ready back once the Deployment could be written.
func TestWorkersConditions(t *testing.T) {
	job := reported(planJobFixture(withWorkers(2)), progressFixture(ended(temporalbatch.StateSucceeded, "", "all done", time.Minute)))
	st := *job.Status.DeepCopy()
	workersFailed(&st, job, errors.New(`deployments.apps "x" is forbidden: exceeded quota: `+strings.Repeat("q", 3000)))
	ready := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionReady)
	require.Equal(t, metav1.ConditionFalse, ready.Status)
	require.Equal(t, batchv1alpha1.ReasonWorkersUnavailable, ready.Reason)
	require.Contains(t, ready.Message, "shop/inflate-prices-workers")
	require.Contains(t, ready.Message, "exceeded quota")
	require.LessOrEqual(t, len(ready.Message), maxConditionMessage)

	workersRecovered(&st, job.Generation)
	require.Equal(t, meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.ConditionReady).Reason,
		meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionReady).Reason)
	require.Equal(t, metav1.ConditionTrue, meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionReady).Status)
}
