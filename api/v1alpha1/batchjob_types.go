package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// BatchJobSpec says which data set to process, how, and how fast.
//
// parallelism, suspend, rampUp, rateLimit, retry, failurePolicy,
// worker.template, worker.pagesPerPod, cancellationPolicy and
// ttlSecondsAfterFinished may change while the job runs; taskQueue and
// processor are fixed at creation, and spec.worker cannot be added or
// removed later (create a new BatchJob for those).
// Defaults are written the way Go formats durations ("5m0s"), so that a typed
// client reading and writing the object back changes nothing.
//
// +kubebuilder:validation:XValidation:rule="!has(self.rampUp) || self.rampUp.from <= self.parallelism || self.parallelism == 0",message="spec.rampUp.from must not exceed spec.parallelism: lower rampUp.from or raise parallelism",fieldPath=".rampUp.from"
// +kubebuilder:validation:XValidation:rule="self.taskQueue == oldSelf.taskQueue",message="spec.taskQueue is immutable once the job started: the running workflow schedules every page and the failure handler on the queue it started with; create a new BatchJob to change it",fieldPath=".taskQueue"
// +kubebuilder:validation:XValidation:rule="self.processor == oldSelf.processor",message="spec.processor is immutable once the job started: pages already enqueued carry cursors of this processor and its page size, and the running workflow keeps its delivery, timeouts and arguments; create a new BatchJob to change it",fieldPath=".processor"
// +kubebuilder:validation:XValidation:rule="has(self.worker) == has(oldSelf.worker)",message="spec.worker cannot be added to or removed from a job once it started: its pages run on the workers it was created with (the operator's Deployment, or workers run elsewhere), and a removed Deployment would stop pages in flight; edit spec.worker.template to change the worker code, or create a new BatchJob",fieldPath=".worker"
// +kubebuilder:validation:XValidation:rule="!has(self.failurePolicy) || !has(self.failurePolicy.rules) || !self.failurePolicy.rules.exists(r, r.action == 'Retry') || !has(self.processor.delivery) || self.processor.delivery != 'AtMostOnce'",message="spec.failurePolicy.rules has a Retry rule, but spec.processor.delivery is AtMostOnce: a page runs once at most; use FailPage or Ignore",fieldPath=".failurePolicy.rules"
// +kubebuilder:validation:XValidation:rule="!has(self.failurePolicy) || !has(self.failurePolicy.rules) || !self.failurePolicy.rules.exists(r, r.action == 'Retry') || !has(self.retry) || !has(self.retry.stuckPageRetryInterval) || duration(self.retry.stuckPageRetryInterval) > duration('0s')",message="spec.failurePolicy.rules has a Retry rule, but spec.retry.stuckPageRetryInterval is 0s, which fails stuck pages instead of retrying them; set an interval or use FailPage",fieldPath=".failurePolicy.rules"
type BatchJobSpec struct {
	// TaskQueue is the Temporal task queue the page processors poll; the
	// failure handler runs on it too. The cluster's task queue policy may
	// require it to start with the BatchJob's namespace and a dot
	// ("team-a.orders" in namespace team-a): a job naming another queue
	// then fails with reason TaskQueueNotAllowed.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	TaskQueue string `json:"taskQueue"`

	// Processor is the page processor: its activity type and how each page runs.
	// +required
	Processor ProcessorSpec `json:"processor"`

	// Parallelism is the most pages in flight at once. 0 holds new pages back
	// like suspend.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Parallelism *int32 `json:"parallelism,omitempty"`

	// Suspend, when true, starts no new pages; pages in flight finish. Set it
	// back to false to resume.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`

	// RampUp grows the effective parallelism from rampUp.from to parallelism,
	// by rampUp.step every rampUp.every, from the start and on each resume.
	// +optional
	RampUp *RampUpSpec `json:"rampUp,omitempty"`

	// RateLimit caps page starts per second.
	// +optional
	RateLimit *RateLimitSpec `json:"rateLimit,omitempty"`

	// Priority orders this job's pages against other jobs' on a shared
	// task queue: 1 (highest) to 5; unset is the server's default, 3. It
	// needs a Temporal server with task queue priority (1.28 or later;
	// others ignore it) and may change while the job runs: the pages
	// started after the edit take it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	Priority *int32 `json:"priority,omitempty"`

	// Fairness shares a task queue's workers between jobs by key, in
	// proportion to the keys' weights, on a Temporal server whose task
	// queue fairness is enabled (matching.enableFairness): a job at
	// parallelism 200 then does not starve a small one sharing its
	// workers. Every job has a key, its namespace unless set here; servers
	// without fairness dispatch in order of arrival. It may change while
	// the job runs.
	// +optional
	Fairness *FairnessSpec `json:"fairness,omitempty"`

	// Retry is the per-page retry policy for AtLeastOnce delivery. It may
	// change while the job runs: pages started after the change (stuck
	// pages at their next retry included) run with the new policy, stuck
	// pages wait the new stuckPageRetryInterval counted from the change, and
	// status.observedGeneration shows when the job took it.
	// +optional
	// +kubebuilder:default={}
	Retry RetrySpec `json:"retry"`

	// FailurePolicy says when failed pages fail the job and who hears of
	// failures. It may change while the job runs: a maxFailedPages below the
	// pages already failed ends the job at once, and a handler set or changed
	// gets the failures from then on.
	// +optional
	FailurePolicy *FailurePolicySpec `json:"failurePolicy,omitempty"`

	// Worker, when set, makes the operator run the page processors: a
	// Deployment named <job>-workers, scaled to the parallelism in effect.
	// Its template and pagesPerPod may change while the job runs (a new
	// image, say): the Deployment rolls its pods, and a stopping worker lets
	// its pages finish (see status.workers). It cannot be added or removed
	// once the job exists.
	// +optional
	Worker *WorkerSpec `json:"worker,omitempty"`

	// CancellationPolicy says what deleting the job does to its workflow:
	// Cancel (in-flight pages are cancelled and the final progress recorded),
	// Terminate (stopped at once), or Abandon (left running). It is read when
	// the job is deleted, so it may change until then.
	// +optional
	// +kubebuilder:default=Cancel
	CancellationPolicy CancellationPolicy `json:"cancellationPolicy,omitempty"`

	// TTLSecondsAfterFinished deletes the job this many seconds after it
	// finished (Complete or Failed).
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// ProcessorSpec names the page processor and how each page runs.
//
// +kubebuilder:validation:XValidation:rule="!has(self.cursors) || size(self.cursors) == 0 || !has(self.firstCursor) || size(self.firstCursor) == 0",message="spec.processor.cursors and spec.processor.firstCursor are mutually exclusive: put the first cursor into spec.processor.cursors, or use only firstCursor",fieldPath=".cursors"
type ProcessorSpec struct {
	// Name is the activity type of the page processor.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Name string `json:"name"`

	// PageSize is the number of items asked of each page.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	PageSize int32 `json:"pageSize,omitempty"`

	// Args is free-form JSON passed to every page. It is read when the job
	// starts; later edits do not reach the running job. At most 64 KiB as
	// JSON: it travels in every page's input (a larger one fails the job
	// with InvalidInput; pass a reference such as a ConfigMap name instead).
	// +optional
	Args *apiextensionsv1.JSON `json:"args,omitempty"`

	// FirstCursor is the opaque cursor of page 0.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="size(bytes(self)) <= 4096",message="spec.processor.firstCursor must be at most 4096 bytes (in UTF-8): use a shorter cursor"
	FirstCursor string `json:"firstCursor,omitempty"`

	// Cursors start one independent chain of pages per cursor, each over its
	// own part of the data (e.g. "0:5000" and "5000:10000", or one key range
	// per shard), instead of the one chain from firstCursor. Each chain's
	// first page gets its cursor; the chains run side by side and share the
	// parallelism. The parts must not overlap: a part covered by two chains
	// is processed twice. Use it when one chain cannot fill the parallelism
	// because its processor cannot tell more than one next cursor at a time.
	// Mutually exclusive with firstCursor; at most 1000 distinct cursors of
	// at most 4096 bytes each, 256 KiB together.
	// +optional
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.all(c, size(bytes(c)) <= 4096)",message="spec.processor.cursors entries must be at most 4096 bytes each (in UTF-8): use shorter cursors"
	// +kubebuilder:validation:XValidation:rule="self.map(c, size(bytes(c))).sum() <= 262144",message="spec.processor.cursors must not exceed 262144 bytes (256 KiB) together: use fewer or shorter cursors"
	// +listType=set
	Cursors []string `json:"cursors,omitempty"`

	// Lookahead is how many next cursors the page at the head of a chain (its
	// frontier) is asked to enqueue at once. The next pages can only start
	// once a page enqueued them, so a chain that asks for one cursor at a
	// time runs about one page per enqueue round trip, whatever the
	// parallelism; asking for several fills free slots sooner. A processor
	// that cannot compute several cursors (an opaque API token) simply
	// enqueues one; 1 is the classic chain, one page enqueued at a time.
	// Unset, it follows the effective parallelism: twice it (at most 1000),
	// so that pages wait ready for every slot that frees while the
	// frontier's signal makes its round trip. Pending pages stay under the
	// effective parallelism plus the lookahead.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Lookahead *int32 `json:"lookahead,omitempty"`

	// Timeout is the start-to-close timeout of one page attempt.
	// +optional
	// +kubebuilder:default="5m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="spec.processor.timeout must be a positive duration, e.g. 5m or 1h30m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// HeartbeatTimeout fails an attempt that has not heartbeated for this
	// long; 0 disables it.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) >= duration('0s')",message="spec.processor.heartbeatTimeout must be a duration that is not negative, e.g. 30s; use 0s to disable it"
	HeartbeatTimeout *metav1.Duration `json:"heartbeatTimeout,omitempty"`

	// Delivery is AtLeastOnce (pages retry by spec.retry) or AtMostOnce
	// (exactly one attempt per page).
	// +optional
	// +kubebuilder:default=AtLeastOnce
	Delivery Delivery `json:"delivery,omitempty"`
}

// Delivery says how often a page may be attempted.
// +kubebuilder:validation:Enum=AtLeastOnce;AtMostOnce
type Delivery string

const (
	DeliveryAtLeastOnce Delivery = "AtLeastOnce"
	DeliveryAtMostOnce  Delivery = "AtMostOnce"
)

// CancellationPolicy says what deleting a job does to its workflow.
// +kubebuilder:validation:Enum=Cancel;Terminate;Abandon
type CancellationPolicy string

const (
	CancellationCancel    CancellationPolicy = "Cancel"
	CancellationTerminate CancellationPolicy = "Terminate"
	CancellationAbandon   CancellationPolicy = "Abandon"
)

// RampUpSpec grows the effective parallelism step by step.
type RampUpSpec struct {
	// From is the effective parallelism at the start.
	// +required
	// +kubebuilder:validation:Minimum=1
	From int32 `json:"from"`
	// Step is added every interval.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	Step int32 `json:"step,omitempty"`
	// Every is the interval between steps.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="spec.rampUp.every must be a positive duration, e.g. 30s"
	Every metav1.Duration `json:"every"`
}

// FairnessSpec is a job's fairness key and weight.
type FairnessSpec struct {
	// Key groups jobs for fair dispatch; unset is the job's namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Key string `json:"key,omitempty"`
	// Weight is the key's share relative to other keys', a decimal from
	// 0.001 to 1000; unset is 1. Jobs of one key should give the same.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?|[.][0-9]+)$') && double(self) >= 0.001 && double(self) <= 1000.0",message="spec.fairness.weight must be a decimal from 0.001 to 1000, e.g. \"2\" or \"0.5\""
	Weight string `json:"weight,omitempty"`
}

// RateLimitSpec caps page starts.
type RateLimitSpec struct {
	// PagesPerSecond is a positive decimal, e.g. "5" or "0.5".
	// +required
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?|[.][0-9]+)$') && double(self) > 0.0",message="spec.rateLimit.pagesPerSecond must be a decimal greater than 0, e.g. \"5\" or \"0.5\"; omit rateLimit for no limit"
	PagesPerSecond string `json:"pagesPerSecond"`
}

