package processor

import (
	"encoding/json"
	"time"
)

// The wire contract between the BatchOrchestrator workflow and page processors.
// Any Temporal SDK can implement it: the types below are plain JSON.

// EnqueuePageSignal is the name of the signal a page processor sends to the
// orchestrator workflow to enqueue the page after its own, or several (a
// lookahead batch).
const EnqueuePageSignal = "EnqueuePage"

// Limits of the EnqueuePage signal. The orchestrator refuses a signal past
// them; [Page.EnqueueNext] checks them before sending.
const (
	// MaxCursorBytes is the largest cursor the orchestrator accepts.
	MaxCursorBytes = 4096
	// MaxLookahead is the most successors a page can be asked for.
	MaxLookahead = 1000
	// MaxEnqueueBytes bounds the cursors of one lookahead batch together.
	// [Page.EnqueueNext] sends the longest prefix of the cursors that fits:
	// the last cursor sent becomes the frontier and asks for the rest, so
	// sending fewer never loses data.
	MaxEnqueueBytes = 256 << 10
)

// JobRef identifies the batch job a page belongs to.
type JobRef struct {
	// Namespace and Name of the BatchJob resource.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// WorkflowID of the orchestrator workflow: the target of EnqueuePage signals.
	WorkflowID string `json:"workflowId"`
}

// PageRef is a page of the data set: its number in the chain (0 is the first
// page), the opaque cursor that locates it and the number of items asked for.
type PageRef struct {
	Number int64  `json:"number"`
	Cursor string `json:"cursor"`
	Size   int    `json:"size"`
}

// PageInput is the single argument of a page processor activity.
type PageInput struct {
	Job  JobRef          `json:"job"`
	Page PageRef         `json:"page"`
	Args json.RawMessage `json:"args,omitempty"`
	// Lookahead is how many successor cursors the orchestrator asks this page
	// to enqueue, in one EnqueuePage signal. 0: the page is not the frontier
	// of its chain (its successors are known already) and enqueues nothing.
	// Absent (nil): an orchestrator older than lookahead, which wants one.
	Lookahead *int `json:"lookahead,omitempty"`
	// PriorAttempts are the attempts the page used before this activity:
	// the orchestrator carried it out of retry backoff into a new run of
	// the workflow, where its activity starts over at attempt 1. A
	// processor's attempt number is the activity's attempt plus these.
	PriorAttempts int32 `json:"priorAttempts,omitempty"`
	// TotalPriorAttempts are the attempts of the page's earlier rounds:
	// before it got stuck and was retried after retry.stuckPageRetryInterval,
	// or failed and was re-driven. A round that exhausted its retries counts
	// them all; one that failed for good or was cancelled counts at least
	// one. The page's attempt over its whole life is the activity's attempt
	// plus PriorAttempts plus these.
	TotalPriorAttempts int32 `json:"totalPriorAttempts,omitempty"`
	// EnqueueToken is the job's enqueue token: a processor copies it into
	// the Token of its EnqueuePage signal, and the orchestrator rejects a
	// signal without it, so that a sender that is not one of this job's
	// pages cannot enqueue cursors into it. Empty: the job has none and
	// the signal needs none. It is a credential: never log or store it.
	EnqueueToken string `json:"enqueueToken,omitempty"`
}

// EnqueuePage is the body of the single-cursor EnqueuePage signal: the
// sender's page number plus one, and the cursor of the page that follows it.
type EnqueuePage struct {
	Number int64  `json:"number"`
	Cursor string `json:"cursor"`
	// Token is the page's PageInput.EnqueueToken.
	Token string `json:"token,omitempty"`
}

// EnqueuePageBatch is the body of the EnqueuePage signal that enqueues
// several successors at once, in the order they follow the sender: Number is
// the sender's page number plus one, as in [EnqueuePage]. The orchestrator
// numbers the enqueued pages itself; the last one becomes the chain's frontier.
// Send it only when asked for more than one (PageInput.Lookahead > 1).
type EnqueuePageBatch struct {
	Number  int64    `json:"number"`
	Cursors []string `json:"cursors"`
	// Token is the page's PageInput.EnqueueToken.
	Token string `json:"token,omitempty"`
}

// FailedItem describes one item a page could not process. The page itself
// succeeds; the orchestrator counts the failure by Type.
type FailedItem struct {
	Item    string `json:"item"`
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
	// Sensitive: the message may hold secrets or personal data. The
	// orchestrator keeps the type and withholds the message from status,
	// Events, logs and the failure handler.
	Sensitive bool `json:"sensitive,omitempty"`
}

// ErrorDetails is the first detail of a page's application error (a
// Temporal ApplicationError's details, JSON): what the processor says about
// the failure besides its type and message. Errors without details are read
// as the zero value.
type ErrorDetails struct {
	// Sensitive: the message may hold secrets or personal data. The
	// orchestrator keeps the error type and withholds the message from
	// status, Events, logs and the failure handler; the activity failure
	// in Temporal's history still has it.
	Sensitive bool `json:"sensitive,omitempty"`
	// NothingProcessed: the attempt failed before it processed or changed
	// any item (fetching the page failed, say). Under AtMostOnce delivery
	// such a page is plainly failed and a re-drive runs it again; any
	// other failure leaves the page's outcome unknown.
	NothingProcessed bool `json:"nothingProcessed,omitempty"`
}

// PageResult is what a page processor returns.
type PageResult struct {
	// ItemsProcessed counts the items processed successfully.
	ItemsProcessed int64 `json:"itemsProcessed"`
	// ItemsFailed is the true number of failed items; FailedItems may be truncated.
	ItemsFailed int64        `json:"itemsFailed"`
	FailedItems []FailedItem `json:"failedItems,omitempty"`
	// NextCursor, when set and not already signalled, enqueues the next page
	// after this one completes: the fallback for processors that cannot signal.
	NextCursor string `json:"nextCursor,omitempty"`
}

// HeartbeatMarker is the heartbeat detail a processor records once it has
// signalled its successors (one or a batch), so that a retried attempt does
// not signal again.
type HeartbeatMarker struct {
	EnqueuedNext bool `json:"enqueuedNext"`
}

// FailureReport is one failure sent to a job's failure handler activity.
type FailureReport struct {
	// Page is the page number the failure belongs to.
	Page   int64  `json:"page"`
	Cursor string `json:"cursor,omitempty"`
	// Item is set for an item failure and empty for a page that failed.
	Item    string `json:"item,omitempty"`
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
	// Time is when the orchestrator recorded the failure.
	Time time.Time `json:"time"`
}

// FailureBatch is the single argument of a failure handler activity
// (spec.failurePolicy.handler): a batch of failures recorded since the last call.
type FailureBatch struct {
	Job      JobRef          `json:"job"`
	Failures []FailureReport `json:"failures"`
}
