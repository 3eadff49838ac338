package temporalbatch

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// BatchOrchestrator runs pipelined pagination: it keeps up to the effective
// parallelism pages in flight, each a page processor activity that enqueues
// its successor by signal before processing its items.
//
// It returns the final Result when the chain ended and every page finished. It
// fails with an ApplicationError whose type is the reason (ReasonChainBroken,
// ReasonPagesFailed, ...) and whose details are the Result, and is cancelled
// with the Result as details: in every case the Result's Next input re-drives it.
func BatchOrchestrator(ctx workflow.Context, in Input) (Result, error) {
	if err := in.Validate(); err != nil {
		return Result{}, temporal.NewNonRetryableApplicationError(err.Error(), ReasonInvalidInput, nil)
	}
	o := newOrchestrator(ctx, in)
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) {
		return o.progress(), nil
	}); err != nil {
		return Result{}, err
	}
	o.listen(ctx)
	return o.run(ctx)
}

type orchestrator struct {
	in     Input
	st     *State
	logger log.Logger

	now       time.Time
	effective int
	// inflight pages by number; iterate with sortedInflight for determinism.
	inflight map[int64]Page
	// startedThisRun counts pages completed in this run, for ContinueAsNewAfterPages.
	completedThisRun int
	pageSeq          int64
	handlerBusy      bool
	// dirty wakes the main loop after a signal or a page completion.
	dirty bool

	endState   JobState
	endReason  string
	endMessage string
	endTime    *time.Time

	pagesCtx    workflow.Context
	cancelPages workflow.CancelFunc

	// alarmAt is when the one pending timer wakes the loop (zero: none).
	alarmAt     time.Time
	cancelAlarm workflow.CancelFunc
}

func newOrchestrator(ctx workflow.Context, in Input) *orchestrator {
	now := workflow.Now(ctx)
	st := in.State
	if st == nil {
		st = &State{
			StartTime:      now,
			Applied:        in.Desired,
			RampStart:      now,
			Frontier:       0,
			FrontierCursor: in.Processor.FirstCursor,
			Pending:        []Page{{Number: 0, Cursor: in.Processor.FirstCursor}},
		}
	}
	st.Runs++
	if st.ByType == nil {
		st.ByType = map[string]int64{}
	}
	in.State = nil
	o := &orchestrator{
		in:       in,
		st:       st,
		logger:   workflow.GetLogger(ctx),
		now:      now,
		inflight: map[int64]Page{},
	}
	o.pagesCtx, o.cancelPages = workflow.WithCancel(ctx)
	if in.Redrive != "" {
		o.redrive(RedriveRequest{ID: in.Redrive})
	}
	return o
}

type signalHandler struct {
	name   string
	handle func(json.RawMessage)
}

// signalHandlers are the orchestrator's signals. Bodies arrive as raw JSON
// so that a malformed one is counted rather than dropped by the SDK.
func (o *orchestrator) signalHandlers() []signalHandler {
	return []signalHandler{
		{SignalEnqueuePage, o.onEnqueueSignal},
		{SignalDesiredState, o.onDesiredSignal},
		{SignalRedrive, o.onRedriveSignal},
	}
}

// listen starts a coroutine per signal and one for the failure handler.
func (o *orchestrator) listen(ctx workflow.Context) {
	for _, h := range o.signalHandlers() {
		workflow.Go(ctx, func(ctx workflow.Context) {
			ch := workflow.GetSignalChannel(ctx, h.name)
			for {
				var raw json.RawMessage
				ch.Receive(ctx, &raw)
				o.now = workflow.Now(ctx)
				h.handle(raw)
			}
		})
	}
	if o.in.FailurePolicy.Handler != "" {
		workflow.Go(ctx, o.runFailureHandler)
	}
}

