package temporalbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// failCalls fails the given page on calls 1..n (n < 0: every call) with err.
// corruptPages fails the given pages for good on every attempt, after they
// enqueued their successors.
func corruptPages(pages ...int64) func(int64, int) error {
	return func(p int64, _ int) error {
		if slices.Contains(pages, p) {
			return corruptPage(p)
		}
		return nil
	}
}

func failCalls(page int64, n int, err error) func(int64, int) error {
	return func(p int64, call int) error {
		if p == page && (n < 0 || call <= n) {
			return err
		}
		return nil
	}
}

func flaky(page int64) error {
	return processor.Retryable("Flaky", "page %d: connection reset", page)
}

func TestRetriedPageCompletesTheJob(t *testing.T) {
	for _, stage := range []string{"before enqueuing", "after enqueuing"} {
		t.Run(stage, func(t *testing.T) {
			d := newSimDataSet(100, 10)
			fail := failCalls(3, 2, flaky(3))
			if stage == "before enqueuing" {
				d.beforeEnqueue = fail
			} else {
				d.afterEnqueue = fail
			}
			env := runSim(t, d, nil, simInput(d, 2), nil)
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)

			require.Equal(t, 3, d.callsOf(3), "two failed attempts and the one that succeeded")
			for page := range d.pages() {
				if page != 3 {
					require.Equal(t, 1, d.callsOf(page))
				}
			}
			p := res.Progress
			require.Zero(t, p.Pages.Failed)
			require.Empty(t, p.FailedPages)
			require.Empty(t, p.ByType, "a page that succeeded on retry is no failure")
			require.Empty(t, p.Recent)
			require.Zero(t, p.Counters.DuplicateSignals, "a retried attempt does not signal again")
		})
	}
}

func TestStuckPageIsRetriedAfterTheRest(t *testing.T) {
	tests := []struct {
		name string
		// page gets stuck: its first three calls fail.
		page     int64
		frontier bool
	}{
		{name: "a page that enqueued its successor", page: 3},
		{name: "the frontier page", page: 9, frontier: true},
		{name: "the frontier page in the middle", page: 4, frontier: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(100, 10)
			if tt.frontier {
				d.beforeEnqueue = failCalls(tt.page, 3, flaky(tt.page))
			} else {
				d.afterEnqueue = failCalls(tt.page, 3, flaky(tt.page))
			}
			in := simInput(d, 1)
			in.Retry.MaximumAttempts = 3
			in.Retry.StuckPageRetryInterval = 10 * time.Minute

			var start time.Time
			var stuck *Progress
			env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
				start = env.Now()
				stuck = progressAt(env, 5*time.Minute)
			})
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)

			require.Equal(t, StateRunning, stuck.State)
			require.Equal(t, int64(1), stuck.Pages.Stuck)
			require.Zero(t, stuck.Pages.Failed)
			require.Empty(t, stuck.FailedPages, "a stuck page has not failed for good")
			require.Zero(t, stuck.Pages.InFlight)
			if tt.frontier {
				require.Equal(t, tt.page, stuck.Pages.Completed, "the chain waits for its frontier")
			} else {
				require.Equal(t, d.pages()-1, stuck.Pages.Completed, "the other pages completed")
			}
			require.Equal(t, map[string]int64{"Flaky": 1}, stuck.ByType)
			require.Len(t, stuck.Recent, 1)
			require.Equal(t, tt.page, stuck.Recent[0].Page)
			require.Empty(t, stuck.Recent[0].Item)

			require.Equal(t, 4, d.callsOf(tt.page))
			for _, s := range d.startsSnapshot() {
				if s.Page == tt.page && s.Call == 4 {
					// Three attempts with 1s and 2s backoffs, then the stuck interval.
					require.Equal(t, 3*time.Second+10*time.Minute, s.At.Sub(start))
				}
			}
		})
	}
}

