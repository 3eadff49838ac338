package controller

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

var (
	planNow       = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	planIntervals = Intervals{Running: 5 * time.Second, Idle: 2 * time.Minute, Stall: 10 * time.Minute}
)

// planJobFixture is a BatchJob as the API server returns it after defaulting.
func planJobFixture(mods ...func(*batchv1alpha1.BatchJob)) *batchv1alpha1.BatchJob {
	job := &batchv1alpha1.BatchJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "inflate-prices", UID: "7d3c2a10-5b1f-4f0e-9a52-1c2d3e4f5a6b", Generation: 1},
		Spec: batchv1alpha1.BatchJobSpec{
			TaskQueue: "inflate-prices",
			Processor: batchv1alpha1.ProcessorSpec{
				Name: "InflateProductPrices", PageSize: 200,
				Timeout:          &metav1.Duration{Duration: 5 * time.Minute},
				HeartbeatTimeout: &metav1.Duration{Duration: 30 * time.Second},
				Delivery:         batchv1alpha1.DeliveryAtLeastOnce,
			},
			Parallelism: ptr[int32](10),
			Retry: batchv1alpha1.RetrySpec{
				InitialInterval: &metav1.Duration{Duration: time.Second}, BackoffCoefficient: "2",
				MaximumInterval: &metav1.Duration{Duration: time.Minute}, MaximumAttempts: 10,
				StuckPageRetryInterval: &metav1.Duration{Duration: 5 * time.Minute},
			},
			CancellationPolicy: batchv1alpha1.CancellationCancel,
		},
	}
	for _, m := range mods {
		m(job)
	}
	return job
}

// withDefaultPolicies is d with the retry and failure policies of a spec
// that leaves them to their defaults, as desiredState sends them.
func withDefaultPolicies(d temporalbatch.DesiredState) *temporalbatch.DesiredState {
	d.Retry = &temporalbatch.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
		StuckPageRetryInterval: 5 * time.Minute,
	}
	d.FailurePolicy = &temporalbatch.FailurePolicy{}
	d.Priority = &temporalbatch.Priority{FairnessKey: "shop"}
	return &d
}

func withWorkers(pagesPerPod int32) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) {
		j.Spec.Worker = &batchv1alpha1.WorkerSpec{PagesPerPod: pagesPerPod, Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "example/worker:1"}}},
		}}
	}
}

func withGeneration(g int64) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) { j.Generation = g }
}

func withRampUp(from int32) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) {
		j.Spec.RampUp = &batchv1alpha1.RampUpSpec{From: from, Step: 1, Every: metav1.Duration{Duration: 30 * time.Second}}
	}
}

func withRedrive(v string) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) {
		j.Annotations = map[string]string{batchv1alpha1.AnnotationRedrive: v}
	}
}

func withTTL(seconds int32) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) { j.Spec.TTLSecondsAfterFinished = &seconds }
}

// progressFixture is a healthy running job's progress report at planNow.
func progressFixture(mods ...func(*temporalbatch.Progress)) temporalbatch.Progress {
	pr := temporalbatch.Progress{
		State:            temporalbatch.StateRunning,
		Generation:       1,
		Parallelism:      temporalbatch.ParallelismStatus{Desired: 10, Effective: 10, MaxAchieved: 10},
		Pages:            temporalbatch.PageCounts{Completed: 120, InFlight: 10, Pending: 1},
		Items:            temporalbatch.ItemCounts{Processed: 24000, Failed: 3},
		ItemsPerSecond:   812.5,
		StartTime:        planNow.Add(-time.Hour),
		LastProgressTime: planNow.Add(-2 * time.Second),
	}
	for _, m := range mods {
		m(&pr)
	}
	return pr
}

func ended(state temporalbatch.JobState, reason, message string, ago time.Duration) func(*temporalbatch.Progress) {
	return func(pr *temporalbatch.Progress) {
		at := planNow.Add(-ago)
		pr.State, pr.Reason, pr.Message, pr.CompletionTime = state, reason, message, &at
		pr.Parallelism.Effective, pr.Pages.InFlight, pr.Pages.Pending = 0, 0, 0
	}
}

// started is the job after the pass that started its workflow.
func started(job *batchv1alpha1.BatchJob) *batchv1alpha1.BatchJob {
	j := job.DeepCopy()
	p := planJob(observation{job: j, now: planNow.Add(-time.Hour)}, planIntervals)
	j.Status = p.status
	j.Status.Workflow = &batchv1alpha1.WorkflowRef{Namespace: "default", ID: workflowID(j), RunID: "run-1"}
	return j
}

// reported is the job after a pass that read pr: its status is what the
// controller wrote then.
func reported(job *batchv1alpha1.BatchJob, pr temporalbatch.Progress) *batchv1alpha1.BatchJob {
	j := started(job)
	p := planJob(observation{job: j, now: planNow.Add(-time.Minute), progress: &pr}, planIntervals)
	j.Status = p.status
	return j
}

type wantCondition struct {
	status metav1.ConditionStatus
	reason string
	// message, when set, must appear in the condition's message.
	message string
}

// failedPage is a report with two pages failed for good, newest failure first.
func failedPage(pr *temporalbatch.Progress) {
	pr.Pages.Failed = 2
	pr.Recent = []temporalbatch.Failure{
		{Page: 40, Item: "sku-991", Type: "InvalidRecord", Message: "price is negative", Time: planNow},
		{Page: 17, Cursor: "c17", Type: "Timeout", Message: "page timed out", Time: planNow},
	}
	pr.ByType = map[string]int64{"Timeout": 2, "InvalidRecord": 1}
	pr.Counters.FailedAttempts = 7
}

// planCase is one pass of planJob and what it must decide.
type planCase struct {
	name string
	obs  observation

	start      bool
	phase      batchv1alpha1.BatchJobPhase
	conditions map[string]wantCondition
	// partialConditions: the pass rewrites only some conditions.
	partialConditions bool
	requeue           time.Duration
	replicas          *int32
	sendDesired       *temporalbatch.DesiredState
	redrive           string
	deleteJob         bool
	// events as "Normal Reason" or "Warning Reason: message fragment".
	events []string
	check  func(t *testing.T, p plan)
}

// A job without a workflow yet: the plan starts one.
func TestPlanNotStarted(t *testing.T) {
	runPlanCases(t, []planCase{
		{
			name:  "new job: start the workflow",
			obs:   observation{job: planJobFixture()},
			start: true, phase: batchv1alpha1.PhasePending, requeue: time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady:       {metav1.ConditionFalse, batchv1alpha1.ReasonStarting, ""},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonStarting, ""},
				batchv1alpha1.ConditionSuspended:   {metav1.ConditionFalse, batchv1alpha1.ReasonStarting, ""},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonStarting, ""},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonStarting, ""},
			},
		},
		{
			name: "new suspended job: started suspended, no workers",
			obs: observation{job: planJobFixture(withWorkers(2), func(j *batchv1alpha1.BatchJob) {
				j.Spec.Suspend = true
			})},
			start: true, phase: batchv1alpha1.PhasePending, requeue: time.Second, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionSuspended: {metav1.ConditionTrue, batchv1alpha1.ReasonStarting, ""},
			},
		},
	})
}

