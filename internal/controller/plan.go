package controller

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// observation is what one reconcile pass saw of Kubernetes and Temporal.
type observation struct {
	job *batchv1alpha1.BatchJob
	now time.Time

	// progress is the orchestrator's report; nil when not known this pass.
	progress *temporalbatch.Progress
	// closedWithoutResult: the workflow ended without a Result (terminated,
	// timed out); endErr says how.
	closedWithoutResult bool
	endErr              error
	// finishing: progress reports an end state the workflow has not
	// closed with yet.
	finishing bool
	// temporalReason and temporalMessage are set when Temporal could not be
	// reached or used this pass.
	temporalReason, temporalMessage string
	// input is the workflow's input, built from the spec once per pass;
	// invalidSpec is set instead when the spec cannot become one.
	input       temporalbatch.Input
	invalidSpec error

	// workers is what was read of the worker Deployment, when it exists.
	workers *workerObservation

	// jitter, in [-1, 1), spreads this pass's poll interval by up to
	// pollJitter either way; 0 keeps it exact.
	jitter float64
}

// plan is what one reconcile pass does: computed by planJob, a pure function.
type plan struct {
	// start is the input to start the workflow with; nil when not starting.
	start       *temporalbatch.Input
	sendDesired *temporalbatch.DesiredState
	redrive     string
	// redriveUnknown: the re-drive runs the failed pages whose outcome is
	// unknown too (AnnotationRedriveIncludeUnknown).
	redriveUnknown bool
	// redriveHeld: a new re-drive waits for the worker rollout
	// (AnnotationRedriveAfterRollout).
	redriveHeld bool
	// temporalTrouble: Temporal could not be reached or used this pass,
	// and Ready already says why.
	temporalTrouble bool
	// replicas of the worker Deployment; nil when the job has no spec.worker.
	replicas *int32
	// status and events are what to write; statusAfter adjusts them to
	// what the Temporal calls above did.
	status batchv1alpha1.BatchJobStatus
	// statusAfterRedrive is the status once the re-drive call succeeded;
	// nil without a re-drive.
	statusAfterRedrive *batchv1alpha1.BatchJobStatus
	events             []event
	// requeueAfter is when to look again; 0 means only on change.
	requeueAfter time.Duration
	deleteJob    bool
}

type event struct {
	warning bool
	reason  string
	message string
}

// Intervals tunes how often the controller reads progress.
type Intervals struct {
	// Running is the progress poll interval while pages run.
	Running time.Duration
	// Idle is the poll interval while suspended and drained.
	Idle time.Duration
	// Stall marks a job stalled when no page completed for this long while
	// pages are pending or in flight.
	Stall time.Duration
}

// DefaultIntervals are the defaults of the manager's flags.
var DefaultIntervals = Intervals{Running: 5 * time.Second, Idle: time.Minute, Stall: 10 * time.Minute}

// pollJitter is the largest share by which a poll interval is lengthened or
// shortened. Jobs created together (one kubectl apply, a Helm release)
// would otherwise be polled together, every pass of them at the same
// moment; drawn anew each pass, the jitter spreads them over the interval
// within a few passes. The mean interval stays the configured one.
const pollJitter = 0.2

// jittered spreads a poll interval by obs.jitter; a 0 interval stays 0.
func jittered(d time.Duration, jitter float64) time.Duration {
	return time.Duration(float64(d) * (1 + pollJitter*jitter))
}

func finished(phase batchv1alpha1.BatchJobPhase) bool {
	return phase == batchv1alpha1.PhaseSucceeded || phase == batchv1alpha1.PhaseFailed
}

// planJob decides what to do about a job from what was observed. The steps
// run in order: later ones read what earlier ones decided.
func planJob(obs observation, iv Intervals) plan {
	old := obs.job.Status
	st := *old.DeepCopy()
	p := plan{redrive: redriveToAsk(obs)}
	p.redriveUnknown = p.redrive != "" && obs.job.Annotations[batchv1alpha1.AnnotationRedriveIncludeUnknown] == "true"
	planPhase(&p, &st, obs, iv)
	planHeldRedrive(&p, &st, obs, iv)
	planRequeue(&p, obs)
	planTemporalTrouble(&p, &st, obs)
	planWorkers(&p, &st, obs)
	planTTL(&p, st, obs)
	setKstatusConditions(&st, obs.job.Generation)
	p.status = st
	p.events = statusEvents(old, st)
	if p.redrive != "" {
		after := redrivenStatus(st, p.redrive, obs.job.Generation)
		p.statusAfterRedrive = &after
	}
	return p
}