func TestPageFailsForGoodWhenStuckPagesAreNotRetried(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(3, -1, flaky(3))
	in := simInput(d, 2)
	in.Retry.MaximumAttempts = 3
	in.Retry.StuckPageRetryInterval = 0
	env := runSim(t, d, nil, in, nil)
	res := pagesFailed(t, env)

	p := res.Progress
	require.Equal(t, 3, d.callsOf(3), "the retry policy's attempts, then no more")
	require.Equal(t, d.pages()-1, p.Pages.Completed)
	require.Equal(t, int64(90), p.Items.Processed)
	require.Equal(t, int64(1), p.Pages.Failed)
	require.Zero(t, p.Pages.Stuck)
	require.Len(t, p.FailedPages, 1)
	fp := p.FailedPages[0]
	require.Equal(t, Page{Number: 3, TotalAttempts: 3}, fp.Page, "the Result lists the failed page without its cursor, with the attempts it used")
	require.Equal(t, Page{Number: 3, Cursor: "30", TotalAttempts: 3}, res.Next.State.Parked[0].Page, "Next carries the cursor for the re-drive")
	require.Equal(t, PageFailed, fp.State)
	require.Equal(t, "Flaky", fp.ErrorType)
	require.Contains(t, fp.Message, "connection reset")
	require.Contains(t, p.Message, "1 pages failed for good, more than failurePolicy.toleratedFailedPages (0): page 3 failed with Flaky: ")
	require.Contains(t, p.Message, "'kubectl batch redrive inflate-prices -n shop'")
	require.Equal(t, map[string]int64{"Flaky": 1}, p.ByType)
	require.Equal(t, int64(1), p.Counters.FailedAttempts)
	d.requireContract(t)
}

func TestNonRetryableFailuresFailThePageAtOnce(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		delivery Delivery
		wantType string
	}{
		{
			name:     "type listed in nonRetryableErrorTypes",
			err:      processor.Retryable("InvalidRecord", "sku-31 has no price"),
			wantType: "InvalidRecord",
		},
		{
			name:     "non-retryable application error",
			err:      temporal.NewNonRetryableApplicationError("table dropped", "Corrupt", nil),
			wantType: "Corrupt",
		},
		{
			name:     "processor.NonRetryable",
			err:      processor.NonRetryable(processor.ErrorTypeInvalidArgs, "percent must be positive"),
			wantType: processor.ErrorTypeInvalidArgs,
		},
		{
			name:     "AtMostOnce with a retryable error",
			err:      flaky(3),
			delivery: AtMostOnce,
			wantType: "Flaky",
		},
		{
			name:     "a plain Go error under AtMostOnce",
			err:      errors.New("boom"),
			delivery: AtMostOnce,
			wantType: "ApplicationError",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(100, 10)
			d.afterEnqueue = failCalls(3, -1, tt.err)
			in := simInput(d, 2)
			in.Retry.NonRetryableErrorTypes = []string{"InvalidRecord"}
			in.Retry.StuckPageRetryInterval = 10 * time.Minute
			if tt.delivery != "" {
				in.Processor.Delivery = tt.delivery
			}
			env := runSim(t, d, nil, in, nil)
			res := pagesFailed(t, env)

			require.Equal(t, 1, d.callsOf(3), "one attempt")
			p := res.Progress
			require.Equal(t, d.pages()-1, p.Pages.Completed, "the chain went on: the page had enqueued its successor")
			require.Zero(t, p.Pages.Stuck)
			require.Len(t, p.FailedPages, 1)
			require.Equal(t, int64(3), p.FailedPages[0].Number)
			require.Equal(t, tt.wantType, p.FailedPages[0].ErrorType)
			require.Equal(t, map[string]int64{tt.wantType: 1}, p.ByType)
			d.requireContract(t)
		})
	}
}

func TestAtMostOnceAttemptsEveryPageOnce(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = func(page int64, _ int) error {
		if page%3 == 1 {
			return flaky(page)
		}
		return nil
	}
	in := simInput(d, 3)
	in.Processor.Delivery = AtMostOnce
	in.Retry.StuckPageRetryInterval = time.Minute
	env := runSim(t, d, nil, in, nil)
	res := pagesFailed(t, env)
	for page := range d.pages() {
		require.Equal(t, 1, d.callsOf(page), "page %d", page)
	}
	require.Equal(t, int64(7), res.Progress.Pages.Completed)
	require.Equal(t, int64(3), res.Progress.Pages.Failed)
}