// A running workflow: progress into status, spec changes sent.
func TestPlanRunning(t *testing.T) {
	running := progressFixture()
	runPlanCases(t, []planCase{
		{
			name:  "running: progress copied into status",
			obs:   observation{job: started(planJobFixture()), progress: ptr(progressFixture(failedPage))},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, "120 pages completed"},
				batchv1alpha1.ConditionReady:       {metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, ""},
				batchv1alpha1.ConditionSuspended:   {metav1.ConditionFalse, batchv1alpha1.ReasonResumed, ""},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonRunning, ""},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonRunning, ""},
			},
			events: []string{"Warning PagesFailed: 2 pages failed for good (latest: page 17, Timeout: page timed out)"},
			check: func(t *testing.T, p plan) {
				st := p.status
				require.Equal(t, int64(1), st.ObservedGeneration)
				require.Equal(t, batchv1alpha1.ParallelismStatus{Desired: 10, Effective: 10, MaxAchieved: 10}, st.Parallelism)
				require.Equal(t, batchv1alpha1.PageStatus{Completed: 120, InFlight: 10, Pending: 1, Failed: 2}, st.Pages)
				require.Equal(t, batchv1alpha1.ItemStatus{Processed: 24000, Failed: 3}, st.Items)
				require.Equal(t, "812.5", st.ItemsPerSecond)
				require.NotNil(t, st.StartTime)
				require.True(t, st.StartTime.Time.Equal(planNow.Add(-time.Hour)))
				require.Nil(t, st.CompletionTime)
				require.NotNil(t, st.Failures)
				require.Equal(t, map[string]int64{"Timeout": 2, "InvalidRecord": 1}, st.Failures.ByType)
				require.EqualValues(t, 7, st.Failures.FailedAttempts, "every failed page attempt, beside the pages by type")
				require.Len(t, st.Failures.Recent, 2)
				require.Equal(t, "sku-991", st.Failures.Recent[0].Item, "newest first, as reported")
				require.Equal(t, "c17", st.Failures.Recent[1].Cursor)
				require.NotNil(t, st.Workflow, "the workflow reference is kept")
			},
		},
		{
			name: "running: itemsPerSecond is one decimal",
			obs: observation{job: started(planJobFixture()), progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
				pr.ItemsPerSecond = 1234.5678
			}))},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			check: func(t *testing.T, p plan) { require.Equal(t, "1234.6", p.status.ItemsPerSecond) },
		},
		{
			name: "spec changed, not yet applied: send the desired state",
			obs: observation{
				job: started(planJobFixture(withGeneration(3), func(j *batchv1alpha1.BatchJob) {
					j.Status.ObservedGeneration = 2
					j.Spec.Parallelism = ptr[int32](20)
					j.Spec.RampUp = &batchv1alpha1.RampUpSpec{From: 2, Step: 3, Every: metav1.Duration{Duration: time.Minute}}
					j.Spec.RateLimit = &batchv1alpha1.RateLimitSpec{PagesPerSecond: "2.5"}
				})),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) { pr.Generation = 2 })),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second,
			sendDesired: withDefaultPolicies(temporalbatch.DesiredState{
				Generation: 3, Parallelism: 20,
				RampUp:    &temporalbatch.RampUp{From: 2, Step: 3, Every: time.Minute},
				RateLimit: &temporalbatch.RateLimit{PagesPerSecond: 2.5},
			}),
			check: func(t *testing.T, p plan) {
				require.Equal(t, int64(2), p.status.ObservedGeneration, "generation 3 is not applied yet")
			},
		},
		{
			name: "retry and failure policies edited, not yet applied: the desired state carries them",
			obs: observation{
				job: started(planJobFixture(withGeneration(3), func(j *batchv1alpha1.BatchJob) {
					j.Status.ObservedGeneration = 2
					j.Spec.Retry.MaximumAttempts = 50
					j.Spec.Retry.StuckPageRetryInterval = &metav1.Duration{Duration: 10 * time.Second}
					j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromInt32(3)), Handler: "RecordFailures"}
				})),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) { pr.Generation = 2 })),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second,
			sendDesired: &temporalbatch.DesiredState{
				Generation: 3, Parallelism: 10,
				Retry: &temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 50,
					StuckPageRetryInterval: 10 * time.Second,
				},
				FailurePolicy: &temporalbatch.FailurePolicy{MaxFailedPages: ptr[int64](3), Handler: "RecordFailures", HandlerTimeout: temporalbatch.DefaultHandlerTimeout},
				Priority:      &temporalbatch.Priority{FairnessKey: "shop"},
			},
			check: func(t *testing.T, p plan) {
				require.Equal(t, int64(2), p.status.ObservedGeneration, "generation 3 is not applied yet")
			},
		},
		{
			name: "suspend asked, not yet applied: send the desired state",
			obs: observation{
				job: started(planJobFixture(withGeneration(2), func(j *batchv1alpha1.BatchJob) {
					j.Spec.Suspend = true
				})),
				progress: ptr(progressFixture()),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second,
			sendDesired: withDefaultPolicies(temporalbatch.DesiredState{Generation: 2, Parallelism: 10, Suspend: true}),
		},
		{
			name: "spec changed and applied: observedGeneration catches up, nothing sent",
			obs: observation{
				job: started(planJobFixture(withGeneration(3), func(j *batchv1alpha1.BatchJob) {
					j.Status.ObservedGeneration = 2
					j.Spec.Parallelism = ptr[int32](20)
				})),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
					pr.Generation = 3
					pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 20, Effective: 20, MaxAchieved: 20}
				})),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			check: func(t *testing.T, p plan) { require.Equal(t, int64(3), p.status.ObservedGeneration) },
		},
		{
			name: "resumed",
			obs: observation{
				job: reported(planJobFixture(withGeneration(3)), progressFixture(func(pr *temporalbatch.Progress) {
					pr.State, pr.Generation = temporalbatch.StateSuspended, 2
					pr.Parallelism.Effective, pr.Pages.InFlight = 0, 0
				})),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) { pr.Generation = 3 })),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionSuspended:   {metav1.ConditionFalse, batchv1alpha1.ReasonResumed, ""},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			},
			events: []string{"Normal Resumed"},
		},
		{
			name: "parallelism changed",
			obs: observation{
				job: reported(planJobFixture(withGeneration(2), func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr[int32](20) }), progressFixture()),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
					pr.Generation = 2
					pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 20, Effective: 20, MaxAchieved: 20}
				})),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			events: []string{"Normal ParallelismChanged: parallelism 10 -> 20"},
		},
		{
			name: "pages failed: one warning per increase",
			obs: observation{
				job:      reported(planJobFixture(), progressFixture(failedPage)),
				progress: ptr(progressFixture(failedPage)),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			events: nil,
		},
		{
			name: "stalled: no page completed for longer than the stall period",
			obs: observation{job: reported(planJobFixture(), running), progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
				pr.LastProgressTime = planNow.Add(-11 * time.Minute)
				pr.Pages.Pending = 3
			}))},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonStalled, "no page completed for 10m0s"},
			},
		},
		{
			name: "stalled: no page completed since the start",
			obs: observation{job: reported(planJobFixture(), running), progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
				pr.LastProgressTime = time.Time{}
				pr.StartTime = planNow.Add(-11 * time.Minute)
			}))},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonStalled, ""},
			},
		},
		{
			name: "slow but not stalled",
			obs: observation{job: reported(planJobFixture(), running), progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
				pr.LastProgressTime = planNow.Add(-9 * time.Minute)
			}))},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			},
		},
	})
}

