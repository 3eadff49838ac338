package temporalbatch

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// lookaheadInput is a job over d with the given parallelism and lookahead.
func lookaheadInput(d *simDataSet, parallelism, lookahead int) Input {
	in := simInput(d, parallelism)
	in.Processor.Lookahead = lookahead
	return in
}

// waitingSampler queries the progress every period of the workflow clock and
// keeps the most pages seen waiting and in flight.
type waitingSampler struct {
	maxWaiting, maxInFlight int64
}

func sampleWaiting(env *testsuite.TestWorkflowEnvironment, period time.Duration, n int) *waitingSampler {
	s := &waitingSampler{}
	for i := 1; i <= n; i++ {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryProgress)
			if err != nil {
				return
			}
			var p Progress
			if v.Get(&p) == nil {
				s.maxWaiting = max(s.maxWaiting, p.Pages.Pending)
				s.maxInFlight = max(s.maxInFlight, p.Pages.InFlight)
			}
		}, time.Duration(i)*period)
	}
	return s
}

func TestLookaheadFillsEverySlotWithFewerSignals(t *testing.T) {
	d := newSimDataSet(1000, 10) // 100 pages
	d.duration = 10 * time.Second
	var sampled *waitingSampler
	env := runSim(t, d, nil, lookaheadInput(d, 8, 10), func(env *testsuite.TestWorkflowEnvironment) {
		sampled = sampleWaiting(env, 3*time.Second, 60)
	})

	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	d.requireEveryItemOnce(t)
	require.Equal(t, int64(8), d.maxInFlight(), "lookahead keeps every slot busy")
	require.Equal(t, 8, res.Progress.Parallelism.MaxAchieved)
	require.Equal(t, 10, res.Progress.Lookahead)
	require.LessOrEqual(t, d.signals, 15, "one signal per batch of up to 10 successors, not one per page")
	require.Zero(t, res.Progress.Counters.DuplicateSignals+res.Progress.Counters.UnexpectedSignals+res.Progress.Counters.MalformedSignals)
	require.LessOrEqual(t, sampled.maxWaiting, int64(8+10), "waiting pages stay under parallelism + lookahead")
	// 100 pages of 10 s on 8 slots: 13 rounds, where the classic chain
	// would start one page per round trip.
	require.LessOrEqual(t, res.Progress.CompletionTime.Sub(res.Progress.StartTime), 150*time.Second)
}

func TestOnlyTheFrontierIsAskedAndStartsFirst(t *testing.T) {
	d := newSimDataSet(300, 10) // 30 pages
	d.duration = 10 * time.Second
	env := runSim(t, d, nil, lookaheadInput(d, 4, 6), nil)
	requireCompleteJob(t, d, succeeded(t, env).Progress)
	d.requireEveryItemOnce(t)

	// Page 0 is asked for 6 and sends 1..6; 6 is the new frontier: it
	// starts first, ahead of 1..5, and is the only one asked for more.
	starts := d.startsSnapshot()
	slices.SortFunc(starts, func(a, b simStart) int { return cmp.Compare(a.Seq, b.Seq) })
	require.Equal(t, int64(0), starts[0].Page)
	require.Equal(t, 6, starts[0].Lookahead)
	require.Equal(t, int64(6), starts[1].Page, "the new frontier starts ahead of the pages before it")
	// Four slots: 0, 6, 1 and 2. Page 6 enqueued 7..11 as it started, so
	// when page 0 completes, the frontier 11 goes ahead of 3.
	require.Equal(t, []int64{1, 2, 11, 3}, []int64{starts[2].Page, starts[3].Page, starts[4].Page, starts[5].Page})
	asked := map[int64]int{}
	for _, s := range starts {
		asked[s.Page] = s.Lookahead
	}
	frontiers := 0
	for page := int64(0); page < d.pages(); page++ {
		if asked[page] > 0 {
			frontiers++
		}
	}
	for _, page := range []int64{1, 2, 3, 4, 5} {
		require.Zero(t, asked[page], "page %d is not a frontier and is asked for nothing", page)
	}
	require.Positive(t, asked[6])
	require.Less(t, frontiers, 10, "a handful of frontier pages enqueue the 30 pages")
}

func TestPendingStaysBoundedWhateverTheLookahead(t *testing.T) {
	d := newSimDataSet(2000, 10) // 200 pages
	d.duration = 10 * time.Second
	var sampled *waitingSampler
	env := runSim(t, d, nil, lookaheadInput(d, 2, 50), func(env *testsuite.TestWorkflowEnvironment) {
		sampled = sampleWaiting(env, 5*time.Second, 250)
	})
	requireCompleteJob(t, d, succeeded(t, env).Progress)
	d.requireEveryItemOnce(t)
	require.LessOrEqual(t, sampled.maxWaiting, int64(2+50), "waiting pages stay under parallelism + lookahead")
	require.Positive(t, sampled.maxWaiting)
	for _, s := range d.startsSnapshot() {
		require.LessOrEqual(t, s.Lookahead, 50)
	}
}