// redriveToAsk is the re-drive annotation's value when it is new and the
// workflow can take it this pass, else "".
func redriveToAsk(obs observation) string {
	job := obs.job
	asked := job.Annotations[batchv1alpha1.AnnotationRedrive]
	if asked == "" || asked == job.Status.LastRedrive || job.Status.Workflow == nil || obs.temporalReason != "" || obs.invalidSpec != nil || redriveWaitsForRollout(obs) {
		return ""
	}
	return asked
}

// redriveWaitsForRollout: the re-drive is asked for after the worker
// rollout (AnnotationRedriveAfterRollout), and not every worker pod runs
// the template of the job's current generation yet.
func redriveWaitsForRollout(obs observation) bool {
	return obs.job.Annotations[batchv1alpha1.AnnotationRedriveAfterRollout] == "true" && !workersRolledOut(obs)
}

// planHeldRedrive looks again soon while a new re-drive waits for the
// worker rollout, and says so on Progressing: the Deployment's progress
// triggers passes too, but a missed one must not hold the re-drive.
func planHeldRedrive(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation, iv Intervals) {
	job := obs.job
	asked := job.Annotations[batchv1alpha1.AnnotationRedrive]
	if asked == "" || asked == job.Status.LastRedrive || job.Status.Workflow == nil || !redriveWaitsForRollout(obs) {
		return
	}
	p.redriveHeld = true
	p.requeueAfter = iv.Running
	c := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionProgressing)
	if c == nil {
		return
	}
	msg := fmt.Sprintf("re-drive %q waits for the worker rollout: status.workers.templateGeneration is %d, not %d yet", asked, workerStatus(obs).TemplateGeneration, job.Generation)
	if c.Message != "" {
		msg = c.Message + "; " + msg
	}
	setCondition(st, job.Generation, c.Type, c.Status, c.Reason, msg)
}

// planPhase sets the phase and conditions from what was read of the
// workflow, and the poll interval that suits them.
func planPhase(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation, iv Intervals) {
	p.requeueAfter = iv.Running
	switch {
	case obs.invalidSpec != nil:
		planInvalidSpec(p, st, obs)
	case obs.job.Status.Workflow == nil:
		planNotStarted(p, st, obs)
	case obs.progress != nil:
		planProgress(p, st, obs, iv)
	case obs.closedWithoutResult:
		planClosedWithoutResult(p, st, obs)
	case obs.temporalReason == batchv1alpha1.ReasonWorkflowNotFound:
		planWorkflowGone(p, st, obs)
	case finished(obs.job.Status.Phase):
		// Nothing left to read: only a change to the job or its TTL brings it back.
		p.requeueAfter = 0
	}
}

// planInvalidSpec fails a job whose spec cannot become a workflow input, or
// names a task queue the cluster's policy does not allow it.
func planInvalidSpec(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	gen, msg := obs.job.Generation, obs.invalidSpec.Error()
	reason := batchv1alpha1.ReasonInvalidSpec
	if _, ok := errors.AsType[*taskQueueNotAllowed](obs.invalidSpec); ok {
		reason = batchv1alpha1.ReasonTaskQueueNotAllowed
	}
	st.Phase = batchv1alpha1.PhaseFailed
	setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionFalse, reason, "the spec cannot run; fix it or create a new BatchJob")
	setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, reason, "")
	setOutcomeConditions(st, gen, false, reason, msg)
	st.ObservedGeneration = gen
	p.requeueAfter = 0
}

// planNotStarted starts the workflow: not started yet, or Temporal did not
// answer the start.
func planNotStarted(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	job, gen := obs.job, obs.job.Generation
	if obs.temporalReason == "" {
		in := obs.input
		p.start = &in
	}
	st.Phase = batchv1alpha1.PhasePending
	setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, batchv1alpha1.ReasonStarting, "")
	setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionFalse, batchv1alpha1.ReasonStarting, "")
	setCondition(st, gen, batchv1alpha1.ConditionSuspended, boolCondition(job.Spec.Suspend), batchv1alpha1.ReasonStarting, "")
	setCondition(st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionTrue, batchv1alpha1.ReasonStarting, "starting the orchestrator workflow")
	setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionFalse, batchv1alpha1.ReasonStarting, "starting the orchestrator workflow")
	clearOutcomeConditions(st)
	p.requeueAfter = time.Second
}