// RetrySpec is the per-page retry policy.
// +kubebuilder:validation:XValidation:rule="!has(self.initialInterval) || !has(self.maximumInterval) || !self.initialInterval.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || !self.maximumInterval.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self.initialInterval) <= duration(self.maximumInterval)",message="spec.retry.initialInterval must not exceed spec.retry.maximumInterval: lower the first or raise the second",fieldPath=".initialInterval"
type RetrySpec struct {
	// InitialInterval is the wait before the first retry.
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="spec.retry.initialInterval must be a positive duration, e.g. 1s"
	InitialInterval *metav1.Duration `json:"initialInterval,omitempty"`
	// BackoffCoefficient multiplies the wait after each retry; a decimal >= 1.
	// +optional
	// +kubebuilder:default="2"
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 1.0",message="spec.retry.backoffCoefficient must be a decimal of at least 1, e.g. \"2\" or \"1.5\""
	BackoffCoefficient string `json:"backoffCoefficient,omitempty"`
	// MaximumInterval caps the wait between retries.
	// +optional
	// +kubebuilder:default="1m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="spec.retry.maximumInterval must be a positive duration, e.g. 1m"
	MaximumInterval *metav1.Duration `json:"maximumInterval,omitempty"`
	// MaximumAttempts per page; then the page is stuck and frees its slot.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaximumAttempts int32 `json:"maximumAttempts,omitempty"`
	// NonRetryableErrorTypes fail a page for good on the first error of these types.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	NonRetryableErrorTypes []string `json:"nonRetryableErrorTypes,omitempty"`
	// StuckPageRetryInterval: stuck pages are retried at this pace once the
	// rest of the work drained; 0 fails them for good instead.
	// +optional
	// +kubebuilder:default="5m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) >= duration('0s')",message="spec.retry.stuckPageRetryInterval must be a duration that is not negative, e.g. 5m; use 0s to fail stuck pages"
	StuckPageRetryInterval *metav1.Duration `json:"stuckPageRetryInterval,omitempty"`
}

