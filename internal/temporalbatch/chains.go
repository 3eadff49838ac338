package temporalbatch

import (
	"fmt"
	"strings"
)

// Chains. A job walks its data as one chain of pages, or as one chain per
// processor.cursors entry. Only a chain's frontier (its last enqueued page)
// is asked for successors; it sends up to lookahead of them in one
// EnqueuePage signal and the last becomes the new frontier.

// initChains sets up the chains of a first run, or moves the single chain of
// state carried from a run that predates chains into Chains, and indexes the
// frontiers.
func (o *orchestrator) initChains() {
	st := o.st
	switch {
	case len(st.Chains) > 0:
	case st.Runs > 1:
		// State carried by a run that predates chains: its one chain has
		// started, and its pages are numbered up to the frontier.
		st.Chains = []Chain{{Frontier: st.Frontier, Ended: st.ChainEnded, Broken: st.ChainBroken}}
		st.ChainsStarted, st.NextNumber = 1, st.Frontier+1
	default:
		n := max(len(o.in.Processor.Cursors), 1)
		st.Chains = make([]Chain, n)
		for i := range st.Chains {
			st.Chains[i].Frontier = int64(i)
		}
		st.NextNumber = int64(n)
	}
	st.Frontier, st.FrontierCursor, st.ChainEnded, st.ChainBroken = 0, "", false, false
	for i, c := range st.Chains {
		o.frontierOf[c.Frontier] = i
	}
}

// startChain queues the first page of the next chain not started yet.
func (o *orchestrator) startChain() Page {
	i := o.st.ChainsStarted
	o.st.ChainsStarted++
	cursor := o.in.Processor.FirstCursor
	if len(o.in.Processor.Cursors) > 0 {
		cursor = o.in.Processor.Cursors[i]
	}
	return Page{Number: o.st.Chains[i].Frontier, Cursor: cursor}
}

// chainOf returns the chain whose frontier is page n.
func (o *orchestrator) chainOf(n int64) (*Chain, bool) {
	i, ok := o.frontierOf[n]
	if !ok {
		return nil, false
	}
	return &o.st.Chains[i], true
}

// lookahead is how many successors a frontier page is asked for at most.
func (o *orchestrator) lookahead() int {
	if o.version < versionLookahead {
		return 1
	}
	if l := o.in.Processor.Lookahead; l > 0 {
		return l
	}
	return min(max(2*o.effective, 1), MaxLookahead)
}

// askFor returns how many successors page p is asked for when it starts: 0
// unless it is a chain's frontier; otherwise the lookahead, fewer when the
// queue is full, so that waiting pages stay under effective + lookahead.
func (o *orchestrator) askFor(p Page) int {
	c, ok := o.chainOf(p.Number)
	if !ok || c.Ended {
		return 0
	}
	want := o.lookahead()
	if o.waitingFull() {
		want = 1
	}
	room := o.effective + want - o.waiting() - o.asked
	return min(max(room, 1), want)
}

// queueFrontier queues a chain's frontier page. Frontier pages start ahead of
// the other waiting pages, so a chain never waits behind its own pages.
func (o *orchestrator) queueFrontier(p Page, front bool) {
	switch {
	case o.version < versionLookahead:
		o.st.Pending = append(o.st.Pending, p)
	case front:
		o.st.Frontiers = append([]Page{p}, o.st.Frontiers...)
	default:
		o.st.Frontiers = append(o.st.Frontiers, p)
	}
}

// enqueue accepts the successors of page sender, if sender is a live
// chain's frontier, and counts everything else.
func (o *orchestrator) enqueue(sender int64, cursors []string, source string) {
	i, ok := o.frontierOf[sender]
	switch {
	case !ok && sender < o.st.NextNumber && sender >= 0:
		o.st.Counters.DuplicateSignals++
		o.logger.Debug("Ignoring duplicate EnqueuePage", "Page", sender+1, "Source", source)
		return
	case !ok || i >= o.st.ChainsStarted || o.st.Chains[i].Ended:
		o.st.Counters.UnexpectedSignals++
		o.logger.Warn("Ignoring EnqueuePage from a page that is not a chain's frontier", "Page", sender+1, "NextNumber", o.st.NextNumber, "Source", source)
		return
	}
	limit := o.lookahead()
	if f, ok := o.inflight[sender]; ok && f.lookahead > 0 {
		limit = f.lookahead
		o.answered(f)
	}
	if len(cursors) > limit {
		o.logger.Debug("Keeping the cursors asked for; the new frontier asks for the rest", "Page", sender, "Sent", len(cursors), "Asked", limit)
		cursors = cursors[:limit]
	}
	c := &o.st.Chains[i]
	// Successors arriving after their page failed mend the chain.
	c.Broken, c.Refused = false, ""
	delete(o.frontierOf, sender)
	for k, cursor := range cursors {
		p := Page{Number: o.st.NextNumber, Cursor: cursor}
		o.st.NextNumber++
		if k < len(cursors)-1 {
			o.st.Pending = append(o.st.Pending, p)
			continue
		}
		c.Frontier = p.Number
		o.frontierOf[p.Number] = i
		o.queueFrontier(p, false)
	}
	o.dirty = true
}