// planProgress copies the orchestrator's report into status and sends the
// desired state when the workflow runs an older generation of the spec.
func planProgress(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation, iv Intervals) {
	job, gen, pr := obs.job, obs.job.Generation, obs.progress
	applyProgress(st, *pr)
	if obs.finishing {
		planFinishing(p, st, obs)
		return
	}
	if pr.State == temporalbatch.StateRunning || pr.State == temporalbatch.StateSuspended {
		if d, err := desiredState(job); err == nil && pr.Generation < gen {
			p.sendDesired = &d
		}
	}
	if pr.Generation >= gen || finished(st.Phase) {
		st.ObservedGeneration = gen
	}
	setProgressConditions(st, obs, iv)
	switch {
	case finished(st.Phase):
		p.requeueAfter = 0
	case st.Phase == batchv1alpha1.PhaseSuspended && st.Pages.InFlight == 0 && p.sendDesired == nil:
		p.requeueAfter = iv.Idle
	}
	if p.sendDesired != nil {
		p.requeueAfter = time.Second
	}
}

// planFinishing keeps a job whose run reported its end, but has not closed,
// from reading as finished: Complete and Failed are the workflow's word,
// and only a closed workflow has said it. Workers stay up (the failure
// handler runs on them) and the job is read again soon.
func planFinishing(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	gen, pr := obs.job.Generation, obs.progress
	st.Phase, st.CompletionTime = batchv1alpha1.PhaseRunning, nil
	st.ObservedGeneration = gen
	msg := fmt.Sprintf("the orchestrator reached its end (%s) and is closing its workflow", pr.State)
	switch {
	case pr.HandlerQueued > 0:
		msg = fmt.Sprintf("the orchestrator reached its end (%s): %d failures are on their way to the failure handler %q (each batch given up after spec.failurePolicy.handlerTimeout)",
			pr.State, pr.HandlerQueued, obs.job.Spec.FailurePolicy.Handler)
	case pr.Pages.InFlight > 0:
		msg = fmt.Sprintf("the orchestrator reached its end (%s): %d pages in flight are being cancelled", pr.State, pr.Pages.InFlight)
	}
	setCondition(st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionTrue, batchv1alpha1.ReasonFinishing, msg)
	setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, batchv1alpha1.ReasonFinishing, "")
	setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionFalse, batchv1alpha1.ReasonFinishing, "")
	setCondition(st, gen, batchv1alpha1.ConditionSuspended, metav1.ConditionFalse, batchv1alpha1.ReasonFinishing, "")
	setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, "the orchestrator workflow runs")
	switch pr.State {
	case temporalbatch.StateSucceeded:
		setOutcomeConditions(st, gen, true, batchv1alpha1.ReasonCompleted, pr.Message)
	case temporalbatch.StateFailed:
		setOutcomeConditions(st, gen, false, failureReason(*pr), pr.Message)
	default:
		clearOutcomeConditions(st)
	}
	p.requeueAfter = time.Second
}

// planClosedWithoutResult fails a job whose workflow ended without a
// Result (terminated, timed out).
func planClosedWithoutResult(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	planFailedWithoutResult(p, st, obs, batchv1alpha1.ReasonWorkflowFailed, fmt.Sprintf("the orchestrator workflow ended without a result: %v", obs.endErr))
}

// planFailedWithoutResult fails a job whose workflow has no Result to
// read, for reason; the job ends now.
func planFailedWithoutResult(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation, reason, msg string) {
	gen := obs.job.Generation
	st.Phase = batchv1alpha1.PhaseFailed
	setFailedConditions(st, gen, reason, msg, msg)
	if st.CompletionTime == nil {
		t := metav1.NewTime(obs.now)
		st.CompletionTime = &t
	}
	st.ObservedGeneration = gen
	p.requeueAfter = 0
}

// setFailedConditions sets the conditions of a failed job: Failed with
// reason and msg, the job no longer progressing (progressing says where it
// stopped) and not suspended.
func setFailedConditions(st *batchv1alpha1.BatchJobStatus, gen int64, reason, msg, progressing string) {
	setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, reason, "")
	setCondition(st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionFalse, batchv1alpha1.ReasonFinished, progressing)
	setCondition(st, gen, batchv1alpha1.ConditionSuspended, metav1.ConditionFalse, batchv1alpha1.ReasonFinished, "")
	setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setOutcomeConditions(st, gen, false, reason, msg)
}