// FailurePolicySpec says when failed pages fail the job.
// +kubebuilder:validation:XValidation:rule="!has(self.toleratedFailedPages) || !has(self.maxFailedPages) || type(self.maxFailedPages) == string || self.toleratedFailedPages <= self.maxFailedPages",message="spec.failurePolicy.toleratedFailedPages must not be above spec.failurePolicy.maxFailedPages: the job would fail before its end with that many failed pages; lower toleratedFailedPages or raise maxFailedPages"
type FailurePolicySpec struct {
	// MaxFailedPages fails the job early, without running the rest, once
	// more pages than this failed for good: a count (0..500), or a
	// percentage ("10%") of the pages completed or failed so far, judged
	// once they are 100 or more. Omit it to let the job run to its end,
	// where toleratedFailedPages decides. Failed pages are listed in
	// status and can be re-driven.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 0 && self <= 500) : self.matches('^(100|[1-9]?[0-9])%$')",message="spec.failurePolicy.maxFailedPages must be a count from 0 to 500 or a percentage from 0% to 100%, e.g. 10%"
	MaxFailedPages *intstr.IntOrString `json:"maxFailedPages,omitempty"`
	// MaxFailedItems fails the job once more items failed than this: a
	// count, as soon as it is passed, or a percentage ("1%") of the items
	// processed or failed so far, judged once they are 100 or more and
	// again when the job reaches its end. The job fails with the reason
	// ItemsFailed; its failed items are in status.failures and went to
	// the failure handler (a re-drive does not run them again). Omit it:
	// failed items never fail the job.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",message="spec.failurePolicy.maxFailedItems must be a count of 0 or more or a percentage from 0% to 100%, e.g. 1%"
	MaxFailedItems *intstr.IntOrString `json:"maxFailedItems,omitempty"`
	// Rules decide what a page's failure does, by its error type and
	// message, like a batch/v1 Job's podFailurePolicy: the first rule that
	// matches acts; a failure no rule matches follows spec.retry as
	// without rules. A rule acts when the page's failure reaches the
	// orchestrator, after the retries spec.retry gives its attempts.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(r, self.filter(s, s.onErrorTypes == r.onErrorTypes && (has(s.onMessageContains) ? s.onMessageContains : '') == (has(r.onMessageContains) ? r.onMessageContains : '')).size() == 1)",message="spec.failurePolicy.rules has two rules with the same onErrorTypes and onMessageContains: only the first would ever act; remove one or tell them apart by onMessageContains"
	Rules []FailureRuleSpec `json:"rules,omitempty"`
	// ToleratedFailedPages is how many pages may have failed for good when
	// the job reaches its end for it to still succeed (its message names
	// them). With more, the job ends Failed with the reason PagesFailed,
	// like a batch/v1 Job with a failed index; a re-drive runs them again.
	// Default 0; at most maxFailedPages when both are set.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=500
	ToleratedFailedPages *int32 `json:"toleratedFailedPages,omitempty"`
	// Handler is an activity type on spec.taskQueue called with batches of
	// new failures.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Handler string `json:"handler,omitempty"`
	// HandlerTimeout bounds the delivery of one batch of failures to the
	// handler, its retries and the wait for a worker included. A batch not
	// accepted in time is dropped and counted in
	// status.failures.handlerDropped (the failures stay in status and the
	// workflow's history), so that a job never waits for a handler that no
	// worker runs.
	// +optional
	// +kubebuilder:default="10m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) >= duration('1s')",message="spec.failurePolicy.handlerTimeout must be a duration of at least 1s, e.g. 10m"
	HandlerTimeout *metav1.Duration `json:"handlerTimeout,omitempty"`
}

