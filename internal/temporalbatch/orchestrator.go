package temporalbatch

import (
	"slices"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Versions of the orchestrator's logic that running workflows replay. A run
// records the version it started with; histories recorded before a version
// replay with the logic they ran (see docs/versioning.md).
const (
	// changeLookahead is the change that added lookahead, several chains
	// and frontier pages starting ahead of the queue.
	changeLookahead = "lookahead-chains"
	// versionClassic is a run that predates changeLookahead: one chain, one
	// successor per page, pages started in the order they were queued.
	versionClassic = workflow.DefaultVersion
	// versionLookahead is a run with lookahead and several chains.
	versionLookahead workflow.Version = 1

	// changeHandlerTimeout bounds each delivery to the failure handler with
	// a schedule-to-close timeout (FailurePolicy.HandlerTimeout); runs
	// before it wait for the handler as long as it takes.
	changeHandlerTimeout                   = "failure-handler-timeout"
	versionHandlerTimeout workflow.Version = 1

	// changeFailedPagesFail fails a job that reaches its end with more
	// pages failed for good than FailurePolicy.ToleratedFailedPages
	// (ReasonPagesFailed); runs before it succeed and only count them.
	changeFailedPagesFail                   = "failed-pages-fail-job"
	versionFailedPagesFail workflow.Version = 1

	// changeBoundedPayloads bounds the parked pages (MaxParkedBytes) and
	// the failure handler's queue (MaxHandlerQueueBytes) by bytes, so that
	// the continue-as-new input and the Result stay under Temporal's blob
	// limit; runs before it bound them by count only.
	changeBoundedPayloads                   = "bounded-payloads"
	versionBoundedPayloads workflow.Version = 1

	// changeUnknownOutcomes: under AtMostOnce delivery a page that may
	// have started its items and did not complete (cancelled in flight,
	// timed out, failed without processor.ErrorDetails.NothingProcessed),
	// or completed with its successors refused, fails with its outcome
	// unknown and a re-drive runs it again only when asked to
	// (RedriveRequest.IncludeUnknown). With it: re-drive IDs are
	// remembered (State.Redrives), pages carry their attempts across
	// rounds (Page.TotalAttempts), messages a processor marks sensitive are
	// withheld, and the payload bounds count JSON escapes. Runs before it
	// run every failed page again on re-drive and cancelled pages too.
	changeUnknownOutcomes                   = "unknown-outcomes"
	versionUnknownOutcomes workflow.Version = 1

	// changeBoundedWaiting bounds the cursors of the pages waiting for a
	// slot (MaxWaitingBytes): past it frontier pages are asked for one
	// successor and no new chain starts until the queue drains below it.
	// Runs before it bound the waiting pages by count only.
	changeBoundedWaiting                   = "bounded-waiting"
	versionBoundedWaiting workflow.Version = 1
)

// BatchOrchestrator runs pipelined pagination: it keeps up to the effective
// parallelism pages in flight, each a page processor activity; the frontier
// page of each chain enqueues its successors by signal before processing its
// items.
//
// It returns the final Result when every chain ended and every page finished.
// It fails with an ApplicationError whose type is the reason
// (ReasonChainBroken, ReasonPagesFailed, ...) and whose details are the
// Result, and is cancelled with the Result as details: in every case the
// Result's Next input re-drives it.
func BatchOrchestrator(ctx workflow.Context, in Input) (Result, error) {
	return runOrchestrator(ctx, in, nil)
}

func runOrchestrator(ctx workflow.Context, in Input, rep Reporter) (Result, error) {
	if err := in.Validate(); err != nil {
		return Result{}, temporal.NewNonRetryableApplicationError(err.Error(), ReasonInvalidInput, nil)
	}
	version := workflow.GetVersion(ctx, changeLookahead, versionClassic, versionLookahead)
	o := newOrchestrator(ctx, in, version)
	o.reporter = rep
	o.handlerTimeout = workflow.GetVersion(ctx, changeHandlerTimeout, workflow.DefaultVersion, versionHandlerTimeout) >= versionHandlerTimeout
	o.failedPagesFail = workflow.GetVersion(ctx, changeFailedPagesFail, workflow.DefaultVersion, versionFailedPagesFail) >= versionFailedPagesFail
	o.boundedPayloads = workflow.GetVersion(ctx, changeBoundedPayloads, workflow.DefaultVersion, versionBoundedPayloads) >= versionBoundedPayloads
	o.unknownOutcomes = workflow.GetVersion(ctx, changeUnknownOutcomes, workflow.DefaultVersion, versionUnknownOutcomes) >= versionUnknownOutcomes
	o.boundedWaiting = workflow.GetVersion(ctx, changeBoundedWaiting, workflow.DefaultVersion, versionBoundedWaiting) >= versionBoundedWaiting
	if in.Redrive != "" {
		o.redrive(RedriveRequest{ID: in.Redrive, IncludeUnknown: in.RedriveIncludeUnknown})
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) {
		return o.progress(), nil
	}); err != nil {
		return Result{}, err
	}
	// A query handler is no command: registering one more changes nothing
	// that running workflows replay.
	if err := workflow.SetQueryHandler(ctx, QueryProgressSummary, func() (Progress, error) {
		return o.summary(), nil
	}); err != nil {
		return Result{}, err
	}
	o.listen(ctx)
	return o.run(ctx)
}