// setOutcomeConditions sets FailureTarget (succeeded false) or
// SuccessCriteriaMet (true), as batch/v1 Job does: True from the moment the
// outcome is known, and kept once Failed or Complete is True too. The other
// one is removed.
func setOutcomeConditions(st *batchv1alpha1.BatchJobStatus, gen int64, succeeded bool, reason, msg string) {
	set, other := batchv1alpha1.ConditionFailureTarget, batchv1alpha1.ConditionSuccessCriteriaMet
	if succeeded {
		set, other = other, set
	}
	setCondition(st, gen, set, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(&st.Conditions, other)
}

// clearOutcomeConditions removes FailureTarget and SuccessCriteriaMet from
// a job that runs (again): like batch/v1 Job, it has them only when they
// hold.
func clearOutcomeConditions(st *batchv1alpha1.BatchJobStatus) {
	meta.RemoveStatusCondition(&st.Conditions, batchv1alpha1.ConditionFailureTarget)
	meta.RemoveStatusCondition(&st.Conditions, batchv1alpha1.ConditionSuccessCriteriaMet)
}

// planWorkflowGone fails a started job whose workflow Temporal no longer
// has: its history, and with it the job's state, is gone, and no retry
// brings it back. A re-drive asked of it is answered the same.
func planWorkflowGone(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	job := obs.job
	msg := fmt.Sprintf("workflow %s: %s", job.Status.Workflow.ID, obs.temporalMessage)
	if asked := job.Annotations[batchv1alpha1.AnnotationRedrive]; asked != "" && asked != job.Status.LastRedrive {
		msg = fmt.Sprintf("re-drive %q cannot run: %s", asked, msg)
	}
	planFailedWithoutResult(p, st, obs, batchv1alpha1.ReasonWorkflowNotFound, msg)
}

// planRequeue settles the poll interval: soon after a re-drive, and
// jittered.
func planRequeue(p *plan, obs observation) {
	if p.redrive != "" {
		// Read the re-driven run soon: the status write that records the
		// re-drive does not trigger a pass of its own (see jobChanged).
		p.requeueAfter = time.Second
	}
	// Polls are jittered; the TTL (planTTL) is a deadline and is not.
	p.requeueAfter = jittered(p.requeueAfter, obs.jitter)
}

// planTemporalTrouble makes no Temporal call when Temporal could not be
// reached this pass, and says why on Ready.
func planTemporalTrouble(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	p.temporalTrouble = obs.temporalReason != ""
	if obs.temporalReason == "" || st.Phase == batchv1alpha1.PhaseFailed && obs.temporalReason == batchv1alpha1.ReasonWorkflowNotFound {
		// A gone workflow failed the job (planWorkflowGone), which said so.
		return
	}
	setCondition(st, obs.job.Generation, batchv1alpha1.ConditionReady, metav1.ConditionFalse, obs.temporalReason, obs.temporalMessage)
	p.start = nil
	p.sendDesired = nil
}

// planWorkers sizes the worker Deployment, when the job has one.
func planWorkers(p *plan, st *batchv1alpha1.BatchJobStatus, obs observation) {
	if obs.job.Spec.Worker == nil {
		return
	}
	r := workerReplicas(obs.job, *st, obs.progress)
	p.replicas = &r
	st.Workers = workerStatus(obs)
}

// planTTL deletes a finished job once ttlSecondsAfterFinished passed, or
// looks again when it will have. A re-drive keeps the job, also one that
// waits for the worker rollout.
func planTTL(p *plan, st batchv1alpha1.BatchJobStatus, obs observation) {
	ttl := obs.job.Spec.TTLSecondsAfterFinished
	if ttl == nil || !finished(st.Phase) || st.CompletionTime == nil || p.redrive != "" || p.redriveHeld {
		return
	}
	left := st.CompletionTime.Add(time.Duration(*ttl) * time.Second).Sub(obs.now)
	if left <= 0 {
		p.deleteJob = true
	} else if p.requeueAfter == 0 || left < p.requeueAfter {
		p.requeueAfter = left
	}
}

// redrivenStatus is st once the orchestrator took the re-drive: a finished
// job returns to Running, and the next pass reads the new run.
func redrivenStatus(st batchv1alpha1.BatchJobStatus, redrive string, gen int64) batchv1alpha1.BatchJobStatus {
	st = *st.DeepCopy()
	st.LastRedrive = redrive
	if finished(st.Phase) {
		st.Phase, st.CompletionTime = batchv1alpha1.PhaseRunning, nil
		setCondition(&st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionTrue, batchv1alpha1.ReasonRunning, "re-driven: failed pages run again")
		setCondition(&st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionFalse, batchv1alpha1.ReasonRunning, "")
		setCondition(&st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, batchv1alpha1.ReasonRunning, "")
		clearOutcomeConditions(&st)
		setKstatusConditions(&st, gen)
	}
	return st
}

// outcome is what the plan's I/O did; execute fills it in.
type outcome struct {
	// started is the new run, when the start succeeded.
	started *batchv1alpha1.WorkflowRef
	// redriven: the re-drive call succeeded.
	redriven bool
	// err is the Temporal call that failed; the calls after it were not made.
	err error
	// workers is the error writing the worker Deployment, if any.
	workers error
}

// statusAfter is the status to write and its events, given what the
// Temporal calls made in namespace did.
func (p plan) statusAfter(job *batchv1alpha1.BatchJob, calls outcome, namespace string) (batchv1alpha1.BatchJobStatus, []event) {
	st := *p.status.DeepCopy()
	switch {
	case calls.redriven:
		st = *p.statusAfterRedrive.DeepCopy()
	case calls.started != nil:
		st.Workflow = calls.started
	}
	if calls.err != nil {
		temporalFailed(&st, job.Generation, calls.err, namespace)
	}
	switch {
	case calls.workers != nil && calls.err == nil && !p.temporalTrouble:
		workersFailed(&st, job, calls.workers)
	case calls.workers == nil && p.replicas != nil:
		workersRecovered(&st, job.Generation)
	}
	if p.start == nil && p.redrive == "" {
		return st, p.events
	}
	return st, statusEvents(job.Status, st)
}

// workersFailed says on Ready that the worker Deployment could not be
// created or updated, naming it and the API's answer. A Temporal problem
// of the same pass keeps Ready: the caller does not call this then.
func workersFailed(st *batchv1alpha1.BatchJobStatus, job *batchv1alpha1.BatchJob, err error) {
	msg := fmt.Sprintf("cannot create or update the worker Deployment %s/%s: %v; retrying with backoff", job.Namespace, workersName(job), err)
	setCondition(st, job.Generation, batchv1alpha1.ConditionReady, metav1.ConditionFalse, batchv1alpha1.ReasonWorkersUnavailable, msg)
}

// workersRecovered gives Ready back to a finished job once its worker
// Deployment could be written: the passes of a finished job set no other
// condition, and would leave WorkersUnavailable standing.
func workersRecovered(st *batchv1alpha1.BatchJobStatus, gen int64) {
	ready := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionReady)
	if ready == nil || ready.Reason != batchv1alpha1.ReasonWorkersUnavailable || !finished(st.Phase) {
		return
	}
	status, typ := metav1.ConditionTrue, batchv1alpha1.ConditionComplete
	if st.Phase == batchv1alpha1.PhaseFailed {
		status, typ = metav1.ConditionFalse, batchv1alpha1.ConditionFailed
	}
	if c := meta.FindStatusCondition(st.Conditions, typ); c != nil {
		setCondition(st, gen, batchv1alpha1.ConditionReady, status, c.Reason, c.Message)
	}
}