func TestFrontierFailingForGoodBreaksTheChain(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	d.beforeEnqueue = failCalls(4, -1, temporal.NewNonRetryableApplicationError("table dropped", "Corrupt", nil))
	env := runSim(t, d, nil, simInput(d, 8), nil)

	appErr, res := failedWith(t, env, ReasonChainBroken)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Error(), "page 4 failed for good before enqueuing the next page")
	require.NotContains(t, appErr.Error(), `"40"`, "cursors can hold keys of the data: the message leaves them out")

	p := res.Progress
	require.Equal(t, StateFailed, p.State)
	require.Equal(t, ReasonChainBroken, p.Reason)
	require.Equal(t, int64(4), p.Pages.Completed, "pages in flight when the chain broke finished")
	require.Equal(t, int64(40), p.Items.Processed)
	require.Zero(t, p.Pages.InFlight)
	require.Equal(t, Page{Number: 4, Cursor: "40", TotalAttempts: 1}, p.Frontier)
	require.NotNil(t, p.CompletionTime)

	st := res.Next.State
	require.NotNil(t, st)
	require.True(t, st.Chains[0].Broken)
	require.Len(t, st.Parked, 1)
	require.Equal(t, Page{Number: 4, Cursor: "40", TotalAttempts: 1}, st.Parked[0].Page)
	require.Equal(t, PageFailed, st.Parked[0].State)
	require.Equal(t, "Corrupt", st.Parked[0].ErrorType)
	require.Empty(t, queued(st))
	require.Equal(t, int64(4), st.Counters.PagesCompleted)
	require.Equal(t, simProcessorName, res.Next.Processor.Name, "the next input is the job's input")
	for page := int64(5); page < d.pages(); page++ {
		require.Zero(t, d.callsOf(page), "page %d ran past the broken chain", page)
	}
	d.requireContract(t)
}

func TestMaxFailedPages(t *testing.T) {
	limit := func(n int64) *int64 { return &n }
	tests := []struct {
		name      string
		max       *int64
		tolerated int64
		// wantEarly: the job fails as soon as a page too many failed;
		// wantEnd: it reaches its end, then fails for its failed pages.
		wantEarly, wantEnd bool
	}{
		{name: "omitted: the job fails at its end", max: nil, wantEnd: true},
		{name: "0: the first failed page fails the job", max: limit(0), wantEarly: true},
		{name: "1: the second failed page fails the job", max: limit(1), wantEarly: true},
		{name: "2: the job runs to its end, then fails", max: limit(2), wantEnd: true},
		{name: "1 tolerated: the job fails at its end", tolerated: 1, wantEnd: true},
		{name: "2 tolerated: the job succeeds", tolerated: 2},
		{name: "2 tolerated of at most 2: the job succeeds", max: limit(2), tolerated: 2},
		{name: "1 tolerated of at most 1: the second failed page fails the job", max: limit(1), tolerated: 1, wantEarly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(100, 10)
			corrupt := temporal.NewNonRetryableApplicationError("bad rows", "Corrupt", nil)
			d.afterEnqueue = func(page int64, _ int) error {
				if page == 3 || page == 6 {
					return corrupt
				}
				return nil
			}
			in := simInput(d, 1)
			in.FailurePolicy.MaxFailedPages = tt.max
			in.FailurePolicy.ToleratedFailedPages = tt.tolerated
			env := runSim(t, d, nil, in, nil)
			failedPages := func(p Progress) []int64 {
				var n []int64
				for _, fp := range p.FailedPages {
					n = append(n, fp.Number)
				}
				return n
			}
			switch {
			case tt.wantEnd:
				res := pagesFailed(t, env)
				p := res.Progress
				require.Equal(t, d.pages()-2, p.Pages.Completed, "every other page completed")
				require.Equal(t, []int64{3, 6}, failedPages(p))
				require.Contains(t, p.Message, fmt.Sprintf("2 pages failed for good, more than failurePolicy.toleratedFailedPages (%d): pages 3, 6; page 3 failed with Corrupt: bad rows", tt.tolerated))
				require.Empty(t, queued(res.Next.State), "nothing but the failed pages is left to run")
				return
			case !tt.wantEarly:
				res := succeeded(t, env)
				p := res.Progress
				require.Equal(t, int64(2), p.Pages.Failed)
				require.Equal(t, []int64{3, 6}, failedPages(p))
				require.Equal(t, d.pages()-2, p.Pages.Completed)
				require.Contains(t, p.Message, "2 pages failed (pages 3, 6, tolerated by failurePolicy.toleratedFailedPages: 2; a re-drive runs them again)")
				return
			}
			appErr, res := failedWith(t, env, ReasonPagesFailed)
			failed := *tt.max + 1
			require.Contains(t, appErr.Error(), fmt.Sprintf("%d pages failed for good, more than failurePolicy.maxFailedPages (%d)", failed, *tt.max))
			p := res.Progress
			require.Equal(t, StateFailed, p.State)
			require.Equal(t, ReasonPagesFailed, p.Reason)
			require.Equal(t, failed, p.Pages.Failed)
			require.Len(t, p.FailedPages, int(failed))
			// The failed page had enqueued its successor: it waits in the next input.
			last := p.FailedPages[len(p.FailedPages)-1].Number
			require.Equal(t, last+1-failed, p.Pages.Completed, "the other pages before the last failed one completed")
			require.Equal(t, []Page{{Number: last + 1, Cursor: d.cursor(last + 1)}}, queued(res.Next.State))
		})
	}
}

