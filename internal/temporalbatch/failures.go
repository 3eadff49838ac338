package temporalbatch

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// ErrorTypeEnqueueRefused is the error type of a frontier page that completed
// after the orchestrator refused its EnqueuePage signal: its chain is broken
// there rather than ended, and a re-drive runs the page again.
const ErrorTypeEnqueueRefused = "EnqueueRefused"

func (o *orchestrator) pageFailed(p Page, err error, now time.Time) {
	errType, msg, forGood := o.classify(err)
	state := PageStuck
	if forGood {
		state = PageFailed
	}
	o.park(p, state, errType, msg, now)
	if c, ok := o.chainOf(p.Number); ok && forGood && !c.Ended {
		c.Broken = true
	}
}

// park keeps a page that failed for good or is stuck, with its cursor, for
// a later retry or re-drive, records the failure and ends the job when the
// failure policy says so.
func (o *orchestrator) park(p Page, state PageState, errType, msg string, now time.Time) {
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
	o.st.Parked = append(o.st.Parked, ParkedPage{Page: p, State: state, ErrorType: errType, Message: truncate(msg, MaxMessageBytes), Time: now})
	slices.SortFunc(o.st.Parked, func(a, b ParkedPage) int { return cmp.Compare(a.Number, b.Number) })
	o.record(Failure{Page: p.Number, Cursor: p.Cursor, Type: errType, Message: msg, Time: now}, !counted)
	o.logger.Warn("Page failed", "Page", p.Number, "State", state, "Type", errType, "Error", msg)

	failed := o.failedCount()
	if max := o.in.FailurePolicy.MaxFailedPages; max != nil && failed > *max {
		o.end(StateFailed, ReasonPagesFailed, fmt.Sprintf("%d pages failed for good, more than failurePolicy.maxFailedPages (%d); fix the cause and re-drive", failed, *max))
	}
	if len(o.st.Parked) > MaxTrackedPages {
		o.end(StateFailed, ReasonTooManyFailedPages, fmt.Sprintf("%d pages failed or are stuck, more than the %d the orchestrator tracks for re-drive; fix the cause and re-drive", len(o.st.Parked), MaxTrackedPages))
	}
	if b := parkedBytes(o.st.Parked); o.boundedPayloads && b > MaxParkedBytes {
		o.end(StateFailed, ReasonTooManyFailedPages, fmt.Sprintf("%d pages failed or are stuck, their cursors and messages %d bytes, more than the %d bytes the orchestrator tracks for re-drive; fix the cause and re-drive", len(o.st.Parked), b, MaxParkedBytes))
	}
}

// failureOverhead is about what a parked page or a failure takes in JSON
// besides its strings.
const failureOverhead = 128

// parkedBytes is about the size of the parked pages in JSON, for
// MaxParkedBytes.
func parkedBytes(parked []ParkedPage) int {
	n := 0
	for _, p := range parked {
		n += len(p.Cursor) + len(p.Message) + len(p.ErrorType) + failureOverhead
	}
	return n
}

// failureBytes is about the size of a failure in JSON, for
// MaxHandlerQueueBytes.
func failureBytes(f Failure) int {
	return len(f.Cursor) + len(f.Item) + len(f.Type) + len(f.Message) + failureOverhead
}

func queueBytes(q []Failure) int {
	n := 0
	for _, f := range q {
		n += failureBytes(f)
	}
	return n
}

// handlerFull: new page starts wait for the failure handler to catch up.
func (o *orchestrator) handlerFull() bool {
	return len(o.st.HandlerQueue) >= HandlerQueueLimit ||
		(o.boundedPayloads && queueBytes(o.st.HandlerQueue) >= MaxHandlerQueueBytes)
}

// classify returns a page failure's error type and message, and whether the
// page failed for good (rather than being stuck after its retries).
func (o *orchestrator) classify(err error) (errType, msg string, forGood bool) {
	errType, msg = "ActivityError", err.Error()
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
	case errors.As(cause, &toErr):
		errType, msg = "Timeout"+timeoutName(toErr.TimeoutType()), toErr.Error()
	}
	if actErr != nil && actErr.RetryState() == enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE {
		nonRetryable = true
	}
	if slices.Contains(o.in.Retry.NonRetryableErrorTypes, errType) {
		nonRetryable = true
	}
	forGood = nonRetryable || o.in.Processor.Delivery == AtMostOnce || o.in.Retry.StuckPageRetryInterval <= 0
	return errType, msg, forGood
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
	if o.in.FailurePolicy.Handler != "" {
		if o.boundedPayloads && queueBytes(o.st.HandlerQueue)+failureBytes(f) > MaxHandlerQueueBytes {
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
// one call at a time.
func (o *orchestrator) runFailureHandler(ctx workflow.Context) {
	opts := workflow.ActivityOptions{
		TaskQueue:           o.in.TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
		Summary: "failure handler",
	}
	if o.handlerTimeout {
		// Without it a batch waits for a worker forever when none serves
		// the handler, and the job with it: it never closes.
		opts.ScheduleToCloseTimeout = o.in.FailurePolicy.HandlerTimeout
		if opts.ScheduleToCloseTimeout <= 0 {
			opts.ScheduleToCloseTimeout = DefaultHandlerTimeout
		}
	}
	actx := workflow.WithActivityOptions(ctx, opts)
	for {
		if err := workflow.Await(ctx, func() bool { return len(o.st.HandlerQueue) > 0 }); err != nil {
			return
		}
		n := min(len(o.st.HandlerQueue), HandlerBatchSize)
		batch := slices.Clone(o.st.HandlerQueue[:n])
		o.handlerBusy = true
		err := workflow.ExecuteActivity(actx, o.in.FailurePolicy.Handler, processor.FailureBatch{Job: o.in.Job, Failures: batch}).Get(ctx, nil)
		o.handlerBusy = false
		if temporal.IsCanceledError(err) {
			return // the failures stay queued and go out with the Result
		}
		o.st.HandlerQueue = o.st.HandlerQueue[n:]
		if err != nil {
			o.st.Counters.HandlerDropped += int64(n)
			o.logger.Error("Failure handler did not accept failures after its retries", "Handler", o.in.FailurePolicy.Handler, "Failures", n, "Error", err)
		}
		o.dirty = true
	}
}

func (o *orchestrator) handlerIdle() bool {
	return o.in.FailurePolicy.Handler == "" || (len(o.st.HandlerQueue) == 0 && !o.handlerBusy)
}

func (o *orchestrator) stuckCount() int {
	return len(o.st.Parked) - int(o.failedCount())
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