// drainSignals handles signals already delivered but not yet received, so
// that none is lost when the run continues as new.
func (o *orchestrator) drainSignals(ctx workflow.Context) {
	for _, h := range o.signalHandlers() {
		ch := workflow.GetSignalChannel(ctx, h.name)
		for {
			var raw json.RawMessage
			if !ch.ReceiveAsync(&raw) {
				break
			}
			h.handle(raw)
		}
	}
}

func (o *orchestrator) run(ctx workflow.Context) (Result, error) {
	draining := false
	for {
		o.now = workflow.Now(ctx)
		wake := o.pace()
		if o.endState == "" {
			o.settle()
		}
		if o.endState != "" {
			return o.finish(ctx)
		}
		if !draining && o.continueAsNewDue(ctx) {
			draining = true
			o.logger.Info("Draining in-flight pages to continue as new", "Runs", o.st.Runs)
		}
		if draining {
			if len(o.inflight) == 0 && o.handlerIdle() {
				o.drainSignals(ctx)
				if o.endState == "" {
					return Result{}, workflow.NewContinueAsNewError(ctx, WorkflowType, o.nextInput())
				}
				continue
			}
		} else {
			wake = earliest(wake, o.startPages(ctx))
		}

		o.setAlarm(ctx, wake)
		o.dirty = false
		if err := workflow.Await(ctx, func() bool { return o.dirty }); err != nil {
			return o.cancelled(ctx)
		}
	}
}

// setAlarm makes sure the loop wakes at the given time. A timer that fires
// earlier already covers it (the loop re-evaluates when it fires), so pacing
// costs one timer per wake-up rather than one per pass of the loop.
func (o *orchestrator) setAlarm(ctx workflow.Context, at time.Time) {
	if at.IsZero() || (!o.alarmAt.IsZero() && !at.Before(o.alarmAt)) {
		return
	}
	if o.cancelAlarm != nil {
		o.cancelAlarm()
	}
	tctx, cancel := workflow.WithCancel(ctx)
	o.alarmAt, o.cancelAlarm = at, cancel
	timer := workflow.NewTimer(tctx, max(at.Sub(o.now), time.Millisecond))
	workflow.Go(ctx, func(ctx workflow.Context) {
		if err := timer.Get(ctx, nil); err != nil {
			return // replaced by an earlier alarm
		}
		if o.alarmAt.Equal(at) {
			o.alarmAt, o.cancelAlarm = time.Time{}, nil
		}
		o.dirty = true
	})
}

// pace updates the effective parallelism, promotes stuck pages whose retry
// time came, and returns the next time the loop must wake by itself.
func (o *orchestrator) pace() time.Time {
	eff, rampNext := effectiveParallelism(o.st.Applied, o.st.RampStart, o.now)
	o.effective = eff
	wake := rampNext

	drained := len(o.st.Pending) == 0 && len(o.inflight) == 0
	if o.stuckCount() > 0 && drained {
		if o.st.StuckRetryAt == nil {
			at := o.now.Add(o.in.Retry.StuckPageRetryInterval)
			o.st.StuckRetryAt = &at
		}
		if !o.now.Before(*o.st.StuckRetryAt) {
			o.st.StuckRetryAt = nil
			o.requeueParked(PageStuck)
		} else {
			wake = earliest(wake, *o.st.StuckRetryAt)
		}
	}
	return wake
}

// startPages starts pending pages while slots and rate allow. It returns when
// the rate limiter next has a token, if it is what holds pages back.
func (o *orchestrator) startPages(ctx workflow.Context) time.Time {
	if len(o.st.HandlerQueue) >= HandlerQueueLimit {
		return time.Time{} // the handler's progress wakes the loop
	}
	rl := o.st.Applied.RateLimit
	bucket := tokenBucket{tokens: &o.st.Tokens, at: &o.st.TokensAt}
	for len(o.st.Pending) > 0 && len(o.inflight) < o.effective {
		if rl != nil && rl.PagesPerSecond > 0 {
			bucket.refill(rl.PagesPerSecond, o.now)
			if !bucket.take() {
				return o.now.Add(bucket.wait(rl.PagesPerSecond))
			}
		}
		p := o.st.Pending[0]
		o.st.Pending = o.st.Pending[1:]
		o.startPage(ctx, p)
	}
	return time.Time{}
}