// A suspended job polls slowly once its pages drained.
func TestPlanSuspended(t *testing.T) {
	runPlanCases(t, []planCase{
		{
			name: "suspended and drained: idle polling, no workers",
			obs: observation{
				job: reported(planJobFixture(withWorkers(2), withGeneration(2), func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = true }),
					progressFixture()),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
					pr.State, pr.Generation = temporalbatch.StateSuspended, 2
					pr.Parallelism.Effective, pr.Pages.InFlight = 0, 0
				})),
			},
			phase: batchv1alpha1.PhaseSuspended, requeue: 2 * time.Minute, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionSuspended:   {metav1.ConditionTrue, batchv1alpha1.ReasonSuspended, "no new pages start"},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, ""},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, ""},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, ""},
			},
			events: []string{"Normal Suspended"},
		},
		{
			name: "suspended with pages in flight: workers stay for them",
			obs: observation{
				job: reported(planJobFixture(withWorkers(2), withGeneration(2), func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = true }),
					progressFixture()),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
					pr.State, pr.Generation = temporalbatch.StateSuspended, 2
					pr.Parallelism.Effective, pr.Pages.InFlight = 0, 5
				})),
			},
			phase: batchv1alpha1.PhaseSuspended, requeue: 5 * time.Second, replicas: ptr[int32](3),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionSuspended: {metav1.ConditionTrue, batchv1alpha1.ReasonSuspended, "5 pages in flight finish"},
			},
			events: []string{"Normal Suspended"},
		},
	})
}

// A finished workflow: the end state, no workers, no more polling.
func TestPlanFinished(t *testing.T) {
	running := progressFixture()
	runPlanCases(t, []planCase{
		{
			name: "succeeded: Complete, no workers, no more polling",
			obs: observation{
				job:      reported(planJobFixture(withWorkers(2)), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "all pages completed", 0))),
			},
			phase: batchv1alpha1.PhaseSucceeded, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionComplete:    {metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, "all pages completed"},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonCompleted, ""},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonFinished, ""},
				batchv1alpha1.ConditionSuspended:   {metav1.ConditionFalse, batchv1alpha1.ReasonFinished, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, ""},
				// Kept beside Complete, as batch/v1 Job keeps it.
				batchv1alpha1.ConditionSuccessCriteriaMet: {metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, "all pages completed"},
			},
			events: []string{"Normal Completed: 120 pages, 24000 items processed, 3 items failed"},
			check: func(t *testing.T, p plan) {
				require.NotNil(t, p.status.CompletionTime)
				require.True(t, p.status.CompletionTime.Time.Equal(planNow))
				require.Equal(t, int64(1), p.status.ObservedGeneration)
			},
		},
		{
			name: "failed: chain broken",
			obs: observation{
				job:      reported(planJobFixture(withWorkers(2)), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonChainBroken, "page 17 failed before enqueuing page 18", 0))),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed:      {metav1.ConditionTrue, batchv1alpha1.ReasonChainBroken, "page 17 failed before enqueuing page 18"},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonChainBroken, ""},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonFinished, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionFalse, batchv1alpha1.ReasonChainBroken, ""},
				// Kept beside Failed, as batch/v1 Job keeps it.
				batchv1alpha1.ConditionFailureTarget: {metav1.ConditionTrue, batchv1alpha1.ReasonChainBroken, "page 17 failed before enqueuing page 18"},
			},
			events: []string{"Warning Failed: ChainBroken: page 17 failed before enqueuing page 18"},
		},
		{
			name: "failed: too many pages failed",
			obs: observation{
				job: reported(planJobFixture(), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "3 pages failed, more than failurePolicy.maxFailedPages (2)", 0),
					func(pr *temporalbatch.Progress) { pr.Pages.Failed = 3 })),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonPagesFailed, "maxFailedPages (2)"},
				batchv1alpha1.ConditionReady:  {metav1.ConditionFalse, batchv1alpha1.ReasonPagesFailed, ""},
			},
			events: []string{"Warning Failed: PagesFailed: 3 pages failed", "Warning PagesFailed: 3 pages failed for good"},
		},
		{
			name: "failed: more pages in trouble than tracked",
			obs: observation{
				job:      reported(planJobFixture(), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonTooManyFailedPages, "more than 500 pages failed or are stuck", 0))),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonTooManyFailedPages, "500 pages"},
			},
			events: []string{"Warning Failed: TooManyFailedPages"},
		},
		{
			name: "failed: workflow cancelled outside the operator",
			obs: observation{
				job:      reported(planJobFixture(), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateCancelled, temporalbatch.ReasonCancelled, "the workflow was cancelled", 0))),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowCancelled, "the workflow was cancelled"},
				batchv1alpha1.ConditionReady:  {metav1.ConditionFalse, batchv1alpha1.ReasonWorkflowCancelled, ""},
			},
			events: []string{"Warning Failed: WorkflowCancelled: the workflow was cancelled"},
		},
		{
			name: "failed without a known reason",
			obs: observation{
				job:      reported(planJobFixture(), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, "", "boom", 0))),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowFailed, "boom"},
			},
			events: []string{"Warning Failed: WorkflowFailed: boom"},
		},
		{
			name: "workflow closed without a result (terminated)",
			obs: observation{
				job:                 reported(planJobFixture(withWorkers(2)), running),
				closedWithoutResult: true,
				endErr:              errors.New("workflow execution already completed: terminated by admin"),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed:      {metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowFailed, "terminated by admin"},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonWorkflowFailed, ""},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonFinished, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionFalse, batchv1alpha1.ReasonWorkflowFailed, ""},
				batchv1alpha1.ConditionSuspended:   {metav1.ConditionFalse, batchv1alpha1.ReasonFinished, ""},
			},
			events: []string{"Warning Failed: WorkflowFailed: the orchestrator workflow ended without a result"},
			check: func(t *testing.T, p plan) {
				require.NotNil(t, p.status.CompletionTime)
				require.True(t, p.status.CompletionTime.Time.Equal(planNow))
			},
		},
		{
			name: "finished without TTL, nothing more to read: no polling",
			obs: observation{job: reported(planJobFixture(withWorkers(2)),
				progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "", time.Hour)))},
			phase: batchv1alpha1.PhaseSucceeded, requeue: 0, replicas: ptr[int32](0),
		},
	})
}

