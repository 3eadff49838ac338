package temporalbatch

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// ErrorTypeEnqueueRefused is the error type of a frontier page that completed
// after the orchestrator refused its EnqueuePage signal: its chain is broken
// there rather than ended, and a re-drive runs the page again.
const ErrorTypeEnqueueRefused = "EnqueueRefused"

// ErrorTypePageCancelled is the error type of an AtMostOnce page cancelled
// in flight: when the job ended, or was cancelled, before it completed.
const ErrorTypePageCancelled = "PageCancelled"

// atMostOnceUnknown: a page that did not complete cleanly may have done
// part of its work, and running it again could do that twice.
func (o *orchestrator) atMostOnceUnknown() bool {
	return o.unknownOutcomes && o.in.Processor.Delivery == AtMostOnce
}

func (o *orchestrator) pageFailed(p Page, err error, now time.Time) {
	e := o.classify(err)
	rule, ruleIndex, matched := o.ruleFor(e)
	if matched {
		o.applyRule(rule, &e)
	}
	msg := e.msg
	if o.unknownOutcomes {
		if e.details.Sensitive {
			msg = withheld(msg)
		}
		p.TotalAttempts += o.roundAttempts(p, e)
	}
	if matched && rule.Action == ActionIgnore {
		if o.ignore(p, e, msg, now) {
			return
		}
		e.forGood = true // a frontier: its chain breaks, as for a failure
	}
	if matched && rule.Action == ActionFailJob {
		o.end(StateFailed, ReasonFailurePolicyRule, o.ruleMessage(p, ruleIndex, e.errType, msg))
	}
	state := PageStuck
	if e.forGood {
		state = PageFailed
	}
	o.park(p, state, o.atMostOnceUnknown() && !e.details.NothingProcessed, e.errType, msg, now)
	if e.forGood {
		o.breakChain(p)
	}
}

// breakChain breaks the chain whose frontier p is: the page failed for
// good before its successors were known.
func (o *orchestrator) breakChain(p Page) {
	if c, ok := o.chainOf(p.Number); ok && !c.Ended {
		c.Broken = true
	}
}

// roundAttempts are the attempts a page used in the round that just
// failed: all its retries when it exhausted them (a retryable failure
// stops retrying at no other point), else at least one.
func (o *orchestrator) roundAttempts(p Page, e pageError) int32 {
	n := int32(1)
	if !e.nonRetryable {
		n = max(o.activityOptions(p).RetryPolicy.MaximumAttempts, 1)
	}
	return p.Attempts + n
}

// withheld replaces a message a processor marked sensitive.
func withheld(msg string) string {
	return fmt.Sprintf("message withheld: the processor marked it sensitive (%d bytes); the worker's logs and the activity's failure in Temporal have it", len(msg))
}

// park keeps a page that failed for good or is stuck, with its cursor, for
// a later retry or re-drive, records the failure and ends the job when the
// failure policy says so. unknown: the page failed for good with its
// outcome unknown (ParkedPage.OutcomeUnknown).
func (o *orchestrator) park(p Page, state PageState, unknown bool, errType, msg string, now time.Time) {
	o.st.Counters.FailedAttempts++
	// A page counts once per error type, however often it fails with it.
	as := o.st.FailedAs[p.Number]
	counted := slices.Contains(as, errType)
	if !counted && len(as) < MaxPageFailureTypes {
		if o.st.FailedAs == nil {
			o.st.FailedAs = map[int64][]string{}
		}
		o.st.FailedAs[p.Number] = append(slices.Clip(as), errType)
	}
	o.st.Parked = append(o.st.Parked, ParkedPage{Page: p, State: state, OutcomeUnknown: unknown, ErrorType: errType, Message: truncate(msg, MaxMessageBytes), Time: now})
	slices.SortFunc(o.st.Parked, func(a, b ParkedPage) int { return cmp.Compare(a.Number, b.Number) })
	o.record(Failure{Page: p.Number, Cursor: p.Cursor, Type: errType, Message: msg, Time: now}, !counted)
	o.logger.Warn("Page failed", "Page", p.Number, "State", state, "Type", errType, "Error", msg)

	o.checkMaxFailed()
	if len(o.st.Parked) > MaxTrackedPages {
		o.end(StateFailed, ReasonTooManyFailedPages, fmt.Sprintf("%d pages failed or are stuck, more than the %d the orchestrator tracks for re-drive; fix the cause and re-drive", len(o.st.Parked), MaxTrackedPages))
	}
	if b := parkedBytes(o.st.Parked, o.strBytes); o.boundedPayloads && b > MaxParkedBytes {
		o.end(StateFailed, ReasonTooManyFailedPages, fmt.Sprintf("%d pages failed or are stuck, their cursors and messages %d bytes, more than the %d bytes the orchestrator tracks for re-drive; fix the cause and re-drive", len(o.st.Parked), b, MaxParkedBytes))
	}
}

