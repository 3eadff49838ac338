package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

func TestParseTaskQueuePolicy(t *testing.T) {
	for _, s := range []string{"Any", "NamespacePrefix"} {
		p, err := ParseTaskQueuePolicy(s)
		require.NoError(t, err)
		require.Equal(t, TaskQueuePolicy(s), p)
	}
	_, err := ParseTaskQueuePolicy("namespace-prefix")
	require.EqualError(t, err, `task queue policy "namespace-prefix": use Any or NamespacePrefix`)
}

func TestTaskQueuePolicyCheck(t *testing.T) {
	tests := []struct {
		policy TaskQueuePolicy
		queue  string
		// want is the error message; "" allows the queue.
		want string
	}{
		{"", "orders", ""},
		{TaskQueuesAny, "team-b.orders", ""},
		{TaskQueuesNamespacePrefix, "team-a.orders", ""},
		{TaskQueuesNamespacePrefix, "team-a.orders.v2", ""},
		{TaskQueuesNamespacePrefix, "orders",
			`spec.taskQueue "orders" must start with "team-a." under this cluster's task queue policy (NamespacePrefix): use "team-a.orders", and have the job's workers poll it; spec.taskQueue cannot change, so create the BatchJob again`},
		{TaskQueuesNamespacePrefix, "team-b.orders",
			`spec.taskQueue "team-b.orders" must start with "team-a." under this cluster's task queue policy (NamespacePrefix): use "team-a.team-b.orders"`},
		{TaskQueuesNamespacePrefix, "team-a-b.orders", `must start with "team-a."`},
		{TaskQueuesNamespacePrefix, "team-a", `must start with "team-a."`},
		{TaskQueuesNamespacePrefix, "team-a.", `spec.taskQueue "team-a." must start with "team-a." under this cluster's task queue policy (NamespacePrefix): use "team-a.<queue>"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.policy, tt.queue), func(t *testing.T) {
			job := planJobFixture(func(j *batchv1alpha1.BatchJob) { j.Namespace, j.Spec.TaskQueue = "team-a", tt.queue })
			err := tt.policy.check(job)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// Under NamespacePrefix a new job whose task queue is another namespace's
// fails TaskQueueNotAllowed: no workflow, no workers. One that complies
// starts, with an enqueue token of its own. A job started before the policy
// runs on.
func TestTaskQueuePolicyAtStart(t *testing.T) {
	ctx := context.Background()
	r := &BatchJobReconciler{TaskQueuePolicy: TaskQueuesNamespacePrefix, Now: func() time.Time { return planNow }}

	refused := planJobFixture() // namespace shop, task queue inflate-prices
	obs, err := r.observe(ctx, refused)
	require.NoError(t, err)
	require.Error(t, obs.invalidSpec)
	const msg = `spec.taskQueue "inflate-prices" must start with "shop." under this cluster's task queue policy (NamespacePrefix): use "shop.inflate-prices"`
	require.Contains(t, obs.invalidSpec.Error(), msg)

	withQueue := func(q string) func(*batchv1alpha1.BatchJob) {
		return func(j *batchv1alpha1.BatchJob) { j.Spec.TaskQueue = q }
	}
	runPlanCases(t, []planCase{
		{
			name:  "task queue outside the namespace: Failed TaskQueueNotAllowed, nothing started",
			obs:   obs,
			start: false, phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed:      {metav1.ConditionTrue, batchv1alpha1.ReasonTaskQueueNotAllowed, msg},
				batchv1alpha1.ConditionReady:       {metav1.ConditionFalse, batchv1alpha1.ReasonTaskQueueNotAllowed, msg},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonTaskQueueNotAllowed, ""},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonTaskQueueNotAllowed, ""},
			},
			partialConditions: true,
			events:            []string{"Warning Failed: TaskQueueNotAllowed: " + msg},
		},
		{
			name:  "with workers: none scaled up",
			obs:   observation{job: planJobFixture(withWorkers(2)), invalidSpec: TaskQueuesNamespacePrefix.check(planJobFixture())},
			start: false, phase: batchv1alpha1.PhaseFailed, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonTaskQueueNotAllowed, msg},
			},
			partialConditions: true,
			events:            []string{"Warning Failed: TaskQueueNotAllowed"},
		},
	})

	allowed := planJobFixture(withQueue("shop.inflate-prices"))
	obs, err = r.observe(ctx, allowed)
	require.NoError(t, err)
	require.NoError(t, obs.invalidSpec)
	require.NotEmpty(t, obs.input.EnqueueToken, "a new start gets a token")
	again, err := r.observe(ctx, allowed)
	require.NoError(t, err)
	require.NotEqual(t, obs.input.EnqueueToken, again.input.EnqueueToken, "tokens are random: a repeated start adopts the running workflow and its token")
	p := planJob(obs, planIntervals)
	require.NotNil(t, p.start)
	require.Equal(t, "shop.inflate-prices", p.start.TaskQueue)
	require.Equal(t, obs.input.EnqueueToken, p.start.EnqueueToken)

	// Started under Any, before the policy: spec.taskQueue cannot change,
	// and the job runs on.
	r.Orchestrator = &fakeOrchestrator{progress: progressFixture()}
	obs, err = r.observe(ctx, reported(planJobFixture(), progressFixture()))
	require.NoError(t, err)
	require.NoError(t, obs.invalidSpec)
	require.Empty(t, obs.input.EnqueueToken, "no start, no token")
	require.Equal(t, batchv1alpha1.PhaseRunning, planJob(obs, planIntervals).status.Phase)
}

