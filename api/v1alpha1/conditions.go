package v1alpha1

// Condition types of a BatchJob. Each carries observedGeneration.
const (
	// ConditionComplete is True when every page finished and the job succeeded.
	ConditionComplete = "Complete"
	// ConditionFailed is True when the job failed; the reason says why.
	ConditionFailed = "Failed"
	// ConditionSuspended is True while spec.suspend holds new pages back.
	ConditionSuspended = "Suspended"
	// ConditionProgressing is True while pages run, False with a reason when stalled or finished.
	ConditionProgressing = "Progressing"
	// ConditionReady is kstatus-style readiness: the job is accepted and healthy.
	ConditionReady = "Ready"

	// ConditionReconciling and ConditionStalled follow the kstatus
	// conventions (sigs.k8s.io/cli-utils), so that kubectl, Argo CD and Flux
	// see a running job as in progress and a failed one as failed.
	// Reconciling is True while the job has work left; Stalled is True when
	// it failed or no page completes.
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"

	// ConditionFailureTarget and ConditionSuccessCriteriaMet are named and
	// meant as batch/v1 Job's: they say the job's outcome as soon as the
	// orchestrator decided it, while pages in flight are cancelled and the
	// failure handler catches up, ahead of Failed or Complete (which wait
	// for the workflow to close) and alongside them after. They are added
	// when they hold, with the reason Failed or Complete will have, and
	// removed when the job runs again (a re-drive).
	ConditionFailureTarget      = "FailureTarget"
	ConditionSuccessCriteriaMet = "SuccessCriteriaMet"
)

// Condition reasons.
const (
	// ReasonCompleted: every page finished.
	ReasonCompleted = "Completed"
	// ReasonPagesFailed: more pages failed for good than failurePolicy.maxFailedPages.
	ReasonPagesFailed = "PagesFailed"
	// ReasonFailurePolicyRule: a FailJob rule of failurePolicy.rules
	// matched a page's failure (batch/v1 Job's PodFailurePolicy).
	ReasonFailurePolicyRule = "FailurePolicyRule"
	// ReasonItemsFailed: more items failed than failurePolicy.maxFailedItems.
	ReasonItemsFailed = "ItemsFailed"
	// ReasonChainBroken: the page holding the frontier failed for good before enqueuing its successor.
	ReasonChainBroken = "ChainBroken"
	// ReasonTooManyFailedPages: more pages failed or are stuck than the orchestrator tracks.
	ReasonTooManyFailedPages = "TooManyFailedPages"
	// ReasonWorkflowFailed: the workflow ended in a way the job cannot account for (terminated, timed out).
	ReasonWorkflowFailed = "WorkflowFailed"
	// ReasonWorkflowCancelled: the workflow was cancelled outside the operator.
	ReasonWorkflowCancelled = "WorkflowCancelled"
	// ReasonInvalidSpec: the orchestrator rejected the spec.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonTaskQueueNotAllowed: spec.taskQueue is outside what the
	// cluster's task queue policy (the manager's --task-queue-policy)
	// allows the job's namespace; the message names the queue to use.
	ReasonTaskQueueNotAllowed = "TaskQueueNotAllowed"

	// ReasonStarting: the workflow is being started.
	ReasonStarting = "Starting"
	// ReasonRunning: pages are running.
	ReasonRunning = "Running"
	// ReasonRampingUp: the effective parallelism is still growing.
	ReasonRampingUp = "RampingUp"
	// ReasonChainBound: pages run, but most of the last measurement window
	// no page was waiting while fewer pages than the effective parallelism
	// were in flight: the chains, not the parallelism, set the pace. Raise
	// spec.processor.lookahead or split the data with spec.processor.cursors.
	ReasonChainBound = "ChainBound"
	// ReasonWorkersRollingOut: pages run while the worker Deployment
	// replaces pods of an older spec.worker template with the current one;
	// stopping workers let their pages finish. status.workers shows how far
	// it got.
	ReasonWorkersRollingOut = "WorkersRollingOut"
	// ReasonSuspended: spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonResumed: spec.suspend is false.
	ReasonResumed = "Resumed"
	// ReasonStalled: pages are pending but none completed for a while.
	ReasonStalled = "Stalled"
	// ReasonFinishing: the orchestrator reached its end state and its
	// workflow has not closed yet: in-flight pages are being cancelled or
	// failures are on their way to the failure handler.
	ReasonFinishing = "Finishing"
	// ReasonFinished: the job finished (see Complete or Failed).
	ReasonFinished = "Finished"
	// ReasonTemporalUnavailable: the Temporal server does not answer.
	ReasonTemporalUnavailable = "TemporalUnavailable"
	// ReasonNamespaceNotFound: the Temporal namespace does not exist.
	ReasonNamespaceNotFound = "NamespaceNotFound"
	// ReasonWorkersUnavailable: the worker Deployment cannot be created or
	// updated (quota, admission webhook, a Deployment of the same name);
	// the message names it and the API's answer.
	ReasonWorkersUnavailable = "WorkersUnavailable"
	// ReasonWorkflowNotFound: Temporal no longer has the job's workflow:
	// its history is gone (the namespace's retention passed, or the
	// server's data was wiped). The job's state is lost; it fails, and a
	// new BatchJob runs the work again.
	ReasonWorkflowNotFound = "WorkflowNotFound"
	// ReasonTemporalPermissionDenied: the manager's Temporal credentials
	// lack a permission on the namespace; retried with backoff.
	ReasonTemporalPermissionDenied = "TemporalPermissionDenied"
	// ReasonAccepted: the job is accepted and its workflow runs.
	ReasonAccepted = "Accepted"
)

// Annotations.
const (
	// AnnotationRedrive asks for a re-drive when set to a new value.
	AnnotationRedrive = "batch.temporalbatch.io/redrive"
	// AnnotationRedriveIncludeUnknown, "true" when the re-drive is asked
	// for, makes it run the failed pages whose outcome is unknown too:
	// AtMostOnce pages that may have processed some of their items
	// (status.pages.unknown). Check them first.
	AnnotationRedriveIncludeUnknown = "batch.temporalbatch.io/redrive-include-unknown"
	// AnnotationRedriveAfterRollout, "true" when the re-drive is asked
	// for, holds the re-drive until every worker pod runs the worker
	// template of the job's current generation
	// (status.workers.templateGeneration equals metadata.generation), so
	// that the failed pages run again on fixed worker code deployed with
	// the same edit or just before. Without spec.worker it holds nothing.
	AnnotationRedriveAfterRollout = "batch.temporalbatch.io/redrive-after-rollout"
	// Finalizer applies spec.cancellationPolicy before the job goes away.
	Finalizer = "batch.temporalbatch.io/workflow"
)