// refuse records that the frontier page sender's EnqueuePage was refused, so
// that its chain does not read as ended when the page completes.
func (o *orchestrator) refuse(sender int64, why string) {
	if c, ok := o.chainOf(sender); ok && !c.Ended {
		c.Refused = truncate(why, MaxMessageBytes)
	}
}

// answered marks an in-flight frontier page's successors as arrived.
func (o *orchestrator) answered(f *flight) {
	if f.lookahead > 0 {
		o.asking--
		o.asked -= f.lookahead
		f.lookahead = 0
	}
}

// chainCounts counts the chains by where they stand.
func (o *orchestrator) chainCounts() ChainCounts {
	n := ChainCounts{Total: len(o.st.Chains)}
	for _, c := range o.st.Chains {
		switch {
		case c.Ended:
			n.Done++
		case c.Broken:
			n.Broken++
		}
	}
	return n
}

func (o *orchestrator) brokenMessage(broken []int) string {
	// Cursors can hold keys of the data and stay out of the message:
	// 'kubectl batch get' lists the failed pages with theirs.
	first := o.st.Chains[broken[0]].Frontier
	why := "failed for good before enqueuing the next page"
	if r := o.st.Chains[broken[0]].Refused; r != "" {
		why = "completed, but its EnqueuePage signal was refused (" + r + ")"
	}
	if len(o.st.Chains) == 1 {
		return fmt.Sprintf("page %d %s, so the job stopped there; fix the cause and re-drive%s", first, why, o.unknownHint())
	}
	return fmt.Sprintf("%d of %d chains broke: page %d %s; fix the cause and re-drive%s", len(broken), len(o.st.Chains), first, why, o.unknownHint())
}

func (o *orchestrator) completedMessage() string {
	msg := fmt.Sprintf("%d pages, %d items processed, %d items failed, %d pages failed", o.st.Counters.PagesCompleted, o.st.Counters.ItemsProcessed, o.st.Counters.ItemsFailed, o.failedCount())
	if len(o.st.Chains) > 1 {
		msg += fmt.Sprintf(", %d chains", len(o.st.Chains))
	}
	if n := o.failedCount(); n > 0 && o.failedPagesFail {
		msg += fmt.Sprintf(" (%s, tolerated by failurePolicy.toleratedFailedPages: %d; a re-drive runs them again)", o.failedPagesList(), o.failurePolicy().ToleratedFailedPages)
	}
	return msg
}

// pagesFailedMessage says that the job ended with more pages failed for good
// than it tolerates, which, and how to run them again.
func (o *orchestrator) pagesFailedMessage(failed int64) string {
	job := o.in.Job
	name, ns := orDefault(job.Name, "<job>"), orDefault(job.Namespace, "<namespace>")
	first := ""
	for _, p := range o.st.Parked {
		if p.State == PageFailed {
			first = fmt.Sprintf("page %d failed with %s: %s", p.Number, p.ErrorType, p.Message)
			if failed > 1 {
				first = o.failedPagesList() + "; " + first
			}
			break
		}
	}
	return fmt.Sprintf("%d pages failed for good, more than failurePolicy.toleratedFailedPages (%d): %s; "+
		"the other pages completed (%d pages, %d items processed, %d items failed); "+
		"fix the cause, then re-drive the failed pages with 'kubectl batch redrive %s -n %s' or a new value of the annotation batch.temporalbatch.io/redrive%s",
		failed, o.failurePolicy().ToleratedFailedPages, first,
		o.st.Counters.PagesCompleted, o.st.Counters.ItemsProcessed, o.st.Counters.ItemsFailed, name, ns, o.unknownHint())
}