// The enqueue token goes into the start's input and nowhere the user reads:
// not status, conditions or Events, not when the workflow starts and not
// when its Result (whose Next input holds the token) is read.
func TestEnqueueTokenNeverInStatus(t *testing.T) {
	ctx := context.Background()
	r := &BatchJobReconciler{Now: func() time.Time { return planNow }}
	requireAbsent := func(t *testing.T, token string, st batchv1alpha1.BatchJobStatus, evs []event) {
		t.Helper()
		raw, err := json.Marshal(st)
		require.NoError(t, err)
		require.NotContains(t, string(raw), token, "status")
		for _, e := range evs {
			require.NotContains(t, e.message, token, "event %s", e.reason)
		}
	}

	job := planJobFixture(withWorkers(2))
	obs := observation{job: job, now: planNow}
	in, err := orchestratorInput(job)
	require.NoError(t, err)
	in.EnqueueToken = newEnqueueToken()
	obs.input = in
	p := planJob(obs, planIntervals)
	require.NotNil(t, p.start)
	require.Equal(t, in.EnqueueToken, p.start.EnqueueToken)
	requireAbsent(t, in.EnqueueToken, p.status, p.events)
	ref := &batchv1alpha1.WorkflowRef{Namespace: "default", ID: in.Job.WorkflowID, RunID: "run-1"}
	st, evs := p.statusAfter(job, outcome{started: ref}, "default")
	requireAbsent(t, in.EnqueueToken, st, evs)

	const token = "4MXJ7ZQHT2C5VN3K6PWD8RBYGA"
	final := progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "1 pages, 200 items processed", time.Minute))
	final.Counters.RejectedSignals = 2
	next := in
	next.EnqueueToken, next.State = token, &temporalbatch.State{}
	r.Orchestrator = &fakeOrchestrator{queryErr: temporalbatch.ErrClosed, closed: true, result: temporalbatch.Result{Progress: final, Next: next}}
	running := reported(planJobFixture(), progressFixture())
	obs, err = r.observe(ctx, running)
	require.NoError(t, err)
	p = planJob(obs, planIntervals)
	require.Equal(t, batchv1alpha1.PhaseSucceeded, p.status.Phase)
	requireAbsent(t, token, p.status, p.events)
	complete := meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionComplete)
	require.NotNil(t, complete)
	require.Contains(t, complete.Message, "2 EnqueuePage signals were rejected for lacking the job's enqueue token")
}