// temporalFailed says on Ready why a Temporal call failed; an error that is
// not about reaching Temporal reads as Temporal being unavailable.
func temporalFailed(st *batchv1alpha1.BatchJobStatus, gen int64, err error, namespace string) {
	reason, msg := temporalProblem(err, namespace)
	if reason == "" {
		reason, msg = batchv1alpha1.ReasonTemporalUnavailable, err.Error()
	}
	setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// setKstatusConditions derives Reconciling and Stalled from the phase and
// the other conditions.
func setKstatusConditions(st *batchv1alpha1.BatchJobStatus, gen int64) {
	progressing := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionProgressing)
	switch st.Phase {
	case batchv1alpha1.PhaseSucceeded:
		setCondition(st, gen, batchv1alpha1.ConditionReconciling, metav1.ConditionFalse, batchv1alpha1.ReasonCompleted, "")
		setCondition(st, gen, batchv1alpha1.ConditionStalled, metav1.ConditionFalse, batchv1alpha1.ReasonCompleted, "")
	case batchv1alpha1.PhaseFailed:
		reason, msg := batchv1alpha1.ReasonWorkflowFailed, ""
		if c := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionFailed); c != nil {
			reason, msg = c.Reason, c.Message
		}
		setCondition(st, gen, batchv1alpha1.ConditionReconciling, metav1.ConditionFalse, reason, "")
		setCondition(st, gen, batchv1alpha1.ConditionStalled, metav1.ConditionTrue, reason, msg)
	case batchv1alpha1.PhaseSuspended:
		setCondition(st, gen, batchv1alpha1.ConditionReconciling, metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, "")
		setCondition(st, gen, batchv1alpha1.ConditionStalled, metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, "")
	default:
		reason, msg := batchv1alpha1.ReasonRunning, ""
		if progressing != nil {
			reason, msg = progressing.Reason, progressing.Message
		}
		setCondition(st, gen, batchv1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
		if progressing != nil && progressing.Reason == batchv1alpha1.ReasonStalled {
			setCondition(st, gen, batchv1alpha1.ConditionStalled, metav1.ConditionTrue, batchv1alpha1.ReasonStalled, progressing.Message)
		} else {
			setCondition(st, gen, batchv1alpha1.ConditionStalled, metav1.ConditionFalse, reason, "")
		}
	}
}