// A new re-drive annotation is asked of a started workflow once.
func TestPlanRedrive(t *testing.T) {
	running := progressFixture()
	runPlanCases(t, []planCase{
		{
			name: "re-drive asked with a new value",
			obs: observation{
				job:      reported(planJobFixture(withRedrive("2026-11-28T10:00:00Z"), func(j *batchv1alpha1.BatchJob) { j.Status.LastRedrive = "2026-11-27" }), running),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) { pr.LastRedrive = "2026-11-27" })),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second, redrive: "2026-11-28T10:00:00Z",
		},
		{
			name: "re-drive value already acted on",
			obs: observation{
				job:      reported(planJobFixture(withRedrive("2026-11-28T10:00:00Z"), func(j *batchv1alpha1.BatchJob) { j.Status.LastRedrive = "2026-11-28T10:00:00Z" }), running),
				progress: ptr(progressFixture(func(pr *temporalbatch.Progress) { pr.LastRedrive = "2026-11-28T10:00:00Z" })),
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, redrive: "",
			check: func(t *testing.T, p plan) { require.Equal(t, "2026-11-28T10:00:00Z", p.status.LastRedrive) },
		},
		{
			name: "re-drive of a failed job whose TTL passed: re-drive wins over deletion",
			obs: observation{
				job: reported(planJobFixture(withRedrive("r1"), withTTL(60)),
					progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed", time.Hour))),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed", time.Hour))),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: time.Second, redrive: "r1", deleteJob: false,
		},
		{
			// The status write that records the re-drive triggers no pass
			// (status-only updates are filtered), so the plan asks for one.
			name: "re-drive of a workflow that closed without a result: look again soon",
			obs: observation{
				job:                 reported(planJobFixture(withRedrive("r2")), running),
				closedWithoutResult: true, endErr: errors.New("terminated by admin"),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: time.Second, redrive: "r2",
			events: []string{"Warning Failed: WorkflowFailed"},
		},
		{
			name:  "re-drive is not asked before the workflow exists",
			obs:   observation{job: planJobFixture(withRedrive("r1"))},
			start: true, phase: batchv1alpha1.PhasePending, requeue: time.Second, redrive: "",
		},
		{
			name: "re-drive waits while Temporal is unreachable",
			obs: observation{job: reported(planJobFixture(withRedrive("r1")), running),
				temporalReason: batchv1alpha1.ReasonTemporalUnavailable, temporalMessage: "Temporal does not answer"},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, redrive: "", partialConditions: true,
		},
	})
}

// A spec that cannot become a workflow input fails the job.
func TestPlanInvalidSpec(t *testing.T) {
	running := progressFixture()
	runPlanCases(t, []planCase{
		{
			name: "invalid spec: Failed InvalidSpec, nothing started",
			obs: observation{job: planJobFixture(withWorkers(2)),
				invalidSpec: errors.New(`spec.rateLimit.pagesPerSecond is "fast": use a decimal such as "2" or "0.5"`)},
			start: false, phase: batchv1alpha1.PhaseFailed, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed:      {metav1.ConditionTrue, batchv1alpha1.ReasonInvalidSpec, "spec.rateLimit.pagesPerSecond"},
				batchv1alpha1.ConditionReady:       {metav1.ConditionFalse, batchv1alpha1.ReasonInvalidSpec, "spec.rateLimit.pagesPerSecond"},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionFalse, batchv1alpha1.ReasonInvalidSpec, ""},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonInvalidSpec, ""},
			},
			partialConditions: true,
			events:            []string{"Warning Failed: InvalidSpec: spec.rateLimit.pagesPerSecond"},
		},
		{
			name: "invalid spec on a running job: no desired state sent, no re-drive",
			obs: observation{
				job:         reported(planJobFixture(withRedrive("r1"), withGeneration(2)), running),
				invalidSpec: errors.New("rampUp.from is 20: use 1..parallelism (10)"),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0, redrive: "",
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonInvalidSpec, "rampUp.from"},
			},
			events: []string{"Warning Failed: InvalidSpec: rampUp.from"},
			check:  func(t *testing.T, p plan) { require.Equal(t, int64(2), p.status.ObservedGeneration) },
		},
	})
}

// Temporal out of reach: no calls, status kept, Ready says why.
func TestPlanTemporalUnavailable(t *testing.T) {
	runPlanCases(t, []planCase{
		{
			name: "Temporal unreachable at start: no start, Ready says why",
			obs: observation{job: planJobFixture(), temporalReason: batchv1alpha1.ReasonTemporalUnavailable,
				temporalMessage: "Temporal does not answer: connection refused; retrying with backoff"},
			start: false, phase: batchv1alpha1.PhasePending, requeue: time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, "connection refused"},
			},
		},
		{
			name: "Temporal namespace missing at start: no start, Ready says which",
			obs: observation{job: planJobFixture(), temporalReason: batchv1alpha1.ReasonNamespaceNotFound,
				temporalMessage: `Temporal namespace "default" does not exist`},
			start: false, phase: batchv1alpha1.PhasePending, requeue: time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonNamespaceNotFound, `"default"`},
			},
		},
		{
			name: "Temporal unreachable while running: status kept, workers kept",
			obs: observation{
				job: reported(planJobFixture(withWorkers(4), withRampUp(1), withGeneration(2)), progressFixture(func(pr *temporalbatch.Progress) {
					pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 10, Effective: 8, MaxAchieved: 8}
					pr.Pages.InFlight = 8
				})),
				temporalReason: batchv1alpha1.ReasonTemporalUnavailable, temporalMessage: "Temporal does not answer: unavailable",
			},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](2), partialConditions: true,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady:       {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, "unavailable"},
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRampingUp, ""},
			},
			check: func(t *testing.T, p plan) {
				require.Equal(t, int64(120), p.status.Pages.Completed, "last known progress stays")
			},
		},
		{
			name: "Temporal unreachable right after the start: workers sized from the spec",
			obs: observation{job: started(planJobFixture(withWorkers(2), withRampUp(3))),
				temporalReason: batchv1alpha1.ReasonTemporalUnavailable, temporalMessage: "Temporal does not answer"},
			phase: batchv1alpha1.PhasePending, requeue: 5 * time.Second, replicas: ptr[int32](2),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, ""},
			},
		},
	})
}