// A page that fails again and again (stuck, retried every stuck interval)
// counts once per error type, every failure counts in FailedAttempts, and
// it holds one entry among the recent failures, its newest.
func TestRepeatedPageFailuresCountOncePerType(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = func(page int64, call int) error {
		switch {
		case page != 3 || call > 6:
			return nil
		case call <= 4:
			return flaky(3)
		}
		return processor.Retryable("Throttled", "page 3: slow down")
	}
	d.result = func(page int64, res *processor.PageResult) {
		if page == 7 {
			res.FailedItems = []processor.FailedItem{{Item: "sku-70", Type: "BadRow", Message: "no price"}}
			res.ItemsFailed, res.ItemsProcessed = 1, res.ItemsProcessed-1
		}
	}
	in := simInput(d, 1)
	in.Retry.MaximumAttempts = 1
	in.Retry.StuckPageRetryInterval = time.Second
	var stuck *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		stuck = progressAt(env, 3500*time.Millisecond) // page 3 failed at 0s, 1s, 2s and 3s
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, 7, d.callsOf(3))

	require.Equal(t, StateRunning, stuck.State)
	require.Equal(t, int64(1), stuck.Pages.Stuck)
	require.Equal(t, int64(4), stuck.Counters.FailedAttempts)
	require.Equal(t, map[string]int64{"Flaky": 1, "BadRow": 1}, stuck.ByType)
	require.Len(t, stuck.Recent, 2, "one entry for page 3, one for the failed item")
	require.Equal(t, int64(3), stuck.Recent[0].Page)
	require.Equal(t, "sku-70", stuck.Recent[1].Item)

	p := res.Progress
	require.Equal(t, int64(6), p.Counters.FailedAttempts, "every failure of the page")
	require.Equal(t, map[string]int64{"Flaky": 1, "Throttled": 1, "BadRow": 1}, p.ByType, "the page once per error type")
	require.Len(t, p.Recent, 2)
	require.Equal(t, Failure{Page: 3, Cursor: "30", Type: "Throttled", Message: p.Recent[0].Message, Time: p.Recent[0].Time}, p.Recent[0], "the page's newest failure")
	require.Contains(t, p.Recent[0].Message, "slow down")
	require.Equal(t, "sku-70", p.Recent[1].Item)
	require.True(t, p.Recent[0].Time.After(p.Recent[1].Time))
	require.Empty(t, res.Next.State.FailedAs, "a page that completed is forgotten")
}

