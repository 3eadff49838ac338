package temporalbatch

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// waiting counts the pages waiting for a slot, the first pages of chains not
// started yet included.
func (o *orchestrator) waiting() int {
	return len(o.st.Pending) + len(o.st.Frontiers) + len(o.st.Chains) - o.st.ChainsStarted
}

// startPages starts waiting pages while slots and rate allow, all in the
// same workflow task. It returns when the rate limiter next has a token, if
// it is what holds pages back.
func (o *orchestrator) startPages(ctx workflow.Context) time.Time {
	o.rateLimited = false
	if o.handlerFull() {
		return time.Time{} // the handler's progress wakes the loop
	}
	rl := o.st.Applied.RateLimit
	bucket := tokenBucket{tokens: &o.st.Tokens, at: &o.st.TokensAt}
	if o.boundedWaiting {
		o.waitBytes = waitingBytes(o.st.Pending) + waitingBytes(o.st.Frontiers)
	}
	for o.waiting() > 0 && len(o.inflight) < o.effective {
		if rl != nil && rl.PagesPerSecond > 0 {
			bucket.refill(rl.PagesPerSecond, o.now)
			if !bucket.take() {
				o.rateLimited = true
				return o.now.Add(bucket.wait(rl.PagesPerSecond))
			}
		}
		o.startPage(ctx, o.takeNext())
	}
	return time.Time{}
}

// takeNext takes the page to start next. A classic run takes the oldest.
// Otherwise frontier pages go first while they hold less than half the
// slots, and chains not started yet start while fewer chains than slots are
// under way; then the oldest waiting page.
func (o *orchestrator) takeNext() Page {
	pop := func(list *[]Page) (Page, bool) {
		if len(*list) == 0 {
			return Page{}, false
		}
		p := (*list)[0]
		*list = (*list)[1:]
		return p, true
	}
	if o.version < versionLookahead {
		if p, ok := pop(&o.st.Pending); ok {
			return p
		}
		return o.startChain()
	}
	unstarted := o.st.ChainsStarted < len(o.st.Chains)
	underWay := len(o.st.Frontiers) + o.asking
	if o.asking < o.effective/2 || len(o.st.Pending) == 0 {
		if p, ok := pop(&o.st.Frontiers); ok {
			return p
		}
		if unstarted && underWay < o.effective && !o.waitingFull() {
			return o.startChain()
		}
	}
	if p, ok := pop(&o.st.Pending); ok {
		return p
	}
	if p, ok := pop(&o.st.Frontiers); ok {
		return p
	}
	return o.startChain()
}

// waitingFull: the waiting pages' cursors take MaxWaitingBytes or more, so
// that no chain starts and frontiers are asked for one successor until the
// queue drains.
func (o *orchestrator) waitingFull() bool {
	return o.boundedWaiting && o.waitBytes >= MaxWaitingBytes
}

// waitingBytes is the cursors' bytes of waiting pages, as written (a JSON
// escape can take up to six times that: MaxWaitingBytes leaves room for it).
func waitingBytes(pages []Page) int {
	n := 0
	for _, p := range pages {
		n += len(p.Cursor)
	}
	return n
}

func (o *orchestrator) startPage(ctx workflow.Context, p Page) {
	f := &flight{Page: p, lookahead: o.askFor(p)}
	if f.lookahead > 0 {
		o.asking++
		o.asked += f.lookahead
	}
	o.inflight[p.Number] = f
	o.st.Counters.MaxAchieved = max(o.st.Counters.MaxAchieved, len(o.inflight))
	o.pageSeq++
	opts := o.activityOptions(p)
	f.activityID = opts.ActivityID
	pctx, cancel := workflow.WithCancel(o.pagesCtx)
	f.cancel = cancel
	actx := workflow.WithActivityOptions(pctx, opts)
	lookahead := f.lookahead
	input := processor.PageInput{
		Job:                o.in.Job,
		Page:               processor.PageRef{Number: p.Number, Cursor: p.Cursor, Size: o.in.Processor.PageSize},
		Args:               o.in.Processor.Args,
		Lookahead:          &lookahead,
		PriorAttempts:      p.Attempts,
		TotalPriorAttempts: p.TotalAttempts,
		EnqueueToken:       o.in.EnqueueToken,
	}
	future := workflow.ExecuteActivity(actx, o.in.Processor.Name, input)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res processor.PageResult
		err := future.Get(ctx, &res)
		o.now = workflow.Now(ctx)
		o.onPageDone(f, res, err)
	})
}