func (o *orchestrator) startPage(ctx workflow.Context, p Page) {
	o.inflight[p.Number] = p
	o.st.Counters.MaxAchieved = max(o.st.Counters.MaxAchieved, len(o.inflight))
	o.pageSeq++
	actx := workflow.WithActivityOptions(o.pagesCtx, o.activityOptions(p))
	input := processor.PageInput{
		Job:  o.in.Job,
		Page: processor.PageRef{Number: p.Number, Cursor: p.Cursor, Size: o.in.Processor.PageSize},
		Args: o.in.Processor.Args,
	}
	future := workflow.ExecuteActivity(actx, o.in.Processor.Name, input)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res processor.PageResult
		err := future.Get(ctx, &res)
		o.now = workflow.Now(ctx)
		o.onPageDone(p, res, err)
	})
}

func (o *orchestrator) activityOptions(p Page) workflow.ActivityOptions {
	ps, rp := o.in.Processor, o.in.Retry
	policy := &temporal.RetryPolicy{MaximumAttempts: 1}
	if ps.Delivery != AtMostOnce {
		policy = &temporal.RetryPolicy{
			InitialInterval:        rp.InitialInterval,
			BackoffCoefficient:     rp.BackoffCoefficient,
			MaximumInterval:        rp.MaximumInterval,
			MaximumAttempts:        rp.MaximumAttempts,
			NonRetryableErrorTypes: rp.NonRetryableErrorTypes,
		}
	}
	return workflow.ActivityOptions{
		TaskQueue:           o.in.TaskQueue,
		ActivityID:          fmt.Sprintf("page-%d-%d", p.Number, o.pageSeq),
		StartToCloseTimeout: ps.Timeout,
		HeartbeatTimeout:    ps.HeartbeatTimeout,
		RetryPolicy:         policy,
		Summary:             fmt.Sprintf("page %d", p.Number),
	}
}

// onEnqueueSignal accepts the frontier's successor and counts everything else.
func (o *orchestrator) onEnqueueSignal(raw json.RawMessage) {
	var sig processor.EnqueuePage
	if err := strictUnmarshal(raw, &sig); err != nil || sig.Number < 1 || len(sig.Cursor) > MaxCursorBytes {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring malformed EnqueuePage signal", "Body", truncate(string(raw), MaxMessageBytes), "Error", err)
		return
	}
	o.enqueue(sig.Number, sig.Cursor, "signal")
}

func (o *orchestrator) enqueue(number int64, cursor, source string) {
	switch {
	case number <= o.st.Frontier:
		o.st.Counters.DuplicateSignals++
		o.logger.Debug("Ignoring duplicate EnqueuePage", "Page", number, "Source", source)
	case number > o.st.Frontier+1 || o.st.ChainEnded:
		o.st.Counters.UnexpectedSignals++
		o.logger.Warn("Ignoring EnqueuePage for a page not next in the chain", "Page", number, "Frontier", o.st.Frontier, "ChainEnded", o.st.ChainEnded, "Source", source)
	default:
		// A successor arriving after its page failed mends the chain.
		o.st.ChainBroken = false
		o.st.Frontier, o.st.FrontierCursor = number, cursor
		o.st.Pending = append(o.st.Pending, Page{Number: number, Cursor: cursor})
		o.dirty = true
	}
}

func (o *orchestrator) onDesiredSignal(raw json.RawMessage) {
	var d DesiredState
	if err := strictUnmarshal(raw, &d); err != nil {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring malformed desired state", "Body", truncate(string(raw), MaxMessageBytes), "Error", err)
		return
	}
	if err := d.Validate(); err != nil {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring invalid desired state", "Error", err)
		return
	}
	o.applyDesired(d)
}