// FailureAction is what a failure rule does with a page failure it matches.
// +kubebuilder:validation:Enum=FailJob;FailPage;Ignore;Retry
type FailureAction string

const (
	// FailureActionFailJob fails the job at once with the reason
	// FailurePolicyRule; the page is kept, failed, for a re-drive.
	FailureActionFailJob FailureAction = "FailJob"
	// FailureActionFailPage fails the page for good, without the stuck
	// page retries spec.retry.stuckPageRetryInterval would give it.
	FailureActionFailPage FailureAction = "FailPage"
	// FailureActionIgnore counts the page as done and its items (the
	// page size) as failed. A page that failed before it enqueued the
	// next page of its chain cannot be passed over: it fails for good and
	// the job ends with ChainBroken, as without the rule.
	FailureActionIgnore FailureAction = "Ignore"
	// FailureActionRetry parks the page as stuck, to run again at
	// spec.retry.stuckPageRetryInterval, even after a non-retryable error.
	FailureActionRetry FailureAction = "Retry"
)

// FailureRuleSpec matches page failures by error type and message.
type FailureRuleSpec struct {
	// Action is what a matching failure does: FailJob, FailPage, Ignore
	// or Retry.
	// +required
	Action FailureAction `json:"action"`
	// OnErrorTypes are the error types the rule matches (the type a
	// processor's error carries, or Timeout<kind> for an activity
	// timeout, as status.failures shows them); at least one.
	// +required
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="size(self) > 0",message="spec.failurePolicy.rules[].onErrorTypes must name at least one error type: a rule without one matches no failure"
	OnErrorTypes []string `json:"onErrorTypes"`
	// OnMessageContains, when set, also requires the failure's message to
	// contain it.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	OnMessageContains string `json:"onMessageContains,omitempty"`
}