type orchestrator struct {
	in      Input
	st      *State
	logger  log.Logger
	version workflow.Version
	// handlerTimeout: failure handler deliveries are bounded
	// (changeHandlerTimeout).
	handlerTimeout bool
	// failedPagesFail: a job that ends with more failed pages than
	// tolerated fails (changeFailedPagesFail).
	failedPagesFail bool
	// boundedPayloads: the parked pages and the failure handler's queue
	// are bounded by bytes (changeBoundedPayloads).
	boundedPayloads bool
	// unknownOutcomes: AtMostOnce pages whose outcome is unknown stay
	// failed on re-drive unless asked for, and the rest of
	// changeUnknownOutcomes.
	unknownOutcomes bool
	// boundedWaiting: the waiting pages' cursors are bounded by bytes
	// (changeBoundedWaiting); waitBytes is what they took when the loop
	// last started pages.
	boundedWaiting bool
	waitBytes      int
	// reporter gets the progress after each pass of the loop; nil: none.
	reporter Reporter

	now       time.Time
	effective int
	// inflight pages by number; iterate with sortedKeys for determinism.
	inflight map[int64]*flight
	// frontierOf maps each chain's frontier page number to the chain.
	frontierOf map[int64]int
	// asking is the number of in-flight frontier pages that have not
	// answered with their successors yet; asked is what they were asked for.
	asking, asked int
	// completedThisRun counts pages completed in this run, for ContinueAsNewAfterPages.
	completedThisRun int
	pageSeq          int64
	handlerBusy      bool
	// rateLimited: the last pass left pages waiting for the rate limiter.
	rateLimited bool
	// dirty wakes the main loop after a signal or a page completion.
	dirty bool
	// occupied is what the slots looked like when the loop last waited.
	occupied occupancySample
	// checkingBackoff: a draining run is asking which pages wait for a
	// retry; backoffCheckAt is when it asks again.
	checkingBackoff bool
	backoffCheckAt  time.Time

	endState   JobState
	endReason  string
	endMessage string
	endTime    *time.Time
	// endedForMaxFailed: the job ended for failurePolicy.maxFailedPages;
	// its message is written again once the pages in flight finished.
	endedForMaxFailed bool

	pagesCtx    workflow.Context
	cancelPages workflow.CancelFunc

	// alarmAt is when the one pending timer wakes the loop (zero: none).
	alarmAt     time.Time
	cancelAlarm workflow.CancelFunc
}

// flight is a page in flight and what it was asked to enqueue.
type flight struct {
	Page
	// lookahead is the successors the page was asked for; it drops to 0
	// once they arrived.
	lookahead  int
	activityID string
	cancel     workflow.CancelFunc
}

func newOrchestrator(ctx workflow.Context, in Input, version workflow.Version) *orchestrator {
	now := workflow.Now(ctx)
	st := in.State
	if st == nil {
		st = &State{StartTime: now, Applied: in.Desired, RampStart: now}
	}
	st.Runs++
	if st.ByType == nil {
		st.ByType = map[string]int64{}
	}
	in.State = nil
	o := &orchestrator{
		in:         in,
		st:         st,
		logger:     workflow.GetLogger(ctx),
		version:    version,
		now:        now,
		inflight:   map[int64]*flight{},
		frontierOf: map[int64]int{},
	}
	o.initChains()
	o.pagesCtx, o.cancelPages = workflow.WithCancel(ctx)
	return o
}