// applyProgress copies the orchestrator's report into status.
func applyProgress(st *batchv1alpha1.BatchJobStatus, pr temporalbatch.Progress) {
	st.Phase = phaseOf(pr.State)
	st.Parallelism = batchv1alpha1.ParallelismStatus{
		Desired: int32(pr.Parallelism.Desired), Effective: int32(pr.Parallelism.Effective), MaxAchieved: int32(pr.Parallelism.MaxAchieved),
	}
	st.Pages = batchv1alpha1.PageStatus{
		Completed: pr.Pages.Completed, InFlight: pr.Pages.InFlight, Pending: pr.Pages.Pending, Stuck: pr.Pages.Stuck, Failed: pr.Pages.Failed,
		Unknown: pr.Pages.Unknown, Ignored: pr.Counters.PagesIgnored,
	}
	if pr.Occupancy.Seconds > 0 {
		st.Pages.MeanInFlight = strconv.FormatFloat(pr.Occupancy.MeanInFlight, 'f', 1, 64)
	}
	st.Chains = nil
	if pr.Chains.Total > 0 {
		st.Chains = &batchv1alpha1.ChainStatus{
			Total: int32(pr.Chains.Total), Done: int32(pr.Chains.Done), Broken: int32(pr.Chains.Broken), Lookahead: int32(pr.Lookahead),
		}
	}
	st.Items = batchv1alpha1.ItemStatus{Processed: pr.Items.Processed, Failed: pr.Items.Failed}
	st.ItemsPerSecond = strconv.FormatFloat(pr.ItemsPerSecond, 'f', 1, 64)
	if !pr.StartTime.IsZero() {
		t := metav1.NewTime(pr.StartTime)
		st.StartTime = &t
	}
	st.CompletionTime = nil
	if pr.CompletionTime != nil {
		t := metav1.NewTime(*pr.CompletionTime)
		st.CompletionTime = &t
	}
	st.Failures = nil
	if len(pr.ByType) > 0 || len(pr.Recent) > 0 || pr.Counters.HandlerDropped > 0 {
		f := &batchv1alpha1.FailureStatus{ByType: pr.ByType, HandlerDropped: pr.Counters.HandlerDropped, FailedAttempts: pr.Counters.FailedAttempts}
		for _, r := range pr.Recent {
			t := metav1.NewTime(r.Time)
			f.Recent = append(f.Recent, batchv1alpha1.FailureRecord{Page: r.Page, Cursor: r.Cursor, Item: r.Item, Type: r.Type, Message: r.Message, Time: &t})
		}
		st.Failures = f
	}
	if pr.LastRedrive != "" {
		st.LastRedrive = pr.LastRedrive
	}
	st.Signals = nil
	if c := pr.Counters; c.DuplicateSignals+c.UnexpectedSignals+c.MalformedSignals+c.RejectedSignals > 0 {
		st.Signals = &batchv1alpha1.SignalStatus{
			Duplicate: c.DuplicateSignals, Unexpected: c.UnexpectedSignals, Malformed: c.MalformedSignals, Rejected: c.RejectedSignals,
		}
	}
}

func phaseOf(s temporalbatch.JobState) batchv1alpha1.BatchJobPhase {
	switch s {
	case temporalbatch.StateSuspended:
		return batchv1alpha1.PhaseSuspended
	case temporalbatch.StateSucceeded:
		return batchv1alpha1.PhaseSucceeded
	case temporalbatch.StateFailed, temporalbatch.StateCancelled:
		return batchv1alpha1.PhaseFailed
	}
	return batchv1alpha1.PhaseRunning
}

// failureReason maps the orchestrator's end reason to a condition reason.
func failureReason(pr temporalbatch.Progress) string {
	switch pr.Reason {
	case temporalbatch.ReasonChainBroken:
		return batchv1alpha1.ReasonChainBroken
	case temporalbatch.ReasonPagesFailed:
		return batchv1alpha1.ReasonPagesFailed
	case temporalbatch.ReasonTooManyFailedPages:
		return batchv1alpha1.ReasonTooManyFailedPages
	case temporalbatch.ReasonFailurePolicyRule:
		return batchv1alpha1.ReasonFailurePolicyRule
	case temporalbatch.ReasonItemsFailed:
		return batchv1alpha1.ReasonItemsFailed
	case temporalbatch.ReasonCancelled:
		return batchv1alpha1.ReasonWorkflowCancelled
	case temporalbatch.ReasonInvalidInput:
		return batchv1alpha1.ReasonInvalidSpec
	}
	return batchv1alpha1.ReasonWorkflowFailed
}