func (o *orchestrator) applyDesired(d DesiredState) {
	cur := o.st.Applied
	if d.Generation < cur.Generation {
		o.logger.Info("Ignoring stale desired state", "Generation", d.Generation, "Applied", cur.Generation)
		return
	}
	// The ramp starts over when it changes and on resume, so a resumed job
	// does not hit downstream systems at full parallelism at once.
	if !equalRampUp(d.RampUp, cur.RampUp) || (cur.Suspend && !d.Suspend) {
		o.st.RampStart = o.now
	}
	if d.Generation != cur.Generation || d.Parallelism != cur.Parallelism || d.Suspend != cur.Suspend {
		o.logger.Info("Applied desired state", "Generation", d.Generation, "Parallelism", d.Parallelism, "Suspend", d.Suspend)
	}
	o.st.Applied = d
	o.dirty = true
}

func (o *orchestrator) onRedriveSignal(raw json.RawMessage) {
	var r RedriveRequest
	if err := strictUnmarshal(raw, &r); err != nil || r.ID == "" {
		o.st.Counters.MalformedSignals++
		o.logger.Warn("Ignoring malformed re-drive request", "Body", truncate(string(raw), MaxMessageBytes), "Error", err)
		return
	}
	o.redrive(r)
}

// redrive re-queues failed and stuck pages, and a broken chain's frontier,
// with a fresh retry budget. Each request ID acts once.
func (o *orchestrator) redrive(r RedriveRequest) {
	if r.ID == o.st.LastRedrive {
		return
	}
	o.st.LastRedrive = r.ID
	n := len(o.st.Parked)
	o.requeueParked("")
	o.st.ChainBroken = false
	o.st.StuckRetryAt = nil
	o.logger.Info("Re-drive", "ID", r.ID, "Pages", n)
	o.dirty = true
}

// requeueParked moves parked pages in the given state ("" = all) to the
// front of the queue, oldest page first.
func (o *orchestrator) requeueParked(state PageState) {
	var keep []ParkedPage
	var again []Page
	for _, p := range o.st.Parked {
		if state == "" || p.State == state {
			again = append(again, p.Page)
		} else {
			keep = append(keep, p)
		}
	}
	o.st.Parked = keep
	o.st.Pending = append(again, o.st.Pending...)
	o.dirty = true
}

func (o *orchestrator) onPageDone(p Page, res processor.PageResult, err error) {
	delete(o.inflight, p.Number)
	o.dirty = true
	now := o.now
	switch {
	case err == nil:
		o.pageCompleted(p, res, now)
	case temporal.IsCanceledError(err):
		// Cancelled by the orchestrator: the page runs again on re-drive,
		// in page order, before the pages enqueued after it.
		i := slices.IndexFunc(o.st.Pending, func(q Page) bool { return q.Number > p.Number })
		if i < 0 {
			i = len(o.st.Pending)
		}
		o.st.Pending = slices.Insert(o.st.Pending, i, p)
	default:
		o.pageFailed(p, err, now)
	}
}

func (o *orchestrator) pageCompleted(p Page, res processor.PageResult, now time.Time) {
	c := &o.st.Counters
	c.PagesCompleted++
	o.completedThisRun++
	c.ItemsProcessed += max(res.ItemsProcessed, 0)
	// A processor that lists failures but leaves out the count still has them counted.
	itemsFailed := max(res.ItemsFailed, int64(len(res.FailedItems)), 0)
	c.ItemsFailed += itemsFailed
	listed := int64(0)
	for _, fi := range res.FailedItems {
		listed++
		o.record(Failure{Page: p.Number, Cursor: p.Cursor, Item: fi.Item, Type: orDefault(fi.Type, "ItemFailed"), Message: fi.Message, Time: now})
	}
	if rest := itemsFailed - listed; rest > 0 {
		// Failures beyond the truncated list carry no type.
		o.countType("Unlisted", rest)
	}
	o.st.Rate = addRateSample(o.st.Rate, now, c.ItemsProcessed)

	if p.Number == o.st.Frontier {
		if res.NextCursor != "" {
			o.enqueue(p.Number+1, res.NextCursor, "nextCursor")
		} else {
			o.st.ChainEnded = true
		}
	}
}