// failureOverhead is about what a parked page or a failure takes in JSON
// besides its strings.
const failureOverhead = 128

// parkedBytes is about the size of the parked pages in JSON, for
// MaxParkedBytes.
func parkedBytes(parked []ParkedPage, size func(string) int) int {
	n := 0
	for _, p := range parked {
		n += size(p.Cursor) + size(p.Message) + size(p.ErrorType) + failureOverhead
	}
	return n
}

// failureBytes is about the size of a failure in JSON, for
// MaxHandlerQueueBytes.
func failureBytes(f Failure, size func(string) int) int {
	return size(f.Cursor) + size(f.Item) + size(f.Type) + size(f.Message) + failureOverhead
}

func queueBytes(q []Failure, size func(string) int) int {
	n := 0
	for _, f := range q {
		n += failureBytes(f, size)
	}
	return n
}

// strBytes measures a string as the payload bounds count it: in runs with
// changeUnknownOutcomes its JSON encoding, escapes included (a cursor of
// quotes or control characters takes up to six times its length in JSON).
func (o *orchestrator) strBytes(s string) int {
	if o.unknownOutcomes {
		return jsonStringBytes(s)
	}
	return len(s)
}

// jsonStringBytes is the length of s as encoding/json (which Temporal's
// JSON payloads use) encodes it, quotes left out.
func jsonStringBytes(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += 6 // \ufffd, \u2028, \u2029
		} else {
			n += size
		}
		i += size
	}
	return n
}

// handlerFull: new page starts wait for the failure handler to catch up.
func (o *orchestrator) handlerFull() bool {
	return len(o.st.HandlerQueue) >= HandlerQueueLimit ||
		(o.boundedPayloads && queueBytes(o.st.HandlerQueue, o.strBytes) >= MaxHandlerQueueBytes)
}

// pageError is a page failure as the orchestrator reads it.
type pageError struct {
	errType, msg string
	// forGood: the page failed for good rather than being stuck after its
	// retries.
	forGood bool
	// nonRetryable: the attempt that failed was not retried.
	nonRetryable bool
	details      processor.ErrorDetails
}

// classify reads a page failure.
func (o *orchestrator) classify(err error) pageError {
	var details processor.ErrorDetails
	errType, msg := "ActivityError", err.Error()
	var actErr *temporal.ActivityError
	cause := err
	if errors.As(err, &actErr) {
		cause = errors.Unwrap(actErr)
		if cause == nil {
			cause = err
		}
	}
	var appErr *temporal.ApplicationError
	var toErr *temporal.TimeoutError
	nonRetryable := false
	switch {
	case errors.As(cause, &appErr):
		errType, msg, nonRetryable = orDefault(appErr.Type(), "ApplicationError"), appErr.Error(), appErr.NonRetryable()
		if appErr.HasDetails() {
			// Details of another shape read as none.
			_ = appErr.Details(&details)
		}
	case errors.As(cause, &toErr):
		errType, msg = "Timeout"+timeoutName(toErr.TimeoutType()), toErr.Error()
	}
	if actErr != nil && actErr.RetryState() == enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE {
		nonRetryable = true
	}
	if slices.Contains(o.retry().NonRetryableErrorTypes, errType) {
		nonRetryable = true
	}
	// An AtMostOnce page has one attempt: it is never retried.
	nonRetryable = nonRetryable || o.in.Processor.Delivery == AtMostOnce
	return pageError{
		errType: errType, msg: msg, details: details, nonRetryable: nonRetryable,
		forGood: nonRetryable || o.retry().StuckPageRetryInterval <= 0,
	}
}

func timeoutName(t enumspb.TimeoutType) string {
	switch t {
	case enumspb.TIMEOUT_TYPE_START_TO_CLOSE:
		return "StartToClose"
	case enumspb.TIMEOUT_TYPE_HEARTBEAT:
		return "Heartbeat"
	case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
		return "ScheduleToStart"
	case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
		return "ScheduleToClose"
	}
	return ""
}