func setProgressConditions(st *batchv1alpha1.BatchJobStatus, obs observation, iv Intervals) {
	pr := *obs.progress
	gen := obs.job.Generation
	summary := fmt.Sprintf("%d pages completed (%d in flight, %d pending), %d items processed, %d failed",
		pr.Pages.Completed, pr.Pages.InFlight, pr.Pages.Pending, pr.Items.Processed, pr.Items.Failed)
	end := pr.Message
	if n := pr.Counters.HandlerDropped; n > 0 {
		end += fmt.Sprintf("; %d failures were not accepted by the failure handler within spec.failurePolicy.handlerTimeout (see status.failures)", n)
	}
	if n := pr.Counters.RejectedSignals; n > 0 {
		// A worker built with a processor library that does not send the
		// token has its successors rejected: its chains end at its pages.
		end += fmt.Sprintf("; %d EnqueuePage signals were rejected for lacking the job's enqueue token: they did not come from the job's pages, or its workers' processor library does not send the token (see docs/security.md)", n)
	}
	switch st.Phase {
	case batchv1alpha1.PhaseSucceeded:
		setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, end)
		setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionFalse, batchv1alpha1.ReasonCompleted, "")
		setCondition(st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionFalse, batchv1alpha1.ReasonFinished, summary)
		setCondition(st, gen, batchv1alpha1.ConditionSuspended, metav1.ConditionFalse, batchv1alpha1.ReasonFinished, "")
		setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted, end)
		setOutcomeConditions(st, gen, true, batchv1alpha1.ReasonCompleted, end)
	case batchv1alpha1.PhaseFailed:
		setFailedConditions(st, gen, failureReason(pr), end, summary)
	case batchv1alpha1.PhaseSuspended:
		msg := "suspended: no new pages start"
		if pr.Pages.InFlight > 0 {
			msg = fmt.Sprintf("suspended: %d pages in flight finish, no new pages start", pr.Pages.InFlight)
		}
		setCondition(st, gen, batchv1alpha1.ConditionSuspended, metav1.ConditionTrue, batchv1alpha1.ReasonSuspended, msg)
		setCondition(st, gen, batchv1alpha1.ConditionProgressing, metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, msg)
		setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, "")
		setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionFalse, batchv1alpha1.ReasonSuspended, "")
		setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, "the orchestrator workflow runs")
		clearOutcomeConditions(st)
	default:
		reason := batchv1alpha1.ReasonRunning
		if pr.Parallelism.Effective < pr.Parallelism.Desired {
			reason = batchv1alpha1.ReasonRampingUp
		}
		status := metav1.ConditionTrue
		switch {
		case stalled(pr, obs.now, iv.Stall):
			status, reason = metav1.ConditionFalse, batchv1alpha1.ReasonStalled
			summary = fmt.Sprintf("no page completed for %s: %s", iv.Stall, summary)
		case workersRollingOut(obs):
			// Ahead of ChainBound and RampingUp: the rollout explains a
			// dip in throughput while it lasts.
			reason, summary = batchv1alpha1.ReasonWorkersRollingOut, rolloutMessage(obs)+"; "+summary
		case pr.ChainBound:
			// Ahead of RampingUp: more parallelism would not help, and the
			// message says what would.
			reason, summary = batchv1alpha1.ReasonChainBound, chainBoundMessage(pr)
		}
		setCondition(st, gen, batchv1alpha1.ConditionProgressing, status, reason, summary)
		setCondition(st, gen, batchv1alpha1.ConditionSuspended, metav1.ConditionFalse, batchv1alpha1.ReasonResumed, "")
		setCondition(st, gen, batchv1alpha1.ConditionComplete, metav1.ConditionFalse, batchv1alpha1.ReasonRunning, "")
		setCondition(st, gen, batchv1alpha1.ConditionFailed, metav1.ConditionFalse, batchv1alpha1.ReasonRunning, "")
		setCondition(st, gen, batchv1alpha1.ConditionReady, metav1.ConditionTrue, batchv1alpha1.ReasonAccepted, "the orchestrator workflow runs")
		clearOutcomeConditions(st)
	}
}

// chainBoundMessage says that the chains set the pace, by how much, and
// what to change.
func chainBoundMessage(pr temporalbatch.Progress) string {
	who, split := "the chain sets", "split the data with spec.processor.cursors"
	if pr.Chains.Total > 1 {
		who = fmt.Sprintf("the %d chains set", pr.Chains.Total)
		split = "split the data into more spec.processor.cursors"
	}
	lookahead := "spec.processor.lookahead"
	if pr.Lookahead > 0 {
		lookahead += fmt.Sprintf(" (now %d)", pr.Lookahead)
	}
	return fmt.Sprintf("pages in flight averaged %s of %s slots while no page was waiting: %s the pace; raise %s or %s",
		decimal(pr.Occupancy.MeanInFlight), decimal(pr.Occupancy.MeanEffective), who, lookahead, split)
}

