package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
)

// Limits applied to the failures a page reports. They keep a page result, and
// the orchestrator's bounded failure samples, small whatever the processor
// reports; the true count of failed items is never truncated.
const (
	// MaxReportedFailedItems is the number of failed items a page result
	// carries in detail. Failures beyond it are counted but not described.
	MaxReportedFailedItems = 100
	// MaxFailureMessageBytes is the length a failed item's message is cut to.
	MaxFailureMessageBytes = 512
)

// Func processes one page of a batch job. It is called once per attempt of the
// page; a failed attempt is retried according to the job's retry policy, so a
// Func must be safe to run again on the same page.
//
// The expected shape is: fetch the page at page.Cursor, call
// [Page.EnqueueNext] with the cursor of the following page (unless this is the
// last page), process the items, report items that could not be processed with
// [Page.FailItem], and return the number of items processed.
//
// Returning an error fails the attempt. Use [NonRetryable] for errors that a
// retry cannot fix and [Retryable] to give an error a type the job's
// retry.nonRetryableErrorTypes can name.
type Func func(ctx context.Context, page *Page) (Result, error)

// Result is what a [Func] reports about a page it processed successfully.
type Result struct {
	// ItemsProcessed counts the items processed successfully. Items reported
	// with FailItem are counted separately and belong not in this number.
	ItemsProcessed int64
	// NextCursor is the fallback for processors that cannot enqueue the next
	// page before doing the work: when set, the orchestrator enqueues the next
	// page with this cursor after this page completes, which serialises the
	// job. It is ignored once EnqueueNext has enqueued the next page.
	NextCursor string
}

// Page is one page of a batch job handed to a [Func], together with the
// operations a processor performs on it. A Page is safe for concurrent use, so
// a processor may fan its items out to goroutines that call FailItem.
type Page struct {
	// Job identifies the BatchJob and its orchestrator workflow.
	Job JobRef
	// Number is the page's position in the chain; the first page is 0.
	Number int64
	// Cursor locates the page in the data set. It is the job's
	// spec.processor.firstCursor for page 0 and whatever the previous page
	// passed to EnqueueNext otherwise.
	Cursor string
	// Size is the number of items asked for (spec.processor.pageSize).
	Size int
	// Attempt is the page's attempt, starting at 1: the activity's attempt,
	// counting on across the runs of the orchestrator workflow. It starts
	// over when the page runs again after it got stuck or was re-driven.
	Attempt int32
	// TotalAttempt is the page's attempt over its whole life: Attempt plus
	// the attempts of its earlier rounds (PageInput.TotalPriorAttempts).
	// Use it to give up on a page tried too often.
	TotalAttempt int32
	// Args is spec.processor.args as raw JSON; empty when the job has none.
	Args json.RawMessage

	// lookahead is how many successors the orchestrator asked for.
	lookahead int
	// token is the job's enqueue token, sent with EnqueueNext's signal.
	// Unexported: a processor has no use for it, and a JSON encoding of
	// the Page leaves it out.
	token string

	mu sync.Mutex
	// enqueued is true once the next page was signalled, by this attempt or
	// by an earlier attempt that recorded the heartbeat marker.
	enqueued bool
	// itemsFailed is the true failure count; failedItems holds at most
	// MaxReportedFailedItems of them.
	itemsFailed int64
	failedItems []FailedItem
}