// checkMaxFailed ends the job once more pages failed for good than
// failurePolicy.maxFailedPages allows.
func (o *orchestrator) checkMaxFailed() {
	if o.endState == "" && o.overMaxFailedPages() {
		o.end(StateFailed, ReasonPagesFailed, o.maxFailedMessage())
		o.endedForMaxFailed = true
	}
	o.checkMaxFailedItems(false)
}

// overMaxFailedPages: more pages failed for good than
// failurePolicy.maxFailedPages, as a count or as a percentage of the pages
// completed or failed so far (once they are PercentMinBase or more).
func (o *orchestrator) overMaxFailedPages() bool {
	fp, failed := o.failurePolicy(), o.failedCount()
	if m := fp.MaxFailedPages; m != nil && failed > *m {
		return true
	}
	return overPercent(failed, o.st.Counters.PagesCompleted+failed, fp.MaxFailedPagesPercent, false)
}

// overPercent: n is more than pct percent of base, once base is
// PercentMinBase or more (whatever the base at the job's end).
func overPercent(n, base int64, pct *int32, atEnd bool) bool {
	if pct == nil || (base < PercentMinBase && !atEnd) {
		return false
	}
	return n*100 > int64(*pct)*base
}

// maxFailedMessage says that the job stopped for its failed pages, which,
// and how to run them again. The pages in flight when it stopped fail or
// complete after it, so the job's last message is written again once they
// did.
func (o *orchestrator) maxFailedMessage() string {
	job := o.in.Job
	fp, failed := o.failurePolicy(), o.failedCount()
	limit := "0"
	switch {
	case fp.MaxFailedPages != nil && failed > *fp.MaxFailedPages:
		limit = fmt.Sprint(*fp.MaxFailedPages)
	case fp.MaxFailedPagesPercent != nil:
		limit = fmt.Sprintf("%d%% of the %d pages completed or failed", *fp.MaxFailedPagesPercent, o.st.Counters.PagesCompleted+failed)
	}
	return fmt.Sprintf("%d pages failed for good, more than failurePolicy.maxFailedPages (%s): %s; the job stopped without running the rest (%d pages, %d items processed); "+
		"fix the cause, then re-drive with 'kubectl batch redrive %s -n %s' or a new value of the annotation batch.temporalbatch.io/redrive%s",
		failed, limit, o.failedPagesList(), o.st.Counters.PagesCompleted, o.st.Counters.ItemsProcessed,
		orDefault(job.Name, "<job>"), orDefault(job.Namespace, "<namespace>"), o.unknownHint())
}

// unknownHint tells how to re-drive the failed pages whose outcome is
// unknown, when there are any.
func (o *orchestrator) unknownHint() string {
	n := o.unknownCount()
	if n == 0 {
		return ""
	}
	job := o.in.Job
	return fmt.Sprintf("; %d of the failed pages may have processed some of their items before they failed (AtMostOnce delivery): a re-drive leaves them failed unless you check them and ask for them with 'kubectl batch redrive %s -n %s --include-unknown'",
		n, orDefault(job.Name, "<job>"), orDefault(job.Namespace, "<namespace>"))
}

// failedPagesList names the pages that failed for good, the first few of them.
func (o *orchestrator) failedPagesList() string {
	const shown = 10
	var nums []string
	n := 0
	for _, p := range o.st.Parked {
		if p.State != PageFailed {
			continue
		}
		if n < shown {
			nums = append(nums, fmt.Sprint(p.Number))
		}
		n++
	}
	list := "page"
	if n > 1 {
		list = "pages"
	}
	list += " " + strings.Join(nums, ", ")
	if n > shown {
		list += fmt.Sprintf(" and %d more", n-shown)
	}
	return list
}

// findPage looks a page up among the waiting, in-flight and parked pages.
func (o *orchestrator) findPage(n int64) (Page, bool) {
	if f, ok := o.inflight[n]; ok {
		return f.Page, true
	}
	for _, list := range [][]Page{o.st.Frontiers, o.st.Pending} {
		for _, p := range list {
			if p.Number == n {
				return p, true
			}
		}
	}
	for _, p := range o.st.Parked {
		if p.Number == n {
			return p.Page, true
		}
	}
	return Page{}, false
}