// ttlSecondsAfterFinished deletes a finished job, or looks again then.
func TestPlanTTL(t *testing.T) {
	running := progressFixture()
	runPlanCases(t, []planCase{
		{
			name: "TTL: finished long ago, progress read this pass: delete",
			obs: observation{
				job:      reported(planJobFixture(withTTL(3600)), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "", 2*time.Hour))),
			},
			phase: batchv1alpha1.PhaseSucceeded, requeue: 0, deleteJob: true,
			events: []string{"Normal Completed"},
		},
		{
			name: "TTL: finished recently, progress read this pass: look again when it passes",
			obs: observation{
				job:      reported(planJobFixture(withTTL(3600)), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "", 10*time.Minute))),
			},
			phase: batchv1alpha1.PhaseSucceeded, requeue: 50 * time.Minute,
			events: []string{"Normal Completed"},
		},
		{
			name: "TTL: finished long ago, nothing more to read: delete",
			obs: observation{job: reported(planJobFixture(withTTL(3600)),
				progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "", 2*time.Hour)))},
			phase: batchv1alpha1.PhaseSucceeded, requeue: 0, deleteJob: true,
		},
		{
			name: "TTL: finished recently, nothing more to read: look again when it passes",
			obs: observation{job: reported(planJobFixture(withTTL(3600)),
				progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonChainBroken, "", 10*time.Minute)))},
			phase: batchv1alpha1.PhaseFailed, requeue: 50 * time.Minute,
		},
		{
			name:  "TTL: closed without a result just now: look again after the TTL",
			obs:   observation{job: reported(planJobFixture(withTTL(600)), running), closedWithoutResult: true, endErr: errors.New("timed out")},
			phase: batchv1alpha1.PhaseFailed, requeue: 10 * time.Minute,
			events: []string{"Warning Failed: WorkflowFailed"},
		},
	})
}

// The worker Deployment follows the pages allowed to run.
func TestPlanWorkers(t *testing.T) {
	runPlanCases(t, []planCase{
		{
			name:  "new job with workers: replicas cover rampUp.from before the first progress",
			obs:   observation{job: planJobFixture(withWorkers(2), withRampUp(3))},
			start: true, phase: batchv1alpha1.PhasePending, requeue: time.Second, replicas: ptr[int32](2),
		},
		{
			name:  "new job with workers and no ramp-up: replicas cover parallelism",
			obs:   observation{job: planJobFixture(withWorkers(4))},
			start: true, phase: batchv1alpha1.PhasePending, requeue: time.Second, replicas: ptr[int32](3),
		},
		{
			name: "ramping up: Progressing says so, replicas follow effective parallelism",
			obs: observation{job: started(planJobFixture(withWorkers(4), withRampUp(2))), progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
				pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 10, Effective: 5, MaxAchieved: 5}
				pr.Pages.InFlight = 5
			}))},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](2),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRampingUp, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, ""},
			},
		},
		{
			name: "replicas are ceil(effective / pagesPerPod)",
			obs: observation{job: started(planJobFixture(withWorkers(4))), progress: ptr(progressFixture(func(pr *temporalbatch.Progress) {
				pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 9, Effective: 9, MaxAchieved: 9}
				pr.Pages.InFlight = 9
			})), workers: &workerObservation{replicas: 3, ready: 2, updated: 3, currentTemplate: true}},
			phase: batchv1alpha1.PhaseRunning, requeue: 5 * time.Second, replicas: ptr[int32](3),
			check: func(t *testing.T, p plan) {
				require.Equal(t, &batchv1alpha1.WorkerStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3}, p.status.Workers)
			},
		},
	})
}