// WorkerSpec is the Deployment that runs the page processors.
type WorkerSpec struct {
	// PagesPerPod is how many pages one pod processes at once; replicas =
	// ceil(effective parallelism / pagesPerPod).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	PagesPerPod int32 `json:"pagesPerPod,omitempty"`
	// Template is the pod template. The operator injects TEMPORAL_ADDRESS,
	// TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, TEMPORAL_BATCH_PAGES_PER_POD and
	// TEMPORAL_BATCH_JOB into every container, and TEMPORAL_BATCH_GRACE_PERIOD
	// (how long a stopping worker lets its pages finish) into every container
	// that does not set it: the page timeout, or terminationGracePeriodSeconds
	// less 10s when the template sets that. An unset
	// terminationGracePeriodSeconds is the longest worker grace period plus
	// 10s, so that a scale-down lets pages finish.
	// +required
	// +kubebuilder:validation:XValidation:rule="has(self.spec) && has(self.spec.containers) && size(self.spec.containers) > 0",message="spec.worker.template.spec.containers must name at least one container",fieldPath=".spec.containers"
	Template corev1.PodTemplateSpec `json:"template"`
}

// BatchJobPhase is a one-word summary of the job.
// +kubebuilder:validation:Enum=Pending;Running;Suspended;Succeeded;Failed
type BatchJobPhase string

const (
	PhasePending   BatchJobPhase = "Pending"
	PhaseRunning   BatchJobPhase = "Running"
	PhaseSuspended BatchJobPhase = "Suspended"
	PhaseSucceeded BatchJobPhase = "Succeeded"
	PhaseFailed    BatchJobPhase = "Failed"
)