func (o *orchestrator) activityOptions(p Page) workflow.ActivityOptions {
	ps, rp := o.in.Processor, o.retry()
	policy := &temporal.RetryPolicy{MaximumAttempts: 1}
	if ps.Delivery != AtMostOnce {
		policy = &temporal.RetryPolicy{
			InitialInterval:        rp.InitialInterval,
			BackoffCoefficient:     rp.BackoffCoefficient,
			MaximumInterval:        rp.MaximumInterval,
			MaximumAttempts:        rp.MaximumAttempts,
			NonRetryableErrorTypes: rp.NonRetryableErrorTypes,
		}
		// A page carried out of retry backoff keeps the attempts it used.
		if rp.MaximumAttempts > 0 && p.Attempts > 0 {
			policy.MaximumAttempts = max(rp.MaximumAttempts-p.Attempts, 1)
		}
	}
	return workflow.ActivityOptions{
		TaskQueue:           o.in.TaskQueue,
		ActivityID:          fmt.Sprintf("page-%d-%d", p.Number, o.pageSeq),
		StartToCloseTimeout: ps.Timeout,
		HeartbeatTimeout:    ps.HeartbeatTimeout,
		RetryPolicy:         policy,
		Priority:            o.priority(),
		Summary:             fmt.Sprintf("page %d", p.Number),
	}
}

func (o *orchestrator) onPageDone(f *flight, res processor.PageResult, err error) {
	p := f.Page
	delete(o.inflight, p.Number)
	o.answered(f)
	o.dirty = true
	now := o.now
	switch {
	case err == nil:
		o.pageCompleted(p, res, now)
	case temporal.IsCanceledError(err) && o.atMostOnceUnknown():
		// The job ended or was cancelled with the page in flight: it may
		// have processed some of its items, so it must not run again
		// unless the user says so.
		p.TotalAttempts += p.Attempts + 1
		o.park(p, PageFailed, true, ErrorTypePageCancelled, "the page was cancelled in flight (the job ended or was cancelled); under AtMostOnce delivery it may have processed some of its items", now)
		o.breakChain(p)
	case temporal.IsCanceledError(err):
		o.requeueCancelled(p)
	default:
		o.pageFailed(p, err, now)
	}
}

// requeueCancelled queues a page the orchestrator cancelled, so that it runs
// again on re-drive, in page order, before the pages enqueued after it.
func (o *orchestrator) requeueCancelled(p Page) {
	if _, ok := o.frontierOf[p.Number]; ok && o.version >= versionLookahead {
		o.queueFrontier(p, true)
		return
	}
	i := slices.IndexFunc(o.st.Pending, func(q Page) bool { return q.Number > p.Number })
	if i < 0 {
		i = len(o.st.Pending)
	}
	o.st.Pending = slices.Insert(o.st.Pending, i, p)
}

func (o *orchestrator) pageCompleted(p Page, res processor.PageResult, now time.Time) {
	c := &o.st.Counters
	o.completedThisRun++
	delete(o.st.FailedAs, p.Number)
	if !p.Counted {
		c.PagesCompleted++
		c.ItemsProcessed += max(res.ItemsProcessed, 0)
		// A processor that lists failures but leaves out the count still has them counted.
		itemsFailed := max(res.ItemsFailed, int64(len(res.FailedItems)), 0)
		c.ItemsFailed += itemsFailed
		listed := int64(0)
		for _, fi := range res.FailedItems {
			listed++
			msg := fi.Message
			if fi.Sensitive && o.unknownOutcomes {
				msg = withheld(msg)
			}
			o.record(Failure{Page: p.Number, Cursor: p.Cursor, Item: fi.Item, Type: orDefault(fi.Type, "ItemFailed"), Message: msg, Time: now}, true)
		}
		if rest := itemsFailed - listed; rest > 0 {
			// Failures beyond the truncated list carry no type.
			o.countType("Unlisted", rest)
		}
		o.st.Rate = addRateSample(o.st.Rate, now, c.ItemsProcessed)
		o.checkMaxFailedItems(false)
	}

	chain, ok := o.chainOf(p.Number)
	if !ok || chain.Ended {
		return
	}
	switch {
	case res.NextCursor != "" && len(res.NextCursor) <= MaxCursorBytes:
		o.enqueue(p.Number, []string{res.NextCursor}, "nextCursor")
	case res.NextCursor != "":
		o.refuse(p.Number, fmt.Sprintf("nextCursor of %d bytes, over the %d-byte limit", len(res.NextCursor), MaxCursorBytes))
		fallthrough
	case chain.Refused != "":
		// The page found a successor the orchestrator could not take: the
		// chain is broken at this page, not ended. Its items are counted;
		// a re-drive runs it again only to enqueue its successor.
		p.Counted = true
		if o.unknownOutcomes {
			p.TotalAttempts += p.Attempts + 1
		}
		// Under AtMostOnce running the page again to enqueue its
		// successors would process its items twice.
		o.park(p, PageFailed, o.atMostOnceUnknown(), ErrorTypeEnqueueRefused, "the page's EnqueuePage signal was refused: "+chain.Refused, now)
		chain.Broken = true
	default:
		chain.Ended = true
	}
}