func (o *orchestrator) pageFailed(p Page, err error, now time.Time) {
	errType, msg, forGood := o.classify(err)
	state := PageStuck
	if forGood {
		state = PageFailed
	}
	o.st.Parked = append(o.st.Parked, ParkedPage{Page: p, State: state, ErrorType: errType, Message: truncate(msg, MaxMessageBytes), Time: now})
	slices.SortFunc(o.st.Parked, func(a, b ParkedPage) int { return cmp.Compare(a.Number, b.Number) })
	o.record(Failure{Page: p.Number, Cursor: p.Cursor, Type: errType, Message: msg, Time: now})
	o.logger.Warn("Page failed", "Page", p.Number, "State", state, "Type", errType, "Error", msg)

	if forGood && p.Number == o.st.Frontier && !o.st.ChainEnded {
		o.st.ChainBroken = true
	}
	failed := o.failedCount()
	if max := o.in.FailurePolicy.MaxFailedPages; max != nil && failed > *max {
		o.end(StateFailed, ReasonPagesFailed, fmt.Sprintf("%d pages failed for good, more than failurePolicy.maxFailedPages (%d); fix the cause and re-drive", failed, *max))
	}
	if len(o.st.Parked) > MaxTrackedPages {
		o.end(StateFailed, ReasonTooManyFailedPages, fmt.Sprintf("%d pages failed or are stuck, more than the %d the orchestrator tracks for re-drive; fix the cause and re-drive", len(o.st.Parked), MaxTrackedPages))
	}
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

// record counts a failure by type, keeps it among the recent ones and queues
// it for the failure handler.
func (o *orchestrator) record(f Failure) {
	f.Message = truncate(f.Message, MaxMessageBytes)
	o.countType(f.Type, 1)
	o.st.Recent = append([]Failure{f}, o.st.Recent...)
	if len(o.st.Recent) > MaxRecentFailures {
		o.st.Recent = o.st.Recent[:MaxRecentFailures]
	}
	if o.in.FailurePolicy.Handler != "" {
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
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           o.in.TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
		Summary: "failure handler",
	})
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

// settle ends the job once the chain ended or broke and nothing is left.
func (o *orchestrator) settle() {
	if len(o.st.Pending) > 0 || len(o.inflight) > 0 || o.stuckCount() > 0 {
		return
	}
	switch {
	case o.st.ChainBroken:
		o.end(StateFailed, ReasonChainBroken, fmt.Sprintf("page %d (cursor %q) failed for good before enqueuing the next page, so the job stopped there; fix the cause and re-drive", o.st.Frontier, o.st.FrontierCursor))
	case o.st.ChainEnded:
		o.end(StateSucceeded, ReasonCompleted, fmt.Sprintf("%d pages, %d items processed, %d items failed, %d pages failed", o.st.Counters.PagesCompleted, o.st.Counters.ItemsProcessed, o.st.Counters.ItemsFailed, o.failedCount()))
	}
}

func (o *orchestrator) end(state JobState, reason, msg string) {
	if o.endState != "" {
		return
	}
	o.endState, o.endReason, o.endMessage = state, reason, msg
	o.dirty = true
}

// finish cancels what still runs, lets the failure handler catch up, and
// returns the Result (or the failure carrying it).
func (o *orchestrator) finish(ctx workflow.Context) (Result, error) {
	o.cancelPages()
	if err := workflow.Await(ctx, func() bool { return len(o.inflight) == 0 && o.handlerIdle() }); err != nil {
		return o.cancelled(ctx)
	}
	now := workflow.Now(ctx)
	o.now, o.endTime = now, &now
	res := Result{Progress: o.progress(), Next: o.nextInput()}
	o.logger.Info("Batch job finished", "State", o.endState, "Reason", o.endReason, "Message", o.endMessage)
	if o.endState == StateSucceeded {
		return res, nil
	}
	return Result{}, temporal.NewNonRetryableApplicationError(o.endMessage, o.endReason, nil, res)
}

// cancelled stops new pages, cancels in-flight ones and returns the final
// progress as the cancellation's details.
func (o *orchestrator) cancelled(ctx workflow.Context) (Result, error) {
	o.cancelPages()
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return len(o.inflight) == 0 })
	now := workflow.Now(dctx)
	o.now, o.endTime = now, &now
	o.endState, o.endReason, o.endMessage = StateCancelled, ReasonCancelled, "the workflow was cancelled"
	res := Result{Progress: o.progress(), Next: o.nextInput()}
	return Result{}, temporal.NewCanceledError(res)
}