// runPlanCases runs planJob on each case's observation at planNow.
func runPlanCases(t *testing.T, tests []planCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.now = planNow
			before := tc.obs.job.DeepCopy()
			p := planJob(tc.obs, planIntervals)
			require.Equal(t, before, tc.obs.job, "planJob must not change the job it observed")

			require.Equal(t, tc.start, p.start != nil, "start")
			if p.start != nil {
				require.Equal(t, tc.obs.input, *p.start, "the start takes the input built in observe")
			}
			require.Equal(t, tc.redrive != "", p.statusAfterRedrive != nil, "statusAfterRedrive goes with a re-drive")
			require.Equal(t, tc.phase, p.status.Phase, "phase")
			require.Equal(t, tc.requeue, p.requeueAfter, "requeueAfter")
			require.Equal(t, tc.sendDesired, p.sendDesired, "sendDesired")
			require.Equal(t, tc.redrive, p.redrive, "redrive")
			require.Equal(t, tc.deleteJob, p.deleteJob, "deleteJob")
			if tc.obs.job.Spec.Worker == nil {
				require.Nil(t, p.replicas, "a job without spec.worker has no worker Deployment")
				require.Nil(t, p.status.Workers)
			} else {
				require.NotNil(t, p.replicas, "replicas")
				require.NotNil(t, tc.replicas, "the case must say how many replicas it expects")
				require.Equal(t, *tc.replicas, *p.replicas, "replicas")
				require.NotNil(t, p.status.Workers)
			}

			requireConditions(t, p.status, tc.obs.job.Generation, !tc.partialConditions)
			for typ, want := range tc.conditions {
				c := meta.FindStatusCondition(p.status.Conditions, typ)
				require.NotNil(t, c, "condition %s", typ)
				require.Equal(t, want.status, c.Status, "condition %s status", typ)
				require.Equal(t, want.reason, c.Reason, "condition %s reason", typ)
				require.Contains(t, c.Message, want.message, "condition %s message", typ)
			}

			require.Len(t, p.events, len(tc.events), "events: %v", p.events)
			for i, want := range tc.events {
				e := p.events[i]
				typ := "Normal"
				if e.warning {
					typ = "Warning"
				}
				require.Contains(t, fmt.Sprintf("%s %s: %s", typ, e.reason, e.message), want, "event %d", i)
			}

			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// statusAfter picks the status to write by what the Temporal calls did; the
// plan's own status stays as planned.
func TestPlanStatusAfter(t *testing.T) {
	failed := progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed", time.Minute))
	changed := started(planJobFixture(withGeneration(2), func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr[int32](20) }))
	ref := &batchv1alpha1.WorkflowRef{Namespace: "batch", ID: "batchjob/shop/inflate-prices/7d3c2a10-5b1f-4f0e-9a52-1c2d3e4f5a6b", RunID: "run-2"}
	tests := []struct {
		name  string
		obs   observation
		calls outcome

		phase batchv1alpha1.BatchJobPhase
		// workflow is the reference written; the job's own when nil.
		workflow    *batchv1alpha1.WorkflowRef
		lastRedrive string
		conditions  map[string]wantCondition
		// events as in planCase.
		events []string
		check  func(t *testing.T, st batchv1alpha1.BatchJobStatus)
	}{
		{
			name:  "started: the run is recorded, Started",
			obs:   observation{job: planJobFixture()},
			calls: outcome{started: ref},
			phase: batchv1alpha1.PhasePending, workflow: ref,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonStarting, ""},
			},
			events: []string{"Normal Started: started orchestrator workflow " + ref.ID},
		},
		{
			name:  "worker Deployment not written: Ready says which and why",
			obs:   observation{job: reported(planJobFixture(withWorkers(2)), progressFixture()), progress: ptr(progressFixture())},
			calls: outcome{workers: errors.New("exceeded quota")},
			phase: batchv1alpha1.PhaseRunning,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonWorkersUnavailable, "shop/inflate-prices-workers"},
			},
		},
		{
			name:  "worker Deployment not written while Temporal is down: Ready keeps Temporal's reason",
			obs:   observation{job: reported(planJobFixture(withWorkers(2)), progressFixture()), temporalReason: batchv1alpha1.ReasonTemporalUnavailable, temporalMessage: "connection refused"},
			calls: outcome{workers: errors.New("exceeded quota")},
			phase: batchv1alpha1.PhaseRunning,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, "connection refused"},
			},
		},
		{
			name:  "start failed, Temporal unavailable: Ready says so, nothing started",
			obs:   observation{job: planJobFixture()},
			calls: outcome{err: serviceerror.NewUnavailable("connection refused")},
			phase: batchv1alpha1.PhasePending,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, "connection refused"},
			},
		},
		{
			name:  "desired state not sent, namespace missing: Ready names it",
			obs:   observation{job: changed, progress: ptr(progressFixture())},
			calls: outcome{err: serviceerror.NewNamespaceNotFound("batch")},
			phase: batchv1alpha1.PhaseRunning,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonNamespaceNotFound, `"batch"`},
			},
		},
		{
			name:  "a call failed for another reason: Ready carries the error as unavailable",
			obs:   observation{job: changed, progress: ptr(progressFixture())},
			calls: outcome{err: errors.New("workflow not found")},
			phase: batchv1alpha1.PhaseRunning,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady: {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, "workflow not found"},
			},
		},
		{
			name:  "re-drive of a failed job taken: Running again, Redriven",
			obs:   observation{job: reported(planJobFixture(withRedrive("r1")), failed), progress: &failed},
			calls: outcome{redriven: true},
			phase: batchv1alpha1.PhaseRunning, lastRedrive: "r1",
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, "re-driven: failed pages run again"},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonRunning, ""},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonRunning, ""},
				batchv1alpha1.ConditionStalled:     {metav1.ConditionFalse, batchv1alpha1.ReasonRunning, ""},
				batchv1alpha1.ConditionReconciling: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			},
			events: []string{`Normal Redriven: re-drive "r1": failed pages run again`},
			check: func(t *testing.T, st batchv1alpha1.BatchJobStatus) {
				require.Nil(t, st.CompletionTime, "a running job has no completion time")
			},
		},
		{
			name:  "re-drive of a running job taken: only lastRedrive changes",
			obs:   observation{job: reported(planJobFixture(withRedrive("r1")), progressFixture()), progress: ptr(progressFixture())},
			calls: outcome{redriven: true},
			phase: batchv1alpha1.PhaseRunning, lastRedrive: "r1",
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonRunning, "120 pages completed"},
			},
		},
		{
			name:  "re-drive call failed: still failed, Ready says why",
			obs:   observation{job: reported(planJobFixture(withRedrive("r1")), failed), progress: &failed},
			calls: outcome{err: serviceerror.NewUnavailable("connection refused")},
			phase: batchv1alpha1.PhaseFailed,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionReady:  {metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable, "connection refused"},
				batchv1alpha1.ConditionFailed: {metav1.ConditionTrue, batchv1alpha1.ReasonPagesFailed, ""},
			},
			check: func(t *testing.T, st batchv1alpha1.BatchJobStatus) {
				require.NotNil(t, st.CompletionTime)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.now = planNow
			p := planJob(tc.obs, planIntervals)
			planned := p.status.DeepCopy()
			st, evs := p.statusAfter(tc.obs.job, tc.calls, "batch")
			require.Equal(t, planned, &p.status, "statusAfter must not change the planned status")

			require.Equal(t, tc.phase, st.Phase, "phase")
			wantWorkflow := tc.workflow
			if wantWorkflow == nil {
				wantWorkflow = tc.obs.job.Status.Workflow
			}
			require.Equal(t, wantWorkflow, st.Workflow, "workflow")
			require.Equal(t, tc.lastRedrive, st.LastRedrive, "lastRedrive")
			requireConditions(t, st, tc.obs.job.Generation, true)
			for typ, want := range tc.conditions {
				c := meta.FindStatusCondition(st.Conditions, typ)
				require.NotNil(t, c, "condition %s", typ)
				require.Equal(t, want.status, c.Status, "condition %s status", typ)
				require.Equal(t, want.reason, c.Reason, "condition %s reason", typ)
				require.Contains(t, c.Message, want.message, "condition %s message", typ)
			}
			require.Len(t, evs, len(tc.events), "events: %v", evs)
			for i, want := range tc.events {
				typ := "Normal"
				if evs[i].warning {
					typ = "Warning"
				}
				require.Contains(t, fmt.Sprintf("%s %s: %s", typ, evs[i].reason, evs[i].message), want, "event %d", i)
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}

	// Without calls the plan's status and events go out as planned.
	pr := progressFixture(failedPage)
	p := planJob(observation{job: started(planJobFixture()), now: planNow, progress: &pr}, planIntervals)
	st, evs := p.statusAfter(started(planJobFixture()), outcome{}, "batch")
	require.Equal(t, p.status, st)
	require.Equal(t, p.events, evs)
}

