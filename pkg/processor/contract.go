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
}

// EnqueuePage is the body of the single-cursor EnqueuePage signal: the
// sender's page number plus one, and the cursor of the page that follows it.
type EnqueuePage struct {
	Number int64  `json:"number"`
	Cursor string `json:"cursor"`
}

// EnqueuePageBatch is the body of the EnqueuePage signal that enqueues
// several successors at once, in the order they follow the sender: Number is
// the sender's page number plus one, as in [EnqueuePage]. The orchestrator
// numbers the enqueued pages itself; the last one becomes the chain's frontier.
// Send it only when asked for more than one (PageInput.Lookahead > 1).
type EnqueuePageBatch struct {
	Number  int64    `json:"number"`
	Cursors []string `json:"cursors"`
}

// FailedItem describes one item a page could not process. The page itself
// succeeds; the orchestrator counts the failure by Type.
type FailedItem struct {
	Item    string `json:"item"`
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
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