func (o *orchestrator) continueAsNewDue(ctx workflow.Context) bool {
	if n := o.in.ContinueAsNewAfterPages; n > 0 && o.completedThisRun >= n {
		return true
	}
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// nextInput is this run's input with its state: what continue-as-new and a
// re-drive of a closed job start from.
func (o *orchestrator) nextInput() Input {
	next := o.in
	next.Redrive = ""
	st := *o.st
	// In-flight pages only exist here when the job ended or was cancelled.
	for _, n := range sortedKeys(o.inflight) {
		st.Pending = append(st.Pending, o.inflight[n])
	}
	next.State = &st
	return next
}

func (o *orchestrator) progress() Progress {
	st := o.st
	state := o.endState
	if state == "" {
		state = StateRunning
		if st.Applied.Suspend {
			state = StateSuspended
		}
	}
	var failed []ParkedPage
	for _, p := range st.Parked {
		if p.State == PageFailed {
			failed = append(failed, p)
		}
	}
	return Progress{
		State:      state,
		Reason:     o.endReason,
		Message:    o.endMessage,
		Generation: st.Applied.Generation,
		Parallelism: ParallelismStatus{
			Desired:     st.Applied.Parallelism,
			Effective:   o.effective,
			MaxAchieved: st.Counters.MaxAchieved,
		},
		Pages: PageCounts{
			Completed: st.Counters.PagesCompleted,
			InFlight:  int64(len(o.inflight)),
			Pending:   int64(len(st.Pending)),
			Stuck:     int64(o.stuckCount()),
			Failed:    int64(len(failed)),
		},
		Items:            ItemCounts{Processed: st.Counters.ItemsProcessed, Failed: st.Counters.ItemsFailed},
		ItemsPerSecond:   itemsPerSecond(st.Rate, st.StartTime, st.Counters.ItemsProcessed, o.now),
		ByType:           st.ByType,
		Recent:           st.Recent,
		FailedPages:      failed,
		Frontier:         Page{Number: st.Frontier, Cursor: st.FrontierCursor},
		StartTime:        st.StartTime,
		CompletionTime:   o.endTime,
		LastProgressTime: lastSampleTime(st.Rate),
		Runs:             st.Runs,
		LastRedrive:      st.LastRedrive,
		Counters:         st.Counters,
	}
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

func lastSampleTime(samples []RateSample) time.Time {
	if len(samples) == 0 {
		return time.Time{}
	}
	return samples[len(samples)-1].Time
}

// sortedKeys returns a map's keys in order: the one way the workflow visits a map.
//
//workflowcheck:ignore
func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

func equalRampUp(a, b *RampUp) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// strictUnmarshal decodes a signal body, rejecting unknown fields so that a
// message meant for another signal is not half-applied.
func strictUnmarshal(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v) //workflowcheck:ignore decoding JSON is deterministic
}