// newPage builds the Page of an activity attempt. It restores the marker an
// earlier attempt recorded so that EnqueueNext does not signal twice.
func newPage(ctx context.Context, in PageInput) *Page {
	p := &Page{
		Job:     in.Job,
		Number:  in.Page.Number,
		Cursor:  in.Page.Cursor,
		Size:    in.Page.Size,
		Attempt: activity.GetInfo(ctx).Attempt + max(in.PriorAttempts, 0),
		Args:    in.Args,
		token:   in.EnqueueToken,
		// An orchestrator that predates lookahead asks every page for one.
		lookahead: 1,
	}
	p.TotalAttempt = p.Attempt + max(in.TotalPriorAttempts, 0)
	if in.Lookahead != nil {
		p.lookahead = min(max(*in.Lookahead, 0), MaxLookahead)
	}
	if activity.HasHeartbeatDetails(ctx) {
		var marker HeartbeatMarker
		if err := activity.GetHeartbeatDetails(ctx, &marker); err != nil {
			// Someone recorded details of another shape. Signalling again is
			// harmless because the orchestrator ignores a page number it has
			// seen; refusing to signal could lose the rest of the chain.
			activity.GetLogger(ctx).Warn("Ignoring unreadable heartbeat details of an earlier attempt", "error", err)
		} else {
			p.enqueued = marker.EnqueuedNext
		}
	}
	return p
}

// DecodeArgs decodes the job's spec.processor.args into v, as json.Unmarshal
// does. When the job has no args, v is left as it is, so defaults set before
// the call survive. Malformed args fail the page for good with an error of type
// [ErrorTypeInvalidArgs]: every retry would see the same args.
func (p *Page) DecodeArgs(v any) error {
	if len(p.Args) == 0 || string(p.Args) == "null" {
		return nil
	}
	if err := json.Unmarshal(p.Args, v); err != nil {
		return NonRetryable(ErrorTypeInvalidArgs, "decode spec.processor.args: %v", err)
	}
	return nil
}

// Lookahead is how many successor cursors the orchestrator asks this page for
// (spec.processor.lookahead, fewer when its queue is full). A processor that
// can compute the cursors of several following pages cheaply (a keyset query
// that reads only keys, offsets) passes up to that many to [Page.EnqueueNext]
// in one call; one that cannot (opaque API tokens) passes one. 0 means the
// page is not its chain's frontier: the pages after it are enqueued already,
// and EnqueueNext does nothing.
func (p *Page) Lookahead() int { return p.lookahead }

// EnqueueNext asks the orchestrator to schedule the pages after this one, at
// the given cursors, in order: the first cursor is the page that directly
// follows this one. Call it as soon as the cursors are known, before
// processing the items: the next pages then run in parallel with this one. A
// processor that reached the end of the data does not call it; one that knows
// only the next cursor passes one.
//
// At most [Page.Lookahead] cursors are sent, and no more than fit in
// [MaxEnqueueBytes]; the last cursor sent becomes the chain's frontier and is
// asked for the rest, so dropping the tail never loses data. When Lookahead is
// 0 nothing is sent. A cursor over [MaxCursorBytes] fails the page for good
// with [ErrorTypeCursorTooLarge]: the orchestrator would refuse it.
//
// The signal carries the job's enqueue token (PageInput.EnqueueToken): the
// orchestrator rejects EnqueuePage signals without it.
//
// EnqueueNext sends one signal and records a heartbeat marker, so it does
// nothing when called again in the same attempt or in a retry of an attempt
// that already enqueued. An error means the signal was not delivered; return
// it so the attempt is retried.
func (p *Page) EnqueueNext(ctx context.Context, cursors ...string) error {
	if len(cursors) == 0 {
		return NonRetryable(ErrorTypeInvalidPageInput, "page %d called EnqueueNext without a cursor; at the end of the data, do not call it", p.Number)
	}
	// The lock is held across the signal so that concurrent callers cannot
	// both see enqueued == false and signal twice.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.enqueued || p.lookahead == 0 {
		return nil
	}
	if p.Job.WorkflowID == "" {
		return NonRetryable(ErrorTypeInvalidPageInput, "page %d has no job.workflowId to enqueue the next page on", p.Number)
	}
	cursors = cursors[:min(len(cursors), p.lookahead)]
	size := 0
	for i, c := range cursors {
		if err := checkCursor(p.Number, c); err != nil {
			return err
		}
		if size += len(c); size > MaxEnqueueBytes {
			cursors = cursors[:i]
			break
		}
	}
	var body any = EnqueuePage{Number: p.Number + 1, Cursor: cursors[0], Token: p.token}
	if len(cursors) > 1 {
		body = EnqueuePageBatch{Number: p.Number + 1, Cursors: cursors, Token: p.token}
	}
	// An empty run ID addresses the workflow's current run, which is the one
	// holding the queue after the orchestrator continued as new.
	if err := activity.GetClient(ctx).SignalWorkflow(ctx, p.Job.WorkflowID, "", EnqueuePageSignal, body); err != nil {
		return fmt.Errorf("enqueue the %d page(s) after page %d of workflow %q: %w", len(cursors), p.Number, p.Job.WorkflowID, err)
	}
	p.enqueued = true
	// If the worker dies between the signal and this heartbeat reaching the
	// server, the retry signals again; the orchestrator ignores the duplicate.
	activity.RecordHeartbeat(ctx, HeartbeatMarker{EnqueuedNext: true})
	return nil
}

