package temporalbatch

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

const testEnqueueToken = "4MXJ7ZQHT2C5VN3K6PWD8RBYGA"

// A job's own pages enqueue with its token, run after run; the token reaches
// every page's input and the input a re-drive starts from, and never the
// progress.
func TestEnqueueTokenLetsTheJobsPagesEnqueue(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = time.Second
	var mu sync.Mutex
	var tokens []string
	d.onInput = func(in processor.PageInput) {
		mu.Lock()
		tokens = append(tokens, in.EnqueueToken)
		mu.Unlock()
	}
	in := simInput(d, 3)
	in.EnqueueToken = testEnqueueToken
	in.ContinueAsNewAfterPages = 4

	env := runSim(t, d, nil, in, nil)
	runs := 1
	for env.GetWorkflowError() != nil {
		next := continuedAsNew(t, env)
		require.Equal(t, testEnqueueToken, next.EnqueueToken, "continue-as-new carries the token")
		runs++
		require.Less(t, runs, 10)
		env = runSim(t, d, nil, next, nil)
	}
	require.Greater(t, runs, 1, "the job continued as new")

	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Zero(t, res.Progress.Counters.RejectedSignals)
	mu.Lock()
	require.Len(t, tokens, int(d.pages()))
	for i, tok := range tokens {
		require.Equal(t, testEnqueueToken, tok, "input %d", i)
	}
	mu.Unlock()
	require.Equal(t, testEnqueueToken, res.Next.EnqueueToken, "a re-drive of the closed job starts from Next, token included")

	for what, v := range map[string]any{"result's progress": res.Progress, "progress query": queryProgress(t, env)} {
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		require.NotContains(t, string(raw), testEnqueueToken, "the %s shows the token", what)
	}
}

// A signal without the job's token is rejected: it enqueues nothing. Named
// after a page that goes on to enqueue its successors, it changes nothing;
// named after the last page, it breaks the chain there rather than letting
// it end (see TestEnqueueTokenRejectionNeverEndsAChain).
func TestEnqueueTokenRejectsOtherSenders(t *testing.T) {
	const items, pageSize = 100, 10
	last := int64(items/pageSize - 1)
	tests := []struct {
		name          string
		onStart       func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64)
		wantRejected  int64
		wantDuplicate int64
		wantMalformed int64
	}{
		{
			name: "a wrong token, naming each page as the sender",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64) {
				if page < last {
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page + 1, Cursor: "injected", Token: "guessed"})
				}
			},
			wantRejected: last,
		},
		{
			name: "no token",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64) {
				if page < last {
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page + 1, Cursor: "injected"})
				}
			},
			wantRejected: last,
		},
		{
			name: "a batch with a wrong token",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64) {
				if page < last {
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePageBatch{Number: page + 1, Cursors: []string{"injected", "more"}, Token: strings.ToLower(testEnqueueToken)})
				}
			},
			wantRejected: last,
		},
		{
			name: "a body that cannot be read is malformed, and breaks nothing",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64) {
				if page == last {
					env.SignalWorkflow(processor.EnqueuePageSignal, "page eleven, please")
				}
			},
			wantMalformed: 1,
		},
		{
			name: "the right token from another sender is the job's own: it enqueues",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64) {
				if page < last {
					// The processor's own signal follows: this one wins, the second is the duplicate.
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page + 1, Cursor: d.cursor(page + 1), Token: testEnqueueToken})
				}
			},
			wantDuplicate: last,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(items, pageSize)
			d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, _ int) { tt.onStart(d, env, page) }
			in := simInput(d, 3)
			in.EnqueueToken = testEnqueueToken
			env := runSim(t, d, nil, in, nil)
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)
			for page := range d.pages() {
				require.Equal(t, 1, d.callsOf(page), "page %d runs once", page)
			}
			c := res.Progress.Counters
			require.Equal(t, tt.wantRejected, c.RejectedSignals, "rejected signals")
			require.Equal(t, tt.wantDuplicate, c.DuplicateSignals, "duplicate signals")
			require.Equal(t, tt.wantMalformed, c.MalformedSignals, "malformed signals")
			require.Zero(t, c.UnexpectedSignals, "unexpected signals")
		})
	}
}

// A run whose input has no token (started before tokens, or continued from
// such a run) accepts signals with any token or none, as it always did.
func TestRunWithoutEnqueueTokenAcceptsEverySender(t *testing.T) {
	d := newSimDataSet(100, 10)
	last := d.pages() - 1
	d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, _ int) {
		if page < last {
			env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page + 1, Cursor: d.cursor(page + 1), Token: "anything"})
		}
	}
	env := runSim(t, d, nil, simInput(d, 3), nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	c := res.Progress.Counters
	require.Zero(t, c.RejectedSignals)
	require.Equal(t, last, c.DuplicateSignals, "the signals with a token won; the processor's own came second")
}

func jsonInt(n int64) string {
	raw, _ := json.Marshal(n)
	return string(raw)
}

// A frontier whose signal is rejected for its token never ends its chain:
// a processor built with a library that predates tokens breaks the chain at
// its first page, visibly, instead of the job succeeding with the rest of
// the data left; a signal from outside the job naming the last page turns
// the chain's end into a ChainBroken that a re-drive mends.
func TestEnqueueTokenRejectionNeverEndsAChain(t *testing.T) {
	t.Run("a processor that sends no token", func(t *testing.T) {
		d := newSimDataSet(100, 10)
		d.noToken = true
		in := simInput(d, 3)
		in.EnqueueToken = testEnqueueToken
		env := runSim(t, d, nil, in, nil)
		_, res := failedWith(t, env, ReasonChainBroken)
		require.Contains(t, res.Progress.Message, "enqueue token")
		require.Equal(t, int64(1), res.Progress.Pages.Completed)
		require.Equal(t, int64(1), res.Progress.Counters.RejectedSignals)
	})
	t.Run("an outsider naming the last page", func(t *testing.T) {
		d := newSimDataSet(100, 10)
		last := d.pages() - 1
		d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, call int) {
			if page == last && call == 1 {
				env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: last + 1, Cursor: "injected", Token: "guessed"})
			}
		}
		in := simInput(d, 3)
		in.EnqueueToken = testEnqueueToken
		env := runSim(t, d, nil, in, nil)
		_, broken := failedWith(t, env, ReasonChainBroken)
		require.Equal(t, d.pages(), broken.Progress.Pages.Completed, "every page ran and was counted")

		next := broken.Next
		next.Redrive = "mend"
		env = runSim(t, d, nil, next, nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)
		require.Equal(t, int64(100), res.Progress.Items.Processed, "the last page's items count once")
	})
}