func (o *orchestrator) run(ctx workflow.Context) (Result, error) {
	draining := false
	for {
		o.now = workflow.Now(ctx)
		o.observeOccupancy()
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
			if len(o.inflight) > 0 {
				o.releaseBackoff(ctx)
			}
		} else {
			wake = earliest(wake, o.startPages(ctx))
		}

		o.setAlarm(ctx, wake)
		o.occupied = o.sampleOccupancy()
		o.report(ctx)
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

	if o.stuckCount() > 0 && o.waiting() == 0 && len(o.inflight) == 0 {
		if o.st.StuckRetryAt == nil {
			at := o.now.Add(o.retry().StuckPageRetryInterval)
			o.st.StuckRetryAt = &at
		}
		if !o.now.Before(*o.st.StuckRetryAt) {
			o.st.StuckRetryAt = nil
			o.requeueParked(PageStuck, false)
		} else {
			wake = earliest(wake, *o.st.StuckRetryAt)
		}
	}
	return wake
}

// settle ends the job once every chain ended or broke and nothing is left.
func (o *orchestrator) settle() {
	if o.waiting() > 0 || len(o.inflight) > 0 || o.stuckCount() > 0 {
		return
	}
	var broken []int
	for i, c := range o.st.Chains {
		switch {
		case c.Broken:
			broken = append(broken, i)
		case !c.Ended:
			return // its frontier is about to be queued again
		}
	}
	if len(broken) > 0 {
		o.end(StateFailed, ReasonChainBroken, o.brokenMessage(broken))
		return
	}
	// Like a batch/v1 Job with a failed index: items were left unprocessed,
	// so the job did not succeed unless the failure policy tolerates it.
	if failed := o.failedCount(); o.failedPagesFail && failed > o.failurePolicy().ToleratedFailedPages {
		o.end(StateFailed, ReasonPagesFailed, o.pagesFailedMessage(failed))
		return
	}
	o.checkMaxFailedItems(true)
	o.end(StateSucceeded, ReasonCompleted, o.completedMessage())
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
	// The end state is known, the run has not closed: what is left (pages
	// cancelled, failures for the handler) shows while it waits.
	o.report(ctx)
	done := func() bool { return len(o.inflight) == 0 && o.handlerIdle() }
	for !done() {
		o.dirty = false
		if err := workflow.Await(ctx, func() bool { return o.dirty || done() }); err != nil {
			return o.cancelled(ctx)
		}
		o.report(ctx)
	}
	now := workflow.Now(ctx)
	o.now, o.endTime = now, &now
	if o.endedForMaxFailed {
		o.endMessage = o.maxFailedMessage()
	}
	res := o.result()
	o.report(ctx)
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
	res := o.result()
	return Result{}, temporal.NewCanceledError(res)
}

func (o *orchestrator) continueAsNewDue(ctx workflow.Context) bool {
	if n := o.in.ContinueAsNewAfterPages; n > 0 && o.completedThisRun >= n {
		return true
	}
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// result is the final progress and the input a re-drive starts from. The
// failed pages it lists leave out their cursors: Next.State.Parked carries
// them, and a Result that carried every cursor twice could outgrow
// Temporal's blob limit. (The replayer compares only the type of the
// closing command, not its payload, so this needs no version.)
func (o *orchestrator) result() Result {
	p := o.progress()
	for i := range p.FailedPages {
		p.FailedPages[i].Cursor = ""
	}
	return Result{Progress: p, Next: o.nextInput()}
}

// nextInput is this run's input with its state: what continue-as-new and a
// re-drive of a closed job start from.
func (o *orchestrator) nextInput() Input {
	next := o.in
	next.Redrive, next.RedriveIncludeUnknown = "", false
	st := *o.st
	st.Pending = append([]Page(nil), o.st.Pending...)
	st.Frontiers = append([]Page(nil), o.st.Frontiers...)
	// In-flight pages only exist here when the job ended or was cancelled.
	for _, n := range sortedKeys(o.inflight) {
		p := o.inflight[n].Page
		if _, ok := o.frontierOf[p.Number]; ok && o.version >= versionLookahead {
			st.Frontiers = append(st.Frontiers, p)
		} else {
			st.Pending = append(st.Pending, p)
		}
	}
	next.State = &st
	return next
}

// retry is the retry policy in effect: the desired state's, once one
// carried it, else the input's.
func (o *orchestrator) retry() RetryPolicy {
	if r := o.st.Applied.Retry; r != nil {
		return *r
	}
	return o.in.Retry
}

// priority is the priority in effect, as retry is.
func (o *orchestrator) priority() temporal.Priority {
	p := o.in.Priority
	if d := o.st.Applied.Priority; d != nil {
		p = *d
	}
	return temporal.Priority{PriorityKey: p.Key, FairnessKey: p.FairnessKey, FairnessWeight: float32(p.FairnessWeight)}
}

// failurePolicy is the failure policy in effect, as retry is.
func (o *orchestrator) failurePolicy() FailurePolicy {
	if fp := o.st.Applied.FailurePolicy; fp != nil {
		return *fp
	}
	return o.in.FailurePolicy
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
