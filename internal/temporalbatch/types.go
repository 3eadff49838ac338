// Package temporalbatch is the orchestrator engine: the BatchOrchestrator
// workflow that runs pipelined pagination on Temporal, its messages, and the
// small client the operator uses to drive it. It has no Kubernetes import.
package temporalbatch

import (
	"encoding/json"
	"time"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// Names shared with the operator and with page processors in any SDK.
const (
	// WorkflowType is the registered name of the orchestrator workflow.
	WorkflowType = "BatchOrchestrator"
	// DefaultTaskQueue is the task queue the orchestrator workflow runs on.
	DefaultTaskQueue = "temporal-batch-orchestrator"

	// SignalEnqueuePage enqueues the next page; sent by page processors.
	SignalEnqueuePage = processor.EnqueuePageSignal
	// SignalDesiredState carries the mutable settings (DesiredState).
	SignalDesiredState = "SetDesiredState"
	// SignalRedrive re-queues failed and stuck pages (RedriveRequest).
	SignalRedrive = "Redrive"
	// QueryProgress returns the Progress of the job.
	QueryProgress = "progress"
	// QueryProgressSummary returns the Progress without the fields that
	// grow with the job (Progress.Summary): what the controller polls.
	// Orchestrators from before it answer an unknown-query error.
	QueryProgressSummary = "progressSummary"
)

// Reasons a job ends or stops; they become condition reasons in status.
const (
	ReasonCompleted          = "Completed"
	ReasonChainBroken        = "ChainBroken"
	ReasonPagesFailed        = "PagesFailed"
	ReasonTooManyFailedPages = "TooManyFailedPages"
	ReasonInvalidInput       = "InvalidInput"
	ReasonCancelled          = "Cancelled"
	// ReasonFailurePolicyRule: a FailJob rule of the failure policy
	// matched a page's failure (batch/v1 Job's PodFailurePolicy).
	ReasonFailurePolicyRule = "FailurePolicyRule"
	// ReasonItemsFailed: more items failed than
	// FailurePolicy.MaxFailedItems or MaxFailedItemsPercent allow.
	ReasonItemsFailed = "ItemsFailed"
)

// Bounds that keep the workflow state O(parallelism + failure samples).
const (
	// MaxTrackedPages bounds the failed and stuck pages kept with their cursors
	// for re-drive. A job with more pages in trouble than this fails with
	// ReasonTooManyFailedPages instead of forgetting a cursor.
	MaxTrackedPages = 500
	// MaxRecentFailures is the number of most recent failures kept.
	MaxRecentFailures = 10
	// MaxFailureTypes bounds the distinct error types counted; the rest count as "Other".
	MaxFailureTypes = 50
	// MaxPageFailureTypes bounds the error types remembered per page
	// (State.FailedAs); a page failing with yet another type counts again.
	MaxPageFailureTypes = 8
	// MaxCursorBytes is the largest cursor the orchestrator accepts.
	MaxCursorBytes = processor.MaxCursorBytes
	// MaxLookahead is the most successors a frontier page is asked for.
	MaxLookahead = processor.MaxLookahead
	// MaxChains is the most cursors (independent chains) a job starts from.
	MaxChains = 1000
	// MaxCursorsBytes bounds processor.cursors together: they travel in
	// every run's input.
	MaxCursorsBytes = 256 << 10
	// MaxArgsBytes bounds processor.args: they travel in every run's input
	// and every page's.
	MaxArgsBytes = 64 << 10
	// MaxMessageBytes truncates failure messages kept in state.
	MaxMessageBytes = 256
	// MaxWaitingBytes bounds the cursors of the pages waiting for a slot:
	// past it frontier pages are asked for one successor at a time and no
	// new chain starts, so that the queue a run carries to the next stays
	// small whatever the parallelism and lookahead.
	MaxWaitingBytes = 128 << 10
	// MaxRememberedRedrives is how many re-drive IDs a job remembers.
	MaxRememberedRedrives = 32
	// MaxRedriveIDBytes bounds a re-drive ID.
	MaxRedriveIDBytes = 253
	// HandlerBatchSize is the most failures sent to the failure handler in one call.
	HandlerBatchSize = 100
	// HandlerQueueLimit pauses new page starts while this many failures wait
	// for the failure handler: back-pressure instead of dropping reports.
	HandlerQueueLimit = 1000
	// MaxParkedBytes bounds the parked pages by their cursors, messages
	// and error types together (parkedBytes): a job whose failed and
	// stuck pages take more fails with ReasonTooManyFailedPages, keeping
	// every cursor, as it does past MaxTrackedPages. With cursors of
	// MaxCursorBytes that is about 85 pages.
	MaxParkedBytes = 384 << 10
	// MaxHandlerQueueBytes bounds the failures waiting for the failure
	// handler by their cursors, items, messages and types: new page
	// starts pause at it, like at HandlerQueueLimit, and a failure that
	// would take the queue past it is dropped and counted
	// (Counters.HandlerDropped).
	MaxHandlerQueueBytes = 256 << 10
)

// Delivery says how often a page may be attempted.
type Delivery string

const (
	// AtLeastOnce retries a page by the job's retry policy.
	AtLeastOnce Delivery = "AtLeastOnce"
	// AtMostOnce attempts a page exactly once; any failure fails it for good.
	AtMostOnce Delivery = "AtMostOnce"
)

// Input starts (or continues) a BatchOrchestrator workflow.
type Input struct {
	Job           processor.JobRef `json:"job"`
	TaskQueue     string           `json:"taskQueue"`
	Processor     ProcessorSpec    `json:"processor"`
	Retry         RetryPolicy      `json:"retry"`
	FailurePolicy FailurePolicy    `json:"failurePolicy"`
	// Desired is the initial desired state; later changes arrive by signal.
	Desired DesiredState `json:"desired"`
	// ContinueAsNewAfterPages continues as new after this many pages completed
	// in one run, besides whenever Temporal suggests it. 0 = only when suggested.
	ContinueAsNewAfterPages int `json:"continueAsNewAfterPages,omitempty"`
	// Priority orders and shares the job's page activities on their task
	// queue with other jobs' (Temporal task queue priority and fairness).
	Priority Priority `json:"priority,omitzero"`
	// Redrive, when set to an ID not yet applied, re-drives at start: how a
	// job whose workflow already closed is re-driven.
	Redrive string `json:"redrive,omitempty"`
	// RedriveIncludeUnknown makes that re-drive run the pages whose outcome
	// is unknown too (RedriveRequest.IncludeUnknown).
	RedriveIncludeUnknown bool `json:"redriveIncludeUnknown,omitempty"`
	// EnqueueToken is the job's enqueue token: every page's input carries
	// it, and an EnqueuePage signal without it is rejected
	// (Counters.RejectedSignals). Empty: signals need none, as for runs
	// started before tokens. It is a credential: it is never written to
	// Progress, status, Events or logs.
	EnqueueToken string `json:"enqueueToken,omitempty"`
	// State is the bounded state carried from the previous run; nil at first.
	State *State `json:"state,omitempty"`
}

// ProcessorSpec names the page processor activity and how each page runs.
type ProcessorSpec struct {
	Name        string          `json:"name"`
	PageSize    int             `json:"pageSize"`
	Args        json.RawMessage `json:"args,omitempty"`
	FirstCursor string          `json:"firstCursor,omitempty"`
	// Cursors, when set, start one independent chain per cursor over
	// disjoint parts of the data; FirstCursor is then empty.
	Cursors []string `json:"cursors,omitempty"`
	// Lookahead is how many successor cursors a chain's frontier page is
	// asked to enqueue at once. 0 follows the effective parallelism: twice
	// it (at most MaxLookahead), so that pages wait ready for every slot
	// that frees while the frontier's signal makes its round trip
	// (docs/benchmarks.md measures why twice). 1 is the classic chain.
	Lookahead        int           `json:"lookahead,omitempty"`
	Timeout          time.Duration `json:"timeout"`
	HeartbeatTimeout time.Duration `json:"heartbeatTimeout"`
	Delivery         Delivery      `json:"delivery"`
}

// RetryPolicy is the per-page retry policy for AtLeastOnce delivery.
type RetryPolicy struct {
	InitialInterval    time.Duration `json:"initialInterval"`
	BackoffCoefficient float64       `json:"backoffCoefficient"`
	MaximumInterval    time.Duration `json:"maximumInterval"`
	// MaximumAttempts before a page is stuck; 0 means unlimited.
	MaximumAttempts        int32    `json:"maximumAttempts"`
	NonRetryableErrorTypes []string `json:"nonRetryableErrorTypes,omitempty"`
	// StuckPageRetryInterval: stuck pages are retried at this pace once other
	// work has drained; 0 fails them for good instead.
	StuckPageRetryInterval time.Duration `json:"stuckPageRetryInterval"`
}

// FailurePolicy says when page failures fail the job and who hears of them.
type FailurePolicy struct {
	// MaxFailedPages fails the job early, without waiting for its end, once
	// more pages than this failed for good; nil never does.
	MaxFailedPages *int64 `json:"maxFailedPages,omitempty"`
	// ToleratedFailedPages is how many pages may have failed for good when
	// the job reaches its end for it to succeed (its message names them);
	// with more it fails with ReasonPagesFailed. At most MaxFailedPages.
	ToleratedFailedPages int64 `json:"toleratedFailedPages,omitempty"`
	// Handler is an activity type on the job's task queue that receives
	// batches of new failures (processor.FailureBatch).
	Handler string `json:"handler,omitempty"`
	// HandlerTimeout bounds one batch's delivery to the handler, retries
	// and the wait for a worker included (the activity's schedule-to-close
	// timeout); a batch not accepted within it is dropped and counted
	// (Counters.HandlerDropped), so the job never waits for a handler that
	// no worker serves. 0 is DefaultHandlerTimeout.
	HandlerTimeout time.Duration `json:"handlerTimeout,omitempty"`
	// MaxFailedPagesPercent fails the job early once the pages failed for
	// good are more than this percentage of the pages completed or failed
	// so far, judged once that base reaches PercentMinBase; nil never does.
	MaxFailedPagesPercent *int32 `json:"maxFailedPagesPercent,omitempty"`
	// MaxFailedItems fails the job as soon as more items failed than
	// this; nil never does.
	MaxFailedItems *int64 `json:"maxFailedItems,omitempty"`
	// MaxFailedItemsPercent fails the job once the failed items are more
	// than this percentage of the items processed or failed so far,
	// judged once that base reaches PercentMinBase, and at the job's end
	// whatever the base; nil never does.
	MaxFailedItemsPercent *int32 `json:"maxFailedItemsPercent,omitempty"`
	// Rules decide what a page failure does, by its error type and
	// message: the first that matches acts; none matching leaves the
	// failure to the retry policy as without rules. Nil or empty: no
	// rule, the behaviour of orchestrators from before rules.
	Rules []FailureRule `json:"rules,omitempty"`
}

// PercentMinBase is the base (pages, or items, completed or failed) a
// percentage limit waits for before it fails a job early: the first failed
// page of a job would otherwise be 100% of it.
const PercentMinBase = 100

// MaxFailureRules bounds FailurePolicy.Rules.
const MaxFailureRules = 20

// FailureAction is what a failure rule does with a page failure that
// matches it.
type FailureAction string

const (
	// ActionFailJob fails the job at once; the page is kept, failed, for
	// a re-drive.
	ActionFailJob FailureAction = "FailJob"
	// ActionFailPage fails the page for good at once, without the stuck
	// page retries it would otherwise get.
	ActionFailPage FailureAction = "FailPage"
	// ActionIgnore counts the page as done, its items (the page size) as
	// failed. A chain's frontier that failed before enqueuing its
	// successor cannot be passed over without losing the rest of its
	// chain: it fails for good and breaks its chain instead.
	ActionIgnore FailureAction = "Ignore"
	// ActionRetry parks the page as stuck, to run again at the retry
	// policy's stuckPageRetryInterval, even after a non-retryable error.
	// Under AtMostOnce delivery, or with stuck pages not retried
	// (stuckPageRetryInterval 0), the page fails for good as without the
	// rule.
	ActionRetry FailureAction = "Retry"
)

// FailureRule matches page failures by error type and message.
type FailureRule struct {
	Action FailureAction `json:"action"`
	// OnErrorTypes are the error types the rule matches; at least one.
	OnErrorTypes []string `json:"onErrorTypes"`
	// OnMessageContains, when set, also requires the failure's message to
	// contain it.
	OnMessageContains string `json:"onMessageContains,omitempty"`
}

// DefaultHandlerTimeout is FailurePolicy.HandlerTimeout when unset.
const DefaultHandlerTimeout = 10 * time.Minute

// DesiredState is the idempotent desired-state message: the settings that may
// change while the job runs, tagged with the resource generation.
type DesiredState struct {
	Generation  int64      `json:"generation"`
	Parallelism int        `json:"parallelism"`
	Suspend     bool       `json:"suspend"`
	RampUp      *RampUp    `json:"rampUp,omitempty"`
	RateLimit   *RateLimit `json:"rateLimit,omitempty"`
	// Retry, when set, replaces Input.Retry from now on: pages started
	// after it (stuck pages at their next retry included) run with it;
	// attempts already running keep the policy they started with.
	Retry *RetryPolicy `json:"retry,omitempty"`
	// Priority, when set, replaces Input.Priority for the pages started
	// from now on.
	Priority *Priority `json:"priority,omitempty"`
	// FailurePolicy, when set, replaces Input.FailurePolicy from now on.
	// A lower MaxFailedPages than the pages already failed ends the job at
	// once; a new Handler gets the failures still queued.
	FailurePolicy *FailurePolicy `json:"failurePolicy,omitempty"`
}

// Priority is what Temporal's task queue priority and fairness read on each
// page activity: a task queue whose matching has fairness enabled dispatches
// the tasks of each fairness key in proportion to its weight, so that a job
// with a large parallelism does not starve a small one sharing its workers.
// Servers without it dispatch in order of arrival, and ignore it.
type Priority struct {
	// Key is 1 (highest) to 5; 0 is the server's default (3).
	Key int `json:"key,omitempty"`
	// FairnessKey groups tasks for fair dispatch: by default the job's
	// Kubernetes namespace. At most 64 bytes.
	FairnessKey string `json:"fairnessKey,omitempty"`
	// FairnessWeight is the key's share relative to other keys' (default 1).
	FairnessWeight float64 `json:"fairnessWeight,omitempty"`
}

// MaxPriorityKey is the lowest priority, as the server's default range.
const MaxPriorityKey = 5

// RampUp grows the effective parallelism from From by Step every Every.
type RampUp struct {
	From  int           `json:"from"`
	Step  int           `json:"step"`
	Every time.Duration `json:"every"`
}

// RateLimit caps page starts per second.
type RateLimit struct {
	PagesPerSecond float64 `json:"pagesPerSecond"`
}

// RedriveRequest asks for failed and stuck pages, and a broken chain's
// frontier, to run again with a fresh retry budget. ID deduplicates.
type RedriveRequest struct {
	ID string `json:"id"`
	// IncludeUnknown runs the failed pages whose outcome is unknown
	// (ParkedPage.OutcomeUnknown) again as well. Without it they stay
	// failed: under AtMostOnce delivery they may have processed some of
	// their items, so only the user can say running them again is safe.
	IncludeUnknown bool `json:"includeUnknown,omitempty"`
}

// PageState is where a page stands.
type PageState string

const (
	PageStuck  PageState = "Stuck"
	PageFailed PageState = "Failed"
)

// Chain is one chain of pages: pages enqueued one after the other from a
// starting cursor, each by the chain's frontier of the moment.
type Chain struct {
	// Frontier is the number of the chain's last enqueued page, the one page
	// of the chain asked to enqueue more.
	Frontier int64 `json:"frontier"`
	// Ended: the frontier page completed without a successor.
	Ended bool `json:"ended,omitempty"`
	// Broken: the frontier page failed for good before enqueuing one.
	Broken bool `json:"broken,omitempty"`
	// Refused is why the orchestrator refused the frontier's EnqueuePage
	// signal: its page then fails rather than ending the chain.
	Refused string `json:"refused,omitempty"`
}

// Page is a page waiting for a slot.
type Page struct {
	Number int64  `json:"number"`
	Cursor string `json:"cursor"`
	// Counted: the page completed and its items were counted; it runs
	// again only to enqueue its successors, and is not counted twice.
	Counted bool `json:"counted,omitempty"`
	// Attempts are the attempts the page used in earlier runs: it was
	// carried out of retry backoff by continue-as-new.
	Attempts int32 `json:"attempts,omitempty"`
	// TotalAttempts are the attempts of the page's earlier rounds: before
	// it got stuck and was retried, or failed and was re-driven. Each
	// round that exhausted its retries counts them all; a round that
	// failed for good or was cancelled counts at least one.
	TotalAttempts int32 `json:"totalAttempts,omitempty"`
}

// ParkedPage is a page that failed for good or is stuck, kept with its cursor
// so that it can run again.
type ParkedPage struct {
	Page
	State PageState `json:"state"`
	// OutcomeUnknown: the page failed under AtMostOnce delivery after it
	// may have started its items (it was cancelled in flight, timed out,
	// or failed without saying it processed nothing), or it completed but
	// its successors were refused. A re-drive runs it again only when
	// asked to (RedriveRequest.IncludeUnknown).
	OutcomeUnknown bool      `json:"outcomeUnknown,omitempty"`
	ErrorType      string    `json:"errorType"`
	Message        string    `json:"message,omitempty"`
	Time           time.Time `json:"time"`
}

// Failure is one recorded failure: a page (Item empty) or an item.
type Failure = processor.FailureReport

// State is everything a run carries to the next: bounded by parallelism,
// MaxTrackedPages and the failure samples, never by the number of pages.
type State struct {
	Runs      int          `json:"runs"`
	StartTime time.Time    `json:"startTime"`
	Applied   DesiredState `json:"applied"`
	RampStart time.Time    `json:"rampStart"`
	// Chains are the job's chains: one, or one per processor.cursors entry.
	// Only a chain's frontier page may enqueue pages, which is what makes
	// deduplication O(1).
	Chains []Chain `json:"chains,omitempty"`
	// ChainsStarted counts the chains whose first page was queued; the
	// others wait for a slot in processor.cursors.
	ChainsStarted int `json:"chainsStarted,omitempty"`
	// NextNumber is the number the next enqueued page gets; pages
	// 0..len(Chains)-1 are the chains' first pages.
	NextNumber int64 `json:"nextNumber,omitempty"`
	// Frontier, FrontierCursor, ChainEnded and ChainBroken are the one chain
	// of state carried by a run that predates Chains; a run reading them
	// moves them into Chains.
	Frontier       int64  `json:"frontier,omitempty"`
	FrontierCursor string `json:"frontierCursor,omitempty"`
	ChainEnded     bool   `json:"chainEnded,omitempty"`
	ChainBroken    bool   `json:"chainBroken,omitempty"`
	// Pending pages wait for a slot, oldest first.
	Pending []Page `json:"pending,omitempty"`
	// Frontiers are chain frontier pages waiting for a slot; they start
	// ahead of Pending so that a chain never waits behind its own pages.
	Frontiers []Page `json:"frontiers,omitempty"`
	// Parked are stuck and failed pages, in page order.
	Parked       []ParkedPage `json:"parked,omitempty"`
	StuckRetryAt *time.Time   `json:"stuckRetryAt,omitempty"`

	Counters Counters `json:"counters"`
	// ByType counts each failed page once per error type, and failed items.
	ByType map[string]int64 `json:"byType,omitempty"`
	// FailedAs are the error types each page that failed and has not
	// completed since was counted under in ByType: a page that fails again
	// with one of them (a stuck page retried, a re-driven one) is not
	// counted twice. Bounded by the parked pages and those run again.
	FailedAs map[int64][]string `json:"failedAs,omitempty"`
	// Recent failures, newest first; a page's new failure replaces its
	// older one.
	Recent       []Failure `json:"recent,omitempty"`
	HandlerQueue []Failure `json:"handlerQueue,omitempty"`
	LastRedrive  string    `json:"lastRedrive,omitempty"`
	// Redrives are the latest re-drive IDs applied, oldest first, at most
	// MaxRememberedRedrives: a request repeated after a newer one acts no
	// more than the newest does.
	Redrives []string     `json:"redrives,omitempty"`
	Rate     []RateSample `json:"rate,omitempty"`
	Tokens   float64      `json:"tokens"`
	TokensAt time.Time    `json:"tokensAt"`
	// Occupancy measures how full the slots are, to tell a chain-bound job.
	Occupancy Occupancy `json:"occupancy,omitzero"`
}

// Occupancy accumulates, over a window of time, the pages in flight and the
// time the job was chain-bound: no page waiting while slots stood free.
// The last full window is what progress reports.
type Occupancy struct {
	WindowStart time.Time `json:"windowStart,omitzero"`
	Observed    time.Time `json:"observed,omitzero"`
	// PageSeconds is the pages in flight integrated over the window.
	PageSeconds float64 `json:"pageSeconds,omitempty"`
	// SlotSeconds is the effective parallelism integrated over the window.
	SlotSeconds float64 `json:"slotSeconds,omitempty"`
	// BoundSeconds is the time the job was chain-bound in the window.
	BoundSeconds float64 `json:"boundSeconds,omitempty"`
	// Last is the last full window's result.
	Last OccupancyWindow `json:"last,omitzero"`
}

// OccupancyWindow is one window's mean pages in flight, mean effective
// parallelism and the fraction of it the job was chain-bound.
type OccupancyWindow struct {
	Seconds       float64 `json:"seconds,omitempty"`
	MeanInFlight  float64 `json:"meanInFlight,omitempty"`
	MeanEffective float64 `json:"meanEffective,omitempty"`
	BoundFraction float64 `json:"boundFraction,omitempty"`
}

// Counters are the job's exact totals.
type Counters struct {
	PagesCompleted int64 `json:"pagesCompleted"`
	ItemsProcessed int64 `json:"itemsProcessed"`
	ItemsFailed    int64 `json:"itemsFailed"`
	MaxAchieved    int   `json:"maxAchieved"`
	// Signals the orchestrator ignored, by kind.
	DuplicateSignals  int64 `json:"duplicateSignals"`
	UnexpectedSignals int64 `json:"unexpectedSignals"`
	MalformedSignals  int64 `json:"malformedSignals"`
	// RejectedSignals are EnqueuePage signals without the job's enqueue
	// token (Input.EnqueueToken): not from one of the job's pages, or from
	// a processor on an SDK that does not send the token.
	RejectedSignals int64 `json:"rejectedSignals,omitempty"`
	// HandlerDropped counts failures the handler never accepted after its
	// retries, and those that found its queue full (MaxHandlerQueueBytes).
	HandlerDropped int64 `json:"handlerDropped"`
	// FailedAttempts counts every time a page failed (after its retries):
	// a stuck page that fails again on each retry counts each time, while
	// ByType counts it once.
	FailedAttempts int64 `json:"failedAttempts,omitempty"`
	// PagesIgnored counts the pages an Ignore failure rule counted as
	// done (in PagesCompleted too), their items as failed.
	PagesIgnored int64 `json:"pagesIgnored,omitempty"`
}

// RateSample is the processed-item total at a point in time.
type RateSample struct {
	Time  time.Time `json:"time"`
	Items int64     `json:"items"`
}

// JobState is the orchestrator's view of the job.
type JobState string

const (
	StateRunning   JobState = "Running"
	StateSuspended JobState = "Suspended"
	StateSucceeded JobState = "Succeeded"
	StateFailed    JobState = "Failed"
	StateCancelled JobState = "Cancelled"
)

// Progress is what the progress query returns: what status needs. In a
// Result, FailedPages leave out their cursors: Result.Next.State.Parked has
// them.
type Progress struct {
	State   JobState `json:"state"`
	Reason  string   `json:"reason,omitempty"`
	Message string   `json:"message,omitempty"`
	// Generation is the generation of the desired state applied.
	Generation     int64             `json:"generation"`
	Parallelism    ParallelismStatus `json:"parallelism"`
	Pages          PageCounts        `json:"pages"`
	Items          ItemCounts        `json:"items"`
	ItemsPerSecond float64           `json:"itemsPerSecond"`
	ByType         map[string]int64  `json:"byType,omitempty"`
	// Recent failures, newest first.
	Recent      []Failure    `json:"recent,omitempty"`
	FailedPages []ParkedPage `json:"failedPages,omitempty"`
	// Frontier is the first chain's frontier page.
	Frontier Page        `json:"frontier"`
	Chains   ChainCounts `json:"chains"`
	// Lookahead is the successors a frontier page is asked for at most.
	Lookahead int `json:"lookahead"`
	// Occupancy is the last full window's pages in flight; ChainBound says
	// the chains, not the parallelism, set the pace in it.
	Occupancy      OccupancyWindow `json:"occupancy,omitzero"`
	ChainBound     bool            `json:"chainBound,omitempty"`
	StartTime      time.Time       `json:"startTime"`
	CompletionTime *time.Time      `json:"completionTime,omitempty"`
	// LastProgressTime is when a page last completed.
	LastProgressTime time.Time `json:"lastProgressTime,omitzero"`
	Runs             int       `json:"runs"`
	LastRedrive      string    `json:"lastRedrive,omitempty"`
	Counters         Counters  `json:"counters"`
	// HandlerQueued is the failures waiting for the failure handler or
	// being delivered to it: a job that reports its end state closes once
	// they are delivered or dropped (Counters.HandlerDropped).
	HandlerQueued int `json:"handlerQueued,omitempty"`
}

// Summary is the Progress without the failed pages and the frontier page:
// their cursors are up to megabytes that status never shows. Every other
// field is fixed-size or bounded (Recent keeps the latest few failures) and
// stays.
func (p Progress) Summary() Progress {
	p.FailedPages = nil
	p.Frontier = Page{}
	return p
}

// ParallelismStatus reports desired, effective and highest pages in flight.
type ParallelismStatus struct {
	Desired     int `json:"desired"`
	Effective   int `json:"effective"`
	MaxAchieved int `json:"maxAchieved"`
}

// PageCounts counts pages by state.
type PageCounts struct {
	Completed int64 `json:"completed"`
	InFlight  int64 `json:"inFlight"`
	Pending   int64 `json:"pending"`
	Stuck     int64 `json:"stuck"`
	Failed    int64 `json:"failed"`
	// Unknown are the failed pages whose outcome is unknown
	// (ParkedPage.OutcomeUnknown), part of Failed.
	Unknown int64 `json:"unknown,omitempty"`
}

// ChainCounts counts chains: Done ended at the end of their data.
type ChainCounts struct {
	Total  int `json:"total"`
	Done   int `json:"done"`
	Broken int `json:"broken,omitempty"`
}

// ItemCounts counts items.
type ItemCounts struct {
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
}

// Result is what the workflow returns, and the details of the error it fails
// or is cancelled with: the final progress, and the input a re-drive of the
// closed job starts from.
type Result struct {
	Progress Progress `json:"progress"`
	Next     Input    `json:"next"`
}