// record counts a failure by type (unless count is false: its page was
// counted under that type already), keeps it among the recent ones and
// queues it for the failure handler. A new failure of a page (or item)
// already among the recent ones replaces it, so that one page failing
// again and again does not crowd the others out.
func (o *orchestrator) record(f Failure, count bool) {
	f.Message = truncate(f.Message, MaxMessageBytes)
	if count {
		o.countType(f.Type, 1)
	}
	o.st.Recent = slices.DeleteFunc(o.st.Recent, func(r Failure) bool { return r.Page == f.Page && r.Item == f.Item })
	o.st.Recent = append([]Failure{f}, o.st.Recent...)
	if len(o.st.Recent) > MaxRecentFailures {
		o.st.Recent = o.st.Recent[:MaxRecentFailures]
	}
	if o.failurePolicy().Handler != "" {
		if o.boundedPayloads && queueBytes(o.st.HandlerQueue, o.strBytes)+failureBytes(f, o.strBytes) > MaxHandlerQueueBytes {
			// The queue travels in the continue-as-new input: past its
			// bound the failure is counted, not kept.
			o.st.Counters.HandlerDropped++
			return
		}
		o.st.HandlerQueue = append(o.st.HandlerQueue, f)
	}
}

func (o *orchestrator) countType(t string, n int64) {
	if _, ok := o.st.ByType[t]; !ok && len(o.st.ByType) >= MaxFailureTypes {
		t = "Other"
	}
	o.st.ByType[t] += n
}

// runFailureHandler calls the failure handler with batches of new failures,
// one call at a time. It runs in every run, handler or not: the handler in
// effect is read for each batch, so that one the desired state sets or
// changes while the job runs gets the failures from then on.
func (o *orchestrator) runFailureHandler(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return len(o.st.HandlerQueue) > 0 }); err != nil {
			return
		}
		fp := o.failurePolicy()
		if fp.Handler == "" {
			// The handler was removed: what waited for it is dropped.
			o.st.Counters.HandlerDropped += int64(len(o.st.HandlerQueue))
			o.st.HandlerQueue = nil
			o.dirty = true
			continue
		}
		n := min(len(o.st.HandlerQueue), HandlerBatchSize)
		batch := slices.Clone(o.st.HandlerQueue[:n])
		o.handlerBusy = true
		err := workflow.ExecuteActivity(o.handlerContext(ctx, fp), fp.Handler, processor.FailureBatch{Job: o.in.Job, Failures: batch}).Get(ctx, nil)
		o.handlerBusy = false
		if temporal.IsCanceledError(err) {
			return // the failures stay queued and go out with the Result
		}
		o.st.HandlerQueue = o.st.HandlerQueue[n:]
		if err != nil {
			o.st.Counters.HandlerDropped += int64(n)
			o.logger.Error("Failure handler did not accept failures after its retries", "Handler", fp.Handler, "Failures", n, "Error", err)
		}
		o.dirty = true
	}
}

// handlerContext is the activity context of one delivery to the handler.
func (o *orchestrator) handlerContext(ctx workflow.Context, fp FailurePolicy) workflow.Context {
	opts := workflow.ActivityOptions{
		TaskQueue:           o.in.TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
		Summary:  "failure handler",
		Priority: o.priority(),
	}
	if o.handlerTimeout {
		// Without it a batch waits for a worker forever when none serves
		// the handler, and the job with it: it never closes.
		opts.ScheduleToCloseTimeout = fp.HandlerTimeout
		if opts.ScheduleToCloseTimeout <= 0 {
			opts.ScheduleToCloseTimeout = DefaultHandlerTimeout
		}
	}
	return workflow.WithActivityOptions(ctx, opts)
}

func (o *orchestrator) handlerIdle() bool {
	return o.failurePolicy().Handler == "" || (len(o.st.HandlerQueue) == 0 && !o.handlerBusy)
}

func (o *orchestrator) stuckCount() int {
	return len(o.st.Parked) - int(o.failedCount())
}

// unknownCount counts the failed pages whose outcome is unknown.
func (o *orchestrator) unknownCount() int64 {
	n := int64(0)
	for _, p := range o.st.Parked {
		if p.OutcomeUnknown {
			n++
		}
	}
	return n
}

func (o *orchestrator) failedCount() int64 {
	n := int64(0)
	for _, p := range o.st.Parked {
		if p.State == PageFailed {
			n++
		}
	}
	return n
}