// checkCursor refuses a successor cursor the orchestrator would refuse, so
// that the page fails visibly instead of its chain ending there.
func checkCursor(page int64, cursor string) error {
	if len(cursor) > MaxCursorBytes {
		return NonRetryable(ErrorTypeCursorTooLarge, "page %d produced a cursor of %d bytes for the page after it; cursors must be at most %d bytes: encode the position more compactly (a key, an offset, a token ID)", page, len(cursor), MaxCursorBytes)
	}
	return nil
}

// FailItem reports that item could not be processed. errType names the kind
// of failure: it is the key of status.failures.byType. The page itself still
// succeeds. Every call is counted; the first [MaxReportedFailedItems] are
// reported in detail, with message cut to [MaxFailureMessageBytes].
func (p *Page) FailItem(item, errType, message string) {
	p.failItem(FailedItem{Item: item, Type: errType, Message: message})
}

// FailItemSensitive is FailItem for a message that may hold secrets or
// personal data (a database error with a connection string, a row's
// contents): the orchestrator counts the failure by errType and withholds
// the message from status, Events, logs and the failure handler.
func (p *Page) FailItemSensitive(item, errType, message string) {
	p.failItem(FailedItem{Item: item, Type: errType, Message: message, Sensitive: true})
}

func (p *Page) failItem(fi FailedItem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.itemsFailed++
	if len(p.failedItems) < MaxReportedFailedItems {
		fi.Message = truncateUTF8(fi.Message, MaxFailureMessageBytes)
		p.failedItems = append(p.failedItems, fi)
	}
}

// Heartbeat tells Temporal the page is still being processed. A page that runs
// longer than the job's spec.processor.heartbeatTimeout must call it more often
// than that. Heartbeats are also how a cancellation reaches a running page:
// once Temporal answers one with a cancellation, ctx is done. Calling it often
// is cheap; the SDK throttles what it sends.
//
// Use Heartbeat rather than activity.RecordHeartbeat: the heartbeat details
// carry the marker that stops a retried attempt from enqueuing the next page
// twice, and other details would overwrite it.
func (p *Page) Heartbeat(ctx context.Context) {
	p.mu.Lock()
	marker := HeartbeatMarker{EnqueuedNext: p.enqueued}
	p.mu.Unlock()
	activity.RecordHeartbeat(ctx, marker)
}

// pageResult converts what the processor returned into the wire result.
func (p *Page) pageResult(r Result) (PageResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.enqueued {
		if err := checkCursor(p.Number, r.NextCursor); err != nil {
			return PageResult{}, err
		}
	}
	out := PageResult{
		ItemsProcessed: r.ItemsProcessed,
		ItemsFailed:    p.itemsFailed,
		NextCursor:     r.NextCursor,
	}
	if len(p.failedItems) > 0 {
		out.FailedItems = append([]FailedItem(nil), p.failedItems...)
	}
	if p.enqueued {
		// The next page is already in the orchestrator's queue; a cursor here
		// would be a second, possibly different, claim on the same page number.
		out.NextCursor = ""
	}
	return out, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence,
// so that a truncated message is still valid text in status and logs.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