// requireConditions checks that every condition carries the generation and,
// when all is set, that the five condition types are all there.
func requireConditions(t *testing.T, st batchv1alpha1.BatchJobStatus, gen int64, all bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range st.Conditions {
		require.Equal(t, gen, c.ObservedGeneration, "condition %s observedGeneration", c.Type)
		require.NotEmpty(t, c.Reason, "condition %s reason", c.Type)
		require.False(t, seen[c.Type], "condition %s twice", c.Type)
		seen[c.Type] = true
	}
	if all {
		for _, typ := range []string{
			batchv1alpha1.ConditionComplete, batchv1alpha1.ConditionFailed, batchv1alpha1.ConditionSuspended,
			batchv1alpha1.ConditionProgressing, batchv1alpha1.ConditionReady,
		} {
			require.True(t, seen[typ], "condition %s missing", typ)
		}
	}
}

// chainBound is a report whose last window the chains set the pace of:
// 0.6 pages in flight on average of 8 slots, no page waiting.
func chainBound(pr *temporalbatch.Progress) {
	pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 8, Effective: 8, MaxAchieved: 2}
	pr.Pages.InFlight, pr.Pages.Pending = 1, 0
	pr.Chains = temporalbatch.ChainCounts{Total: 1}
	pr.Lookahead = 1
	pr.Occupancy = temporalbatch.OccupancyWindow{Seconds: 60, MeanInFlight: 0.62, MeanEffective: 8, BoundFraction: 0.9}
	pr.ChainBound = true
}

func TestPlanJobChains(t *testing.T) {
	tests := []struct {
		name        string
		progress    temporalbatch.Progress
		job         *batchv1alpha1.BatchJob
		progressing wantCondition
		chains      *batchv1alpha1.ChainStatus
		// meanInFlight is status.pages.meanInFlight.
		meanInFlight string
	}{
		{
			name: "one chain, slots full: Running, chain counts and occupancy in status",
			progress: progressFixture(func(pr *temporalbatch.Progress) {
				pr.Chains = temporalbatch.ChainCounts{Total: 1}
				pr.Lookahead = 20
				pr.Occupancy = temporalbatch.OccupancyWindow{Seconds: 60, MeanInFlight: 9.96, MeanEffective: 10}
			}),
			progressing:  wantCondition{metav1.ConditionTrue, batchv1alpha1.ReasonRunning, "120 pages completed"},
			chains:       &batchv1alpha1.ChainStatus{Total: 1, Lookahead: 20},
			meanInFlight: "10.0",
		},
		{
			name: "several chains, some done or broken",
			progress: progressFixture(func(pr *temporalbatch.Progress) {
				pr.Chains = temporalbatch.ChainCounts{Total: 4, Done: 2, Broken: 1}
				pr.Lookahead = 3
				pr.Occupancy = temporalbatch.OccupancyWindow{Seconds: 30, MeanInFlight: 7.25, MeanEffective: 10}
			}),
			progressing:  wantCondition{metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
			chains:       &batchv1alpha1.ChainStatus{Total: 4, Done: 2, Broken: 1, Lookahead: 3},
			meanInFlight: "7.2",
		},
		{
			name:        "an orchestrator that reports no chains and no window yet: neither in status",
			progress:    progressFixture(),
			progressing: wantCondition{metav1.ConditionTrue, batchv1alpha1.ReasonRunning, ""},
		},
		{
			name:     "chain-bound: Progressing stays True, says by how much and names the fix",
			progress: progressFixture(chainBound),
			progressing: wantCondition{metav1.ConditionTrue, batchv1alpha1.ReasonChainBound,
				"pages in flight averaged 0.6 of 8 slots while no page was waiting: the chain sets the pace; " +
					"raise spec.processor.lookahead (now 1) or split the data with spec.processor.cursors"},
			chains:       &batchv1alpha1.ChainStatus{Total: 1, Lookahead: 1},
			meanInFlight: "0.6",
		},
		{
			name: "chain-bound with several chains: more cursors",
			progress: progressFixture(chainBound, func(pr *temporalbatch.Progress) {
				pr.Chains = temporalbatch.ChainCounts{Total: 2, Done: 1}
				pr.Lookahead = 8
				pr.Occupancy.MeanInFlight, pr.Occupancy.MeanEffective = 1.96, 7.5
			}),
			progressing: wantCondition{metav1.ConditionTrue, batchv1alpha1.ReasonChainBound,
				"pages in flight averaged 2 of 7.5 slots while no page was waiting: the 2 chains set the pace; " +
					"raise spec.processor.lookahead (now 8) or split the data into more spec.processor.cursors"},
			chains:       &batchv1alpha1.ChainStatus{Total: 2, Done: 1, Lookahead: 8},
			meanInFlight: "2.0",
		},
		{
			name: "chain-bound while ramping up: ChainBound, more parallelism would not help",
			job:  planJobFixture(withRampUp(2)),
			progress: progressFixture(chainBound, func(pr *temporalbatch.Progress) {
				pr.Parallelism = temporalbatch.ParallelismStatus{Desired: 10, Effective: 8, MaxAchieved: 2}
			}),
			progressing:  wantCondition{metav1.ConditionTrue, batchv1alpha1.ReasonChainBound, "raise spec.processor.lookahead"},
			chains:       &batchv1alpha1.ChainStatus{Total: 1, Lookahead: 1},
			meanInFlight: "0.6",
		},
		{
			name: "chain-bound and stalled: Stalled",
			progress: progressFixture(chainBound, func(pr *temporalbatch.Progress) {
				pr.LastProgressTime = planNow.Add(-11 * time.Minute)
			}),
			progressing:  wantCondition{metav1.ConditionFalse, batchv1alpha1.ReasonStalled, "no page completed for 10m0s"},
			chains:       &batchv1alpha1.ChainStatus{Total: 1, Lookahead: 1},
			meanInFlight: "0.6",
		},
		{
			name: "chain-bound in the last window of a suspended job: Suspended",
			job:  planJobFixture(func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = true }),
			progress: progressFixture(chainBound, func(pr *temporalbatch.Progress) {
				pr.State = temporalbatch.StateSuspended
			}),
			progressing:  wantCondition{metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, ""},
			chains:       &batchv1alpha1.ChainStatus{Total: 1, Lookahead: 1},
			meanInFlight: "0.6",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := tc.job
			if job == nil {
				job = planJobFixture()
			}
			p := planJob(observation{job: reported(job, tc.progress), now: planNow, progress: &tc.progress}, planIntervals)

			require.Equal(t, tc.chains, p.status.Chains, "status.chains")
			require.Equal(t, tc.meanInFlight, p.status.Pages.MeanInFlight, "status.pages.meanInFlight")
			c := meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionProgressing)
			require.NotNil(t, c)
			require.Equal(t, tc.progressing.status, c.Status, "Progressing status")
			require.Equal(t, tc.progressing.reason, c.Reason, "Progressing reason")
			require.Contains(t, c.Message, tc.progressing.message, "Progressing message")

			if tc.progressing.reason == batchv1alpha1.ReasonChainBound {
				// kstatus tools see a job that is progressing, not stalled.
				rec := meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionReconciling)
				require.NotNil(t, rec)
				require.Equal(t, metav1.ConditionTrue, rec.Status)
				require.Equal(t, batchv1alpha1.ReasonChainBound, rec.Reason)
				stalled := meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionStalled)
				require.NotNil(t, stalled)
				require.Equal(t, metav1.ConditionFalse, stalled.Status)
				require.Equal(t, batchv1alpha1.PhaseRunning, p.status.Phase)
				require.Empty(t, p.events, "chain-bound is a state, not an event")
			}
		})
	}
}