func TestProcessorThatIgnoresLookaheadStillWorks(t *testing.T) {
	d := newSimDataSet(200, 10)
	d.duration = time.Second
	d.ignoreLookahead = true
	env := runSim(t, d, nil, lookaheadInput(d, 4, 10), nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	d.requireEveryItemOnce(t)
	require.Zero(t, res.Progress.Counters.MalformedSignals+res.Progress.Counters.UnexpectedSignals)
}

func TestLookaheadFollowsTheParallelismByDefault(t *testing.T) {
	d := newSimDataSet(400, 10)
	d.duration = 10 * time.Second
	env := runSim(t, d, nil, lookaheadInput(d, 5, 0), nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	d.requireEveryItemOnce(t)
	require.Equal(t, 10, res.Progress.Lookahead, "twice the parallelism")
	require.Equal(t, int64(5), d.maxInFlight())
}

func TestBatchesThatArriveTwiceOrOverlapAreDuplicates(t *testing.T) {
	d := newSimDataSet(300, 10)
	d.duration = 10 * time.Second
	// Every frontier page also sends its batch again, and a batch that
	// overlaps the first by starting one page later.
	d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, call int) {
		if page == 0 || page == 6 {
			env.RegisterDelayedCallback(func() {
				next := page + 1
				env.SignalWorkflow(SignalEnqueuePage, processor.EnqueuePageBatch{Number: next, Cursors: []string{d.cursor(next), d.cursor(next + 1)}})
				env.SignalWorkflow(SignalEnqueuePage, processor.EnqueuePageBatch{Number: next + 1, Cursors: []string{d.cursor(next + 1), d.cursor(next + 2)}})
			}, 5*time.Second)
		}
	}
	env := runSim(t, d, nil, lookaheadInput(d, 4, 6), nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	d.requireEveryItemOnce(t)
	require.Equal(t, int64(4), res.Progress.Counters.DuplicateSignals)
}

func TestMoreCursorsThanAskedKeepsWhatWasAsked(t *testing.T) {
	d := newSimDataSet(300, 10)
	d.duration = 10 * time.Second
	// Page 0 answers a lookahead of 3 with 8 cursors: pages 1..3 are
	// taken, page 3 is the frontier and enqueues 4.. itself.
	d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, call int) {
		if page == 0 {
			var cursors []string
			for n := int64(1); n <= 8; n++ {
				cursors = append(cursors, d.cursor(n))
			}
			env.SignalWorkflow(SignalEnqueuePage, processor.EnqueuePageBatch{Number: 1, Cursors: cursors})
		}
	}
	env := runSim(t, d, nil, lookaheadInput(d, 4, 3), nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	d.requireEveryItemOnce(t)
	require.Equal(t, int64(1), res.Progress.Counters.DuplicateSignals, "page 0's own batch arrived after the first")
}

func TestMalformedBatchesAreRefused(t *testing.T) {
	for name, body := range map[string]string{
		"no cursor":           `{"number": 1}`,
		"both forms":          `{"number": 1, "cursor": "10", "cursors": ["10"]}`,
		"empty batch":         `{"number": 1, "cursors": []}`,
		"oversized cursor":    `{"number": 1, "cursors": ["10", "` + strings.Repeat("x", MaxCursorBytes+1) + `"]}`,
		"unknown field":       `{"number": 1, "cursors": ["10"], "chain": 2}`,
		"number not positive": `{"number": 0, "cursors": ["10"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := parseEnqueue(json.RawMessage(body))
			require.Error(t, err)
		})
	}
	sender, cursors, err := parseEnqueue(json.RawMessage(`{"number": 5, "cursor": ""}`))
	require.NoError(t, err)
	require.Equal(t, int64(4), sender)
	require.Equal(t, []string{""}, cursors, "an empty cursor is a cursor")
}

// A frontier whose successors the orchestrator refused must never read as
// the end of the data: its chain breaks there, with the page kept for
// re-drive and its items counted once.
func TestRefusedFrontierSignalBreaksTheChainInsteadOfEndingIt(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	d.noSignal = true
	d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, call int) {
		next := page + 1
		cursor := d.cursor(next)
		if page == 3 {
			cursor = strings.Repeat("9", MaxCursorBytes+1)
		}
		if next < d.pages() {
			env.SignalWorkflow(SignalEnqueuePage, processor.EnqueuePage{Number: next, Cursor: cursor})
		}
	}
	env := runSim(t, d, nil, lookaheadInput(d, 2, 1), nil)

	_, res := failedWith(t, env, ReasonChainBroken)
	p := res.Progress
	require.Equal(t, int64(4), p.Pages.Completed, "pages 0..3 completed")
	require.Equal(t, int64(40), p.Items.Processed)
	require.Equal(t, int64(1), p.Pages.Failed)
	require.Equal(t, int64(1), p.Counters.MalformedSignals)
	require.Equal(t, ErrorTypeEnqueueRefused, res.Next.State.Parked[0].ErrorType)
	require.Contains(t, p.Message, "refused")
	require.Equal(t, ChainCounts{Total: 1, Broken: 1}, p.Chains)

	// Re-driven with the processor fixed, page 3 runs again only to
	// enqueue page 4: nothing is counted twice.
	d2 := newSimDataSet(100, 10)
	d2.duration = 10 * time.Second
	d2.clock = d.clock
	next := res.Next
	next.Redrive = "fixed"
	env = runSim(t, d2, nil, next, nil)
	res = succeeded(t, env)
	require.Equal(t, d.pages(), res.Progress.Pages.Completed)
	require.Equal(t, int64(100), res.Progress.Items.Processed)
	require.Zero(t, res.Progress.Pages.Failed)
}

func TestSeveralChainsWalkDisjointPartsOnce(t *testing.T) {
	d := newSimDataSet(1000, 10)
	d.duration = 10 * time.Second
	d.chains = []int{0, 250, 500, 750}
	var mid *Progress
	env := runSim(t, d, nil, simInput(d, 8), func(env *testsuite.TestWorkflowEnvironment) {
		mid = progressAt(env, 25*time.Second)
	})
	res := succeeded(t, env)
	p := res.Progress
	d.requireEveryItemOnce(t)
	require.Equal(t, int64(100), p.Pages.Completed)
	require.Equal(t, int64(1000), p.Items.Processed)
	require.Equal(t, ChainCounts{Total: 4, Done: 4}, p.Chains)
	require.Equal(t, ChainCounts{Total: 4}, mid.Chains)
	require.Equal(t, int64(8), mid.Pages.InFlight, "pages of 10 s overlap their successors in each chain")
	require.Equal(t, int64(8), d.maxInFlight())
	require.Contains(t, p.Message, "4 chains")
	// Page numbers are unique across the job.
	numbers := map[int64]bool{}
	for _, s := range d.startsSnapshot() {
		require.False(t, numbers[s.Page], "page number %d used twice", s.Page)
		numbers[s.Page] = true
	}
}

func TestChainsWithLookaheadShareTheSlots(t *testing.T) {
	d := newSimDataSet(2000, 10)
	d.duration = 10 * time.Second
	d.chains = []int{0, 500, 1000, 1500}
	env := runSim(t, d, nil, lookaheadInput(d, 12, 8), nil)
	res := succeeded(t, env)
	d.requireEveryItemOnce(t)
	require.Equal(t, ChainCounts{Total: 4, Done: 4}, res.Progress.Chains)
	require.Equal(t, int64(12), d.maxInFlight())
}

func TestMoreChainsThanSlotsStartAsSlotsFree(t *testing.T) {
	d := newSimDataSet(600, 10)
	d.duration = 10 * time.Second
	d.chains = []int{0, 100, 200, 300, 400, 500}
	var early *Progress
	env := runSim(t, d, nil, simInput(d, 2), func(env *testsuite.TestWorkflowEnvironment) {
		early = progressAt(env, 5*time.Second)
	})
	res := succeeded(t, env)
	d.requireEveryItemOnce(t)
	require.Equal(t, ChainCounts{Total: 6, Done: 6}, res.Progress.Chains)
	require.Equal(t, int64(2), d.maxInFlight())
	require.Equal(t, int64(2), early.Pages.InFlight)
	require.Equal(t, int64(2+4), early.Pages.Pending, "two frontiers and the first pages of the chains not started yet wait")
	require.Equal(t, ChainCounts{Total: 6}, early.Chains)
}

func TestOneBrokenChainFailsTheJobAfterTheOthersAndIsRedriven(t *testing.T) {
	d := newSimDataSet(400, 10)
	d.duration = 10 * time.Second
	d.chains = []int{0, 100, 200, 300}
	broken := false
	// The page at item 230 (chain 2) fails for good before enqueuing.
	fail := func(in processor.PageInput) bool { return strings.HasPrefix(in.Page.Cursor, "230:") && !broken }
	d.failIf = func(in processor.PageInput) error {
		if fail(in) {
			return temporal.NewNonRetryableApplicationError("table locked", "Locked", nil)
		}
		return nil
	}
	env := runSim(t, d, nil, simInput(d, 4), nil)
	_, res := failedWith(t, env, ReasonChainBroken)
	p := res.Progress
	require.Equal(t, ChainCounts{Total: 4, Done: 3, Broken: 1}, p.Chains)
	require.Equal(t, int64(3*10+3), p.Pages.Completed, "the other chains ran to their end, the broken one to page 230")
	require.Contains(t, p.Message, "1 of 4 chains")
	require.Regexp(t, `page \d+ failed for good`, p.Message)
	require.NotContains(t, p.Message, "230:300", "cursors stay out of messages")

	broken = true
	next := res.Next
	next.Redrive = "r1"
	d.clock = env.Now()
	env = runSim(t, d, nil, next, nil)
	res = succeeded(t, env)
	d.requireEveryItemOnce(t)
	require.Equal(t, int64(40), res.Progress.Pages.Completed)
	require.Equal(t, ChainCounts{Total: 4, Done: 4}, res.Progress.Chains)
}

func TestChainsAndLookaheadAcrossContinueAsNew(t *testing.T) {
	d := newSimDataSet(1200, 10)
	d.duration = 10 * time.Second
	d.chains = []int{0, 300, 600, 900}
	in := lookaheadInput(d, 6, 5)
	in.ContinueAsNewAfterPages = 25
	runs := 0
	for {
		runs++
		require.Less(t, runs, 20)
		env := runSim(t, d, nil, in, nil)
		if err := env.GetWorkflowError(); err == nil {
			res := succeeded(t, env)
			require.Equal(t, int64(120), res.Progress.Pages.Completed)
			require.Equal(t, ChainCounts{Total: 4, Done: 4}, res.Progress.Chains)
			break
		}
		in = continuedAsNew(t, env)
		require.LessOrEqual(t, len(in.State.Pending)+len(in.State.Frontiers), 6+5+4, "carried waiting pages stay bounded")
	}
	require.GreaterOrEqual(t, runs, 4)
	d.requireEveryItemOnce(t)
}

func TestSerialChainIsChainBound(t *testing.T) {
	// A processor that cannot signal hands its successor over in its
	// result: 300 pages of 1 s, one at a time, whatever the parallelism.
	d := newSimDataSet(3000, 10)
	d.duration = time.Second
	d.noSignal, d.nextCursor = true, true
	var mid *Progress
	env := runSim(t, d, nil, simInput(d, 8), func(env *testsuite.TestWorkflowEnvironment) {
		mid = progressAt(env, 100*time.Second)
	})
	succeeded(t, env)
	require.True(t, mid.ChainBound, "%+v", mid.Occupancy)
	require.InDelta(t, 1, mid.Occupancy.MeanInFlight, 0.2)
	require.InDelta(t, 8, mid.Occupancy.MeanEffective, 0.01)

	d = newSimDataSet(3000, 10)
	d.duration = time.Second
	env = runSim(t, d, nil, lookaheadInput(d, 8, 8), func(env *testsuite.TestWorkflowEnvironment) {
		mid = progressAt(env, 30*time.Second)
	})
	succeeded(t, env)
	require.False(t, mid.ChainBound, "%+v", mid.Occupancy)
	require.Greater(t, mid.Occupancy.MeanInFlight, 6.0)
}

// TestWaitingPagesAreBoundedByBytes: with cursors near the size limit and a
// lookahead that would queue hundreds of them, frontier pages are asked for
// one successor once the waiting pages' cursors reach MaxWaitingBytes, so
// that the queue a run carries to the next stays small.
func TestWaitingPagesAreBoundedByBytes(t *testing.T) {
	d := newSimDataSet(20000, 10)
	d.duration = time.Second
	d.cursorPad = 4000
	in := simInput(d, 200)
	in.Processor.Lookahead = 400
	maxPending := int64(0)
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		for s := 1; s < 200; s++ {
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(QueryProgress)
				require.NoError(t, err)
				var p Progress
				require.NoError(t, v.Get(&p))
				maxPending = max(maxPending, p.Pages.Pending)
			}, time.Duration(s)*time.Second/2)
		}
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	bytes := maxPending * int64(d.cursorPad)
	t.Logf("at most %d pages waiting, %d KiB of cursors (lookahead 400, parallelism 200)", maxPending, bytes>>10)
	require.LessOrEqual(t, bytes, int64(MaxWaitingBytes+processor.MaxEnqueueBytes), "waiting cursors past the bound and one batch")
	asked1 := 0
	for _, s := range d.starts {
		if s.Lookahead == 1 {
			asked1++
		}
	}
	require.Positive(t, asked1, "frontiers were asked for one successor while the queue was full")
}