// BatchJobStatus is the job's progress as the orchestrator reports it.
type BatchJobStatus struct {
	// ObservedGeneration is the generation the controller last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase: Pending, Running, Suspended, Succeeded or Failed.
	// +optional
	Phase BatchJobPhase `json:"phase,omitempty"`
	// Conditions: Complete, Failed, Suspended, Progressing and Ready, plus the
	// kstatus conditions Reconciling (work left) and Stalled (failed or stuck).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Workflow is the orchestrator workflow.
	// +optional
	Workflow *WorkflowRef `json:"workflow,omitempty"`
	// StartTime is when the workflow started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// CompletionTime is when the job finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Parallelism: desired, in effect, and the most pages seen in flight.
	// +optional
	Parallelism ParallelismStatus `json:"parallelism,omitempty"`
	// Pages by state.
	// +optional
	Pages PageStatus `json:"pages,omitempty"`
	// Chains counts the job's chains of pages (one per
	// spec.processor.cursors entry, else one) and the lookahead in effect.
	// +optional
	Chains *ChainStatus `json:"chains,omitempty"`
	// Items processed and failed.
	// +optional
	Items ItemStatus `json:"items,omitempty"`
	// ItemsPerSecond is the recent throughput, a decimal.
	// +optional
	ItemsPerSecond string `json:"itemsPerSecond,omitempty"`
	// Failures by type and the most recent ones.
	// +optional
	Failures *FailureStatus `json:"failures,omitempty"`
	// Workers is the worker Deployment's replicas, when spec.worker is set.
	// +optional
	Workers *WorkerStatus `json:"workers,omitempty"`
	// LastRedrive is the value of the batch.temporalbatch.io/redrive
	// annotation last acted on.
	// +optional
	LastRedrive string `json:"lastRedrive,omitempty"`
	// Signals counts the signals the orchestrator ignored, when it ignored
	// any.
	// +optional
	Signals *SignalStatus `json:"signals,omitempty"`
}

// SignalStatus counts the signals the orchestrator workflow ignored, by why.
type SignalStatus struct {
	// Duplicate EnqueuePage signals repeat a page's successors: a page
	// retried after its worker died signals again. A few are normal.
	// +optional
	Duplicate int64 `json:"duplicate,omitempty"`
	// Unexpected EnqueuePage signals came from a page that is not its
	// chain's frontier, or whose successors were already known: a
	// processor that enqueues when Lookahead is 0, say.
	// +optional
	Unexpected int64 `json:"unexpected,omitempty"`
	// Malformed signals could not be read or broke the contract's limits
	// (a cursor over 4096 bytes, say): fix the processor that sent them.
	// +optional
	Malformed int64 `json:"malformed,omitempty"`
	// Rejected EnqueuePage signals lacked the job's enqueue token: sent by
	// a worker of another job, or by a processor built with a version of
	// the worker library older than the operator's.
	// +optional
	Rejected int64 `json:"rejected,omitempty"`
}

// WorkflowRef locates the orchestrator workflow.
type WorkflowRef struct {
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	// +optional
	RunID string `json:"runId,omitempty"`
}

// ParallelismStatus reports parallelism.
type ParallelismStatus struct {
	// Desired is spec.parallelism as the workflow applied it.
	Desired int32 `json:"desired"`
	// Effective is the pages allowed in flight now (ramp-up, suspend).
	Effective int32 `json:"effective"`
	// MaxAchieved is the most pages seen in flight at once.
	MaxAchieved int32 `json:"maxAchieved"`
}

// PageStatus counts pages by state.
type PageStatus struct {
	Completed int64 `json:"completed"`
	InFlight  int64 `json:"inFlight"`
	Pending   int64 `json:"pending"`
	// Stuck pages exhausted their retries and wait for stuckPageRetryInterval.
	Stuck int64 `json:"stuck"`
	// Failed pages failed for good; re-drive runs them again.
	Failed int64 `json:"failed"`
	// Unknown are the failed pages whose outcome is unknown, part of
	// Failed: under AtMostOnce delivery they were cancelled in flight,
	// timed out or failed after they may have processed some of their
	// items. A re-drive leaves them failed unless the annotation
	// batch.temporalbatch.io/redrive-include-unknown is "true" with it
	// (kubectl batch redrive --include-unknown): check them first.
	// +optional
	Unknown int64 `json:"unknown,omitempty"`
	// Ignored are the pages an Ignore rule of spec.failurePolicy.rules
	// counted as done after they failed, part of Completed; their items
	// count as failed.
	// +optional
	Ignored int64 `json:"ignored,omitempty"`
	// MeanInFlight is the mean number of pages in flight over the last
	// measurement window, a decimal. Well under parallelism.effective while
	// no page is pending means the chains set the pace (the Progressing
	// condition then has the reason ChainBound).
	// +optional
	MeanInFlight string `json:"meanInFlight,omitempty"`
}

