package temporalbatch

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Failure rules (FailurePolicy.Rules) and item limits. They act only when
// the input or the desired state carries them: without them every path
// below is the behaviour of orchestrators from before them, so histories
// recorded before them replay unchanged with no workflow.GetVersion
// (docs/versioning.md).

// ruleFor returns the first rule of the failure policy in effect that
// matches a page failure; the message matched is the processor's, before a
// sensitive one is withheld.
func (o *orchestrator) ruleFor(e pageError) (FailureRule, int, bool) {
	for i, r := range o.failurePolicy().Rules {
		if slices.Contains(r.OnErrorTypes, e.errType) && strings.Contains(e.msg, r.OnMessageContains) {
			return r, i, true
		}
	}
	return FailureRule{}, -1, false
}

// applyRule changes how a page failure is read by the rule it matches.
func (o *orchestrator) applyRule(r FailureRule, e *pageError) {
	switch r.Action {
	case ActionFailJob, ActionFailPage:
		e.forGood = true
	case ActionRetry:
		// Under AtMostOnce a page runs once; with stuck pages not retried
		// a stuck page would wait forever.
		if o.in.Processor.Delivery != AtMostOnce && o.retry().StuckPageRetryInterval > 0 {
			e.forGood = false
		}
	}
}

// ignore counts page p, whose failure an Ignore rule matched, as done and
// its items as failed. It refuses (false) a live chain's frontier: its
// successors are not known, and passing over it would drop the rest of
// its chain unseen.
func (o *orchestrator) ignore(p Page, e pageError, msg string, now time.Time) bool {
	if c, ok := o.chainOf(p.Number); ok && !c.Ended {
		return false
	}
	c := &o.st.Counters
	c.FailedAttempts++
	o.completedThisRun++
	counted := slices.Contains(o.st.FailedAs[p.Number], e.errType)
	delete(o.st.FailedAs, p.Number)
	if !p.Counted {
		c.PagesCompleted++
		c.PagesIgnored++
		c.ItemsFailed += int64(max(o.in.Processor.PageSize, 0))
	}
	o.record(Failure{Page: p.Number, Cursor: p.Cursor, Type: e.errType, Message: msg, Time: now}, !counted)
	o.logger.Warn("Page failed and is ignored by a failure rule", "Page", p.Number, "Type", e.errType, "Error", msg)
	o.checkMaxFailedItems(false)
	return true
}

// ruleMessage says that a FailJob rule failed the job, for which page,
// and how to run it again.
func (o *orchestrator) ruleMessage(p Page, i int, errType, msg string) string {
	job := o.in.Job
	return fmt.Sprintf("page %d failed with %s, which failurePolicy.rules[%d] fails the job for (FailJob): %s; the job stopped without running the rest (%d pages, %d items processed); "+
		"fix the cause, then re-drive with 'kubectl batch redrive %s -n %s' or a new value of the annotation batch.temporalbatch.io/redrive%s",
		p.Number, errType, i, truncate(msg, MaxMessageBytes), o.st.Counters.PagesCompleted, o.st.Counters.ItemsProcessed,
		orDefault(job.Name, "<job>"), orDefault(job.Namespace, "<namespace>"), o.unknownHint())
}

// checkMaxFailedItems ends the job once more items failed than
// failurePolicy.maxFailedItems allows, as a count or a percentage of the
// items processed or failed; atEnd judges the percentage whatever its
// base.
func (o *orchestrator) checkMaxFailedItems(atEnd bool) {
	fp, c := o.failurePolicy(), o.st.Counters
	if o.endState != "" || (fp.MaxFailedItems == nil && fp.MaxFailedItemsPercent == nil) {
		return
	}
	var limit string
	switch base := c.ItemsProcessed + c.ItemsFailed; {
	case fp.MaxFailedItems != nil && c.ItemsFailed > *fp.MaxFailedItems:
		limit = fmt.Sprint(*fp.MaxFailedItems)
	case overPercent(c.ItemsFailed, base, fp.MaxFailedItemsPercent, atEnd):
		limit = fmt.Sprintf("%d%% of the %d items processed or failed", *fp.MaxFailedItemsPercent, base)
	default:
		return
	}
	o.end(StateFailed, ReasonItemsFailed, fmt.Sprintf("%d items failed, more than failurePolicy.maxFailedItems (%s); the job stopped after %d pages, %d items processed; "+
		"the failed items are in status.failures and went to the failure handler: a re-drive does not run them again",
		c.ItemsFailed, limit, c.PagesCompleted, c.ItemsProcessed))
}