// decimal is v to one decimal, without a trailing ".0".
func decimal(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// stalled: pages wait or run, yet none completed for the stall period.
func stalled(pr temporalbatch.Progress, now time.Time, after time.Duration) bool {
	// Parallelism 0 holds pages back on purpose, like suspend.
	if after <= 0 || pr.Parallelism.Effective == 0 || pr.Pages.InFlight+pr.Pages.Pending+pr.Pages.Stuck == 0 {
		return false
	}
	last := pr.LastProgressTime
	if last.IsZero() {
		last = pr.StartTime
	}
	return !last.IsZero() && now.Sub(last) > after
}

// workerReplicas is ceil(pages allowed or still in flight / pagesPerPod), 0 once finished.
func workerReplicas(job *batchv1alpha1.BatchJob, st batchv1alpha1.BatchJobStatus, pr *temporalbatch.Progress) int32 {
	if finished(st.Phase) {
		return 0
	}
	var pages int64
	switch {
	case pr != nil:
		pages = max(int64(pr.Parallelism.Effective), pr.Pages.InFlight)
		if pr.HandlerQueued > 0 {
			// The failure handler runs on the workers too.
			pages = max(pages, 1)
		}
	case st.Workflow != nil && st.Phase != batchv1alpha1.PhasePending:
		// Progress unknown this pass (Temporal unreachable): keep the last
		// known rather than stop pods that run pages.
		pages = max(int64(st.Parallelism.Effective), st.Pages.InFlight)
	case !job.Spec.Suspend:
		pages = int64(parallelism(job))
		if r := job.Spec.RampUp; r != nil {
			pages = min(pages, int64(r.From))
		}
	}
	per := int64(max(job.Spec.Worker.PagesPerPod, 1))
	return int32((pages + per - 1) / per)
}

func statusEvents(old, cur batchv1alpha1.BatchJobStatus) []event {
	var evs []event
	add := func(warning bool, reason, format string, args ...any) {
		evs = append(evs, event{warning: warning, reason: reason, message: fmt.Sprintf(format, args...)})
	}
	if old.Workflow == nil && cur.Workflow != nil {
		add(false, "Started", "started orchestrator workflow %s", cur.Workflow.ID)
	}
	if old.Phase != cur.Phase {
		switch {
		case cur.Phase == batchv1alpha1.PhaseSuspended:
			add(false, "Suspended", "suspended: no new pages start")
		case cur.Phase == batchv1alpha1.PhaseRunning && old.Phase == batchv1alpha1.PhaseSuspended:
			add(false, "Resumed", "resumed")
		case cur.Phase == batchv1alpha1.PhaseRunning && finished(old.Phase):
			add(false, "Redriven", "re-drive %q: failed pages run again", cur.LastRedrive)
		case cur.Phase == batchv1alpha1.PhaseSucceeded:
			add(false, "Completed", "%d pages, %d items processed, %d items failed", cur.Pages.Completed, cur.Items.Processed, cur.Items.Failed)
		case cur.Phase == batchv1alpha1.PhaseFailed:
			c := meta.FindStatusCondition(cur.Conditions, batchv1alpha1.ConditionFailed)
			if c != nil {
				add(true, "Failed", "%s: %s", c.Reason, c.Message)
			}
		}
	}
	if old.Parallelism.Desired != cur.Parallelism.Desired && old.Workflow != nil && old.Phase != batchv1alpha1.PhasePending {
		add(false, "ParallelismChanged", "parallelism %d -> %d", old.Parallelism.Desired, cur.Parallelism.Desired)
	}
	if cur.Pages.Failed > old.Pages.Failed {
		msg := ""
		if cur.Failures != nil {
			for _, f := range cur.Failures.Recent {
				if f.Item == "" {
					msg = fmt.Sprintf(" (latest: page %d, %s: %s)", f.Page, f.Type, f.Message)
					break
				}
			}
		}
		add(true, "PagesFailed", "%d pages failed for good%s", cur.Pages.Failed, msg)
	}
	if d := handlerDropped(cur) - handlerDropped(old); d > 0 {
		add(true, "FailureHandlerTimedOut", "%d failures were not accepted by the failure handler within spec.failurePolicy.handlerTimeout (%d in all); they stay in status.failures and the workflow history", d, handlerDropped(cur))
	}
	return evs
}

func handlerDropped(st batchv1alpha1.BatchJobStatus) int64 {
	if st.Failures == nil {
		return 0
	}
	return st.Failures.HandlerDropped
}

func setCondition(st *batchv1alpha1.BatchJobStatus, gen int64, typ string, status metav1.ConditionStatus, reason, message string) {
	message = truncate(message, maxConditionMessage)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: gen})
}

func boolCondition(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}