func TestRecentFailuresKeepOneEntryPerPage(t *testing.T) {
	o := &orchestrator{st: &State{ByType: map[string]int64{}}}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		// Page 1 fails every other time; pages 2.. fail once each.
		page := int64(1)
		if i%2 == 1 {
			page = int64(i + 1)
		}
		o.record(Failure{Page: page, Type: "Flaky", Time: at.Add(time.Duration(i) * time.Second)}, true)
	}
	o.record(Failure{Page: 30, Item: "a", Type: "BadRow", Time: at.Add(time.Minute)}, true)
	o.record(Failure{Page: 30, Item: "b", Type: "BadRow", Time: at.Add(time.Minute)}, true)

	var got []string
	for _, f := range o.st.Recent {
		got = append(got, fmt.Sprintf("%d%s", f.Page, f.Item))
	}
	require.Equal(t, []string{"30b", "30a", "30", "1", "28", "26", "24", "22", "20", "18"}, got,
		"newest first, page 1 once, though its failures were half of them")
	require.Equal(t, at.Add(28*time.Second), o.st.Recent[3].Time, "page 1's newest failure")
}

func TestFailedItemsAreCountedByType(t *testing.T) {
	d := newSimDataSet(100, 10)
	long := strings.Repeat("é", 200) // 400 bytes
	d.result = func(page int64, res *processor.PageResult) {
		first := page * 10
		item := func(i int64) string { return fmt.Sprintf("sku-%d", first+i) }
		switch page {
		case 4:
			res.FailedItems = []processor.FailedItem{
				{Item: item(1), Type: "InvalidRecord", Message: "no price"},
				{Item: item(2), Type: "PriceTooLow", Message: long},
			}
		case 7:
			// Truncated: 5 failed, 2 described.
			res.FailedItems = []processor.FailedItem{
				{Item: item(1), Type: "InvalidRecord", Message: "no price"},
				{Item: item(2), Type: "", Message: "untyped"},
			}
			res.ItemsFailed = 5
		default:
			res.FailedItems = []processor.FailedItem{{Item: item(0), Type: "InvalidRecord", Message: "no price"}}
		}
		if res.ItemsFailed == 0 {
			res.ItemsFailed = int64(len(res.FailedItems))
		}
		res.ItemsProcessed -= res.ItemsFailed
	}
	sink := &simFailureSink{}
	in := simInput(d, 1)
	in.FailurePolicy.Handler = simHandlerName
	env := runSim(t, d, sink, in, nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	p := res.Progress
	require.Equal(t, int64(8+2+5), p.Items.Failed)
	require.Equal(t, int64(100-15), p.Items.Processed)
	require.Equal(t, map[string]int64{
		"InvalidRecord": 8 + 1 + 1,
		"PriceTooLow":   1,
		"ItemFailed":    1,
		"Unlisted":      3,
	}, p.ByType)
	require.Zero(t, p.Pages.Failed, "item failures do not fail their page")

	// Every described failure, in the order pages reported them.
	var all []processor.FailureReport
	for page := range d.pages() {
		var r processor.PageResult
		d.result(page, &r)
		for _, fi := range r.FailedItems {
			all = append(all, processor.FailureReport{Page: page, Cursor: d.cursor(page), Item: fi.Item, Type: orDefault(fi.Type, "ItemFailed"), Message: truncate(fi.Message, MaxMessageBytes)})
		}
	}
	require.Len(t, all, 12)

	require.Len(t, p.Recent, MaxRecentFailures)
	for i, f := range p.Recent {
		want := all[len(all)-1-i]
		require.Equal(t, want.Page, f.Page, "recent[%d]", i)
		require.Equal(t, want.Item, f.Item, "recent[%d]", i)
		require.Equal(t, want.Type, f.Type, "recent[%d]", i)
		require.Equal(t, want.Cursor, f.Cursor, "recent[%d]", i)
		require.False(t, f.Time.IsZero())
		if i > 0 {
			require.False(t, f.Time.After(p.Recent[i-1].Time), "newest first")
		}
	}
	for _, f := range p.Recent {
		require.LessOrEqual(t, len(f.Message), MaxMessageBytes)
	}

	got := sink.failures()
	require.Len(t, got, len(all), "the handler hears of every described failure")
	for i := range got {
		got[i].Time = time.Time{}
	}
	require.Equal(t, all, got)
	for _, b := range sink.batches {
		require.Equal(t, in.Job, b.Job)
	}
}

func TestFailureHandlerReceivesEveryFailureInBatches(t *testing.T) {
	d := newSimDataSet(300, 10)
	d.duration = 10 * time.Second
	d.result = func(page int64, res *processor.PageResult) {
		for i := range int64(10) {
			res.FailedItems = append(res.FailedItems, processor.FailedItem{Item: fmt.Sprintf("sku-%d", page*10+i), Type: "InvalidRecord"})
		}
		res.ItemsFailed = 10
		res.ItemsProcessed = 0
	}
	d.afterEnqueue = failCalls(17, -1, temporal.NewNonRetryableApplicationError("bad page", "Corrupt", nil))
	sink := &simFailureSink{}
	in := simInput(d, 5)
	in.FailurePolicy.Handler = simHandlerName
	env := runSim(t, d, sink, in, nil)
	res := pagesFailed(t, env)
	require.Equal(t, []int64{17}, []int64{res.Progress.FailedPages[0].Number})

	want := map[string]bool{"page 17": true}
	for page := range d.pages() {
		if page == 17 {
			continue
		}
		for i := range int64(10) {
			want[fmt.Sprintf("sku-%d", page*10+i)] = true
		}
	}
	got := map[string]bool{}
	for _, b := range sink.batches {
		require.NotEmpty(t, b.Failures)
		require.LessOrEqual(t, len(b.Failures), HandlerBatchSize)
		for _, f := range b.Failures {
			key := f.Item
			if key == "" {
				key = fmt.Sprintf("page %d", f.Page)
				require.Equal(t, "Corrupt", f.Type)
			}
			require.False(t, got[key], "%s reported twice", key)
			got[key] = true
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, int64(len(want)-1), res.Progress.Items.Failed)
	require.Zero(t, res.Progress.Counters.HandlerDropped)
	require.Empty(t, res.Next.State.HandlerQueue, "the job ended after the handler caught up")
}

func TestFailureHandlerThatKeepsFailingDropsFailuresButTheJobCompletes(t *testing.T) {
	d := newSimDataSet(50, 10)
	d.result = func(page int64, res *processor.PageResult) {
		res.FailedItems = []processor.FailedItem{{Item: fmt.Sprintf("sku-%d", page*10), Type: "InvalidRecord"}}
		res.ItemsFailed = 1
		res.ItemsProcessed--
	}
	in := simInput(d, 1)
	in.FailurePolicy.Handler = simHandlerName
	env := newSimEnv(t, d, nil)
	var calls atomic.Int64
	env.RegisterActivityWithOptions(func(context.Context, processor.FailureBatch) error {
		calls.Add(1)
		return errors.New("failure store unavailable")
	}, activity.RegisterOptions{Name: simHandlerName})
	env.ExecuteWorkflow(WorkflowType, in)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, int64(5), res.Progress.Counters.HandlerDropped)
	require.Equal(t, int64(5), res.Progress.ByType["InvalidRecord"], "dropped reports are still counted")
	require.GreaterOrEqual(t, calls.Load(), int64(10), "the handler was retried")
}

func TestFailureTypesAreBounded(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.result = func(page int64, res *processor.PageResult) {
		for i := range int64(10) {
			n := page*10 + i
			if n%10 < 6 {
				res.FailedItems = append(res.FailedItems, processor.FailedItem{Item: fmt.Sprint(n), Type: fmt.Sprintf("Type%d", n)})
			}
		}
		res.ItemsFailed = int64(len(res.FailedItems))
		res.ItemsProcessed -= res.ItemsFailed
	}
	env := runSim(t, d, nil, simInput(d, 1), nil)
	res := succeeded(t, env)
	byType := res.Progress.ByType
	require.Len(t, byType, MaxFailureTypes+1)
	require.Equal(t, int64(60-MaxFailureTypes), byType["Other"])
	total := int64(0)
	for _, n := range byType {
		total += n
	}
	require.Equal(t, int64(60), total)
}

func TestLastPageFailingForGoodBreaksTheChain(t *testing.T) {
	// The orchestrator cannot know whether the failed page would have
	// enqueued a successor, so the chain stops there.
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(9, -1, corruptPage(9))
	env := runSim(t, d, nil, simInput(d, 2), nil)
	appErr, res := failedWith(t, env, ReasonChainBroken)
	require.Contains(t, appErr.Error(), "page 9 failed for good")
	require.NotContains(t, appErr.Error(), `"90"`)
	require.Equal(t, int64(9), res.Progress.Pages.Completed)
	require.Equal(t, []int64{9}, []int64{res.Progress.FailedPages[0].Number})
}

func TestTooManyFailedPagesFailsTheJob(t *testing.T) {
	d := newSimDataSet((MaxTrackedPages+10)*2, 2)
	d.afterEnqueue = func(page int64, _ int) error { return corruptPage(page) }
	env := runSim(t, d, nil, simInput(d, 1), nil)
	appErr, res := failedWith(t, env, ReasonTooManyFailedPages)
	require.Contains(t, appErr.Error(), "fix the cause and re-drive")
	require.Len(t, res.Next.State.Parked, MaxTrackedPages+1, "every failed page is kept for re-drive")
	require.Equal(t, int64(MaxTrackedPages+1), res.Progress.Pages.Failed)
	require.Len(t, queued(res.Next.State), 1, "the next page waits for the re-drive")
}

// slowFailureSink is a failure handler that takes a minute of workflow time
// per batch.
type slowFailureSink struct {
	simFailureSink
	env *testsuite.TestWorkflowEnvironment
}

func (s *slowFailureSink) handle(ctx context.Context, b processor.FailureBatch) error {
	token := activity.GetInfo(ctx).TaskToken
	s.env.RegisterDelayedCallback(func() {
		_ = s.simFailureSink.handle(ctx, b)
		_ = s.env.CompleteActivity(token, nil, nil)
	}, time.Minute)
	return activity.ErrResultPending
}

func TestFailuresWaitingForTheHandlerPausePageStarts(t *testing.T) {
	d := newSimDataSet(3000, 100)
	d.result = func(page int64, res *processor.PageResult) {
		for i := range int64(100) {
			res.FailedItems = append(res.FailedItems, processor.FailedItem{Item: fmt.Sprint(page*100 + i), Type: "InvalidRecord"})
		}
		res.ItemsFailed, res.ItemsProcessed = 100, 0
	}
	in := simInput(d, 1)
	in.FailurePolicy.Handler = simHandlerName
	env := newSimEnv(t, d, nil)
	sink := &slowFailureSink{env: env}
	env.RegisterActivityWithOptions(sink.handle, activity.RegisterOptions{Name: simHandlerName})
	start := env.Now()
	env.ExecuteWorkflow(WorkflowType, in)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	// Page 0's failures went to the handler at once; pages 1-9 brought the
	// queue to the limit, so page 10 waited for the handler's first batch.
	for _, s := range d.startsSnapshot() {
		at := s.At.Sub(start)
		if s.Page < 10 {
			require.Zero(t, at, "page %d", s.Page)
		} else {
			require.GreaterOrEqual(t, at, time.Minute, "page %d started while %d failures waited", s.Page, HandlerQueueLimit)
		}
	}
	require.Equal(t, 3000, len(sink.failures()), "no failure report was dropped")
	require.Zero(t, res.Progress.Counters.HandlerDropped)
}

func TestFailuresReachTheHandlerAcrossContinueAsNew(t *testing.T) {
	d := newSimDataSet(200, 10)
	d.duration = 10 * time.Second
	d.result = func(page int64, res *processor.PageResult) {
		res.FailedItems = []processor.FailedItem{{Item: fmt.Sprint(page), Type: "InvalidRecord"}}
		res.ItemsFailed = 1
		res.ItemsProcessed--
	}
	sink := &simFailureSink{}
	in := simInput(d, 3)
	in.ContinueAsNewAfterPages = 4
	in.FailurePolicy.Handler = simHandlerName
	for runs := 1; ; runs++ {
		require.Less(t, runs, 20)
		env := runSim(t, d, sink, in, nil)
		if env.GetWorkflowError() == nil {
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)
			require.Greater(t, res.Progress.Runs, 2)
			break
		}
		in = continuedAsNew(t, env)
	}
	var items []string
	for _, f := range sink.failures() {
		items = append(items, f.Item)
	}
	var want []string
	for page := range d.pages() {
		want = append(want, fmt.Sprint(page))
	}
	require.ElementsMatch(t, want, items, "every failure reached the handler once")
}