// ChainStatus counts chains of pages. A chain is the pages enqueued one
// after the other from a starting cursor; a job has one chain, or one per
// spec.processor.cursors entry.
type ChainStatus struct {
	// Total is the number of chains.
	Total int32 `json:"total"`
	// Done chains reached the end of their part of the data.
	Done int32 `json:"done"`
	// Broken chains stopped: their frontier page failed for good before
	// enqueuing the next; a re-drive runs it again.
	Broken int32 `json:"broken"`
	// Lookahead is how many next cursors a chain's frontier page is asked
	// for: spec.processor.lookahead, or twice the effective parallelism (at
	// most 1000) when unset.
	// +optional
	Lookahead int32 `json:"lookahead,omitempty"`
}

// ItemStatus counts items.
type ItemStatus struct {
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
}

// FailureStatus summarises failures.
type FailureStatus struct {
	// ByType counts failures by error type: each failed page once per
	// error type (however often it was retried), and failed items.
	// +optional
	ByType map[string]int64 `json:"byType,omitempty"`
	// FailedAttempts counts every time a page failed after its retries: a
	// stuck page that fails again on each retry counts each time.
	// +optional
	FailedAttempts int64 `json:"failedAttempts,omitempty"`
	// Recent failures, newest first, at most 10; a page that fails again
	// holds one entry, its newest failure.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Recent []FailureRecord `json:"recent,omitempty"`
	// HandlerDropped counts failures that spec.failurePolicy.handler did
	// not accept within spec.failurePolicy.handlerTimeout, and those that
	// found its queue full (256 KiB of failures waiting).
	// +optional
	HandlerDropped int64 `json:"handlerDropped,omitempty"`
}

// FailureRecord is one failure: a page, or an item when Item is set.
type FailureRecord struct {
	Page int64 `json:"page"`
	// +optional
	Cursor string `json:"cursor,omitempty"`
	// +optional
	Item string `json:"item,omitempty"`
	Type string `json:"type"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// WorkerStatus reports the worker Deployment and the rollout of a new
// worker template.
type WorkerStatus struct {
	// Replicas is the worker pods that run, of any template (pods that stop
	// and let their pages finish are not counted).
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the worker pods that are ready.
	ReadyReplicas int32 `json:"readyReplicas"`
	// UpdatedReplicas is the worker pods that run the Deployment's latest
	// template; fewer than replicas while a new template rolls out.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// TemplateGeneration is the latest job generation whose worker template
	// every worker pod runs: it becomes metadata.generation once the
	// Deployment carries the template of the current spec, its controller
	// observed it, and no pod of an older template is left (updatedReplicas
	// equals replicas; a pod not ready yet runs the new template too). Equal
	// to metadata.generation, an edit of spec.worker has rolled out; while a
	// rollout runs, the Progressing condition has the reason
	// WorkersRollingOut.
	// +optional
	TemplateGeneration int64 `json:"templateGeneration,omitempty"`
}

// BatchJob runs a page processor over a whole data set on Temporal, in
// parallel and under control.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tbj,categories=temporal
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Pages",type=integer,JSONPath=`.status.pages.completed`
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=`.status.items.processed`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.items.failed`
// +kubebuilder:printcolumn:name="Parallelism",type=integer,JSONPath=`.status.parallelism.effective`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BatchJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BatchJobSpec `json:"spec"`
	// +optional
	Status BatchJobStatus `json:"status,omitempty"`
}

// BatchJobList is a list of BatchJobs.
//
// +kubebuilder:object:root=true
type BatchJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BatchJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BatchJob{}, &BatchJobList{})
}