// A run that reports its end before its workflow closed is not finished:
// Complete and Failed wait for the workflow, workers stay for the handler.
func TestPlanFinishing(t *testing.T) {
	running := progressFixture()
	handlerBusy := func(pr *temporalbatch.Progress) {
		pr.CompletionTime, pr.HandlerQueued = nil, 4
	}
	runPlanCases(t, []planCase{
		{
			name: "failures on their way to the handler: Running, Finishing, one worker",
			obs: observation{
				job:       reported(planJobFixture(withWorkers(2), withHandler("RecordFailures")), running),
				progress:  ptr(progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "all pages completed", 0), handlerBusy)),
				finishing: true,
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second, replicas: ptr[int32](1),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonFinishing, `4 failures are on their way to the failure handler "RecordFailures"`},
				batchv1alpha1.ConditionComplete:    {metav1.ConditionFalse, batchv1alpha1.ReasonFinishing, ""},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonFinishing, ""},
				batchv1alpha1.ConditionReady:       {metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, ""},
				// batch/v1 Job's name for "it succeeded, Complete follows".
				batchv1alpha1.ConditionSuccessCriteriaMet: {metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, "all pages completed"},
			},
			check: func(t *testing.T, p plan) {
				require.Nil(t, p.status.CompletionTime)
				require.Nil(t, meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionFailureTarget))
				c := meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionReconciling)
				require.Equal(t, metav1.ConditionTrue, c.Status, "kstatus: still reconciling")
			},
		},
		{
			name: "pages being cancelled: Finishing says so",
			obs: observation{
				job: reported(planJobFixture(), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonTooManyFailedPages, "too many", 0), func(pr *temporalbatch.Progress) {
					pr.CompletionTime, pr.Pages.InFlight = nil, 3
				})),
				finishing: true,
			},
			phase: batchv1alpha1.PhaseRunning, requeue: time.Second,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionProgressing: {metav1.ConditionTrue, batchv1alpha1.ReasonFinishing, "3 pages in flight are being cancelled"},
				batchv1alpha1.ConditionFailed:      {metav1.ConditionFalse, batchv1alpha1.ReasonFinishing, ""},
				// batch/v1 Job's name for "it failed, Failed follows".
				batchv1alpha1.ConditionFailureTarget: {metav1.ConditionTrue, batchv1alpha1.ReasonTooManyFailedPages, "too many"},
			},
			check: func(t *testing.T, p plan) {
				require.Nil(t, meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionSuccessCriteriaMet))
			},
		},
		{
			name: "a FailJob rule: FailureTarget and then Failed say FailurePolicyRule",
			obs: observation{
				job:      reported(planJobFixture(), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonFailurePolicyRule, "page 3 failed with Unauthorized", 0))),
			},
			phase: batchv1alpha1.PhaseFailed, requeue: 0,
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionFailed:        {metav1.ConditionTrue, batchv1alpha1.ReasonFailurePolicyRule, "page 3 failed with Unauthorized"},
				batchv1alpha1.ConditionFailureTarget: {metav1.ConditionTrue, batchv1alpha1.ReasonFailurePolicyRule, "page 3 failed with Unauthorized"},
				batchv1alpha1.ConditionStalled:       {metav1.ConditionTrue, batchv1alpha1.ReasonFailurePolicyRule, ""},
			},
			events: []string{"Warning Failed: FailurePolicyRule: page 3 failed with Unauthorized"},
		},
		{
			name: "closed after the handler gave up: Complete says what was not delivered",
			obs: observation{
				job: reported(planJobFixture(withWorkers(2), withHandler("RecordFailures")), running),
				progress: ptr(progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "all pages completed", 0), func(pr *temporalbatch.Progress) {
					pr.Counters.HandlerDropped = 4
				})),
			},
			phase: batchv1alpha1.PhaseSucceeded, requeue: 0, replicas: ptr[int32](0),
			conditions: map[string]wantCondition{
				batchv1alpha1.ConditionComplete: {metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, "4 failures were not accepted by the failure handler within spec.failurePolicy.handlerTimeout"},
			},
			events: []string{
				"Normal Completed: 120 pages",
				"Warning FailureHandlerTimedOut: 4 failures were not accepted by the failure handler",
			},
			check: func(t *testing.T, p plan) {
				require.EqualValues(t, 4, p.status.Failures.HandlerDropped)
			},
		},
	})
}

func withHandler(name string) func(*batchv1alpha1.BatchJob) {
	return func(j *batchv1alpha1.BatchJob) {
		j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{Handler: name}
	}
}

// FailureTarget and SuccessCriteriaMet are there only while they hold: a
// job that runs again, re-driven, loses them, as it loses Failed.
func TestOutcomeConditionsLeaveWithARedrive(t *testing.T) {
	var st batchv1alpha1.BatchJobStatus
	st.Phase = batchv1alpha1.PhaseFailed
	setFailedConditions(&st, 1, batchv1alpha1.ReasonPagesFailed, "2 pages failed", "")
	require.True(t, meta.IsStatusConditionTrue(st.Conditions, batchv1alpha1.ConditionFailureTarget))

	redriven := redrivenStatus(st, "r1", 1)
	require.Nil(t, meta.FindStatusCondition(redriven.Conditions, batchv1alpha1.ConditionFailureTarget))
	require.Nil(t, meta.FindStatusCondition(redriven.Conditions, batchv1alpha1.ConditionSuccessCriteriaMet))

	// The run that follows reports Running: a stale condition goes too.
	obs := observation{job: reported(planJobFixture(), progressFixture()), progress: ptr(progressFixture())}
	obs.job.Status.Conditions = st.Conditions
	p := planJob(obs, planIntervals)
	require.Nil(t, meta.FindStatusCondition(p.status.Conditions, batchv1alpha1.ConditionFailureTarget))
}

// Pages an Ignore rule counted as done show in status.pages.ignored.
func TestIgnoredPagesInStatus(t *testing.T) {
	var st batchv1alpha1.BatchJobStatus
	applyProgress(&st, progressFixture(func(pr *temporalbatch.Progress) { pr.Counters.PagesIgnored = 2 }))
	require.EqualValues(t, 2, st.Pages.Ignored)
}
