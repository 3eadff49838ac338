package temporalbatch

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

func TestEnqueuePageSignalsAreDeduplicated(t *testing.T) {
	const items, pageSize = 100, 10
	tests := []struct {
		name string
		// onStart sends extra signals from each page.
		onStart       func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64, call int)
		parallelism   int
		wantDuplicate int64
		wantAhead     int64
		wantMalformed int64
	}{
		{
			name: "a page signalling its own number and the one before",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64, _ int) {
				if page > 0 {
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page, Cursor: "elsewhere"})
				}
				if page > 1 {
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page - 1, Cursor: "elsewhere"})
				}
			},
			parallelism:   1,
			wantDuplicate: (items/pageSize - 1) + (items/pageSize - 2),
		},
		{
			name: "every signal sent twice",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64, _ int) {
				if page+1 < d.pages() {
					// The processor's own signal follows: this one wins, the second is the duplicate.
					env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page + 1, Cursor: d.cursor(page + 1)})
				}
			},
			parallelism:   3,
			wantDuplicate: items/pageSize - 1,
		},
		{
			name: "a page number ahead of the frontier",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64, _ int) {
				env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: page + 5, Cursor: "skipped"})
			},
			parallelism: 1,
			wantAhead:   items / pageSize,
		},
		{
			name: "malformed bodies",
			onStart: func(d *simDataSet, env *testsuite.TestWorkflowEnvironment, page int64, _ int) {
				if page != 0 {
					return
				}
				for _, body := range []any{
					"page one, please",
					42,
					nil,
					json.RawMessage(`{"number": -1, "cursor": "10"}`),
					json.RawMessage(`{"number": 0, "cursor": "10"}`),
					json.RawMessage(`{"number": 1, "cursor": "10", "priority": "high"}`),
					json.RawMessage(`{"number": "1", "cursor": "10"}`),
					json.RawMessage(`[1, "10"]`),
					processor.EnqueuePage{Number: 1, Cursor: strings.Repeat("c", MaxCursorBytes+1)},
				} {
					env.SignalWorkflow(processor.EnqueuePageSignal, body)
				}
			},
			parallelism:   2,
			wantMalformed: 9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(items, pageSize)
			d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, call int) { tt.onStart(d, env, page, call) }
			env := runSim(t, d, nil, simInput(d, tt.parallelism), nil)
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)
			for page := range d.pages() {
				require.Equal(t, 1, d.callsOf(page), "page %d runs once", page)
			}
			c := res.Progress.Counters
			require.Equal(t, tt.wantDuplicate, c.DuplicateSignals, "duplicate signals")
			require.Equal(t, tt.wantAhead, c.UnexpectedSignals, "unexpected signals")
			require.Equal(t, tt.wantMalformed, c.MalformedSignals, "malformed signals")
		})
	}
}

func TestSignalAfterTheChainEndedIsUnexpected(t *testing.T) {
	d := newSimDataSet(30, 10)
	// The last page completes at once while the first two still run.
	d.pageDuration = func(page int64) time.Duration {
		if page == 2 {
			return 0
		}
		return 10 * time.Second
	}
	env := runSim(t, d, nil, simInput(d, 3), func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: 3, Cursor: "30"})
		}, 5*time.Second)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, int64(1), res.Progress.Counters.UnexpectedSignals)
}

func TestMalformedControlSignalsAreCounted(t *testing.T) {
	d := newSimDataSet(50, 10)
	in := simInput(d, 1)
	in.Desired.Suspend = true
	var during *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, "resume")
			env.SignalWorkflow(SignalDesiredState, json.RawMessage(`{"generation": 2, "parallelism": 3, "suspend": false, "colour": "red"}`))
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: -3})
			env.SignalWorkflow(SignalRedrive, RedriveRequest{})
			env.SignalWorkflow(SignalRedrive, json.RawMessage(`{"id": 7}`))
		}, time.Minute)
		during = progressAt(env, 2*time.Minute)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 1})
		}, 3*time.Minute)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, StateSuspended, during.State, "no malformed message resumed the job")
	require.Equal(t, int64(1), during.Generation)
	require.Equal(t, int64(5), res.Progress.Counters.MalformedSignals)
	require.Empty(t, res.Progress.LastRedrive)
}

func TestNextCursorFallback(t *testing.T) {
	t.Run("a processor that cannot signal", func(t *testing.T) {
		d := newSimDataSet(95, 10)
		d.noSignal, d.nextCursor = true, true
		d.duration = 10 * time.Second
		env := runSim(t, d, nil, simInput(d, 4), nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)
		require.Equal(t, 1, res.Progress.Parallelism.MaxAchieved, "without signals pages run one after another")
		require.Equal(t, int64(1), d.maxInFlight())
		for page := range d.pages() {
			require.Equal(t, 1, d.callsOf(page))
		}
	})
	t.Run("a processor that signals and also returns the cursor", func(t *testing.T) {
		d := newSimDataSet(95, 10)
		d.nextCursor = true
		d.duration = 10 * time.Second
		env := runSim(t, d, nil, simInput(d, 4), nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)
		require.Equal(t, 4, res.Progress.Parallelism.MaxAchieved, "the signal pipelines pages")
		for page := range d.pages() {
			require.Equal(t, 1, d.callsOf(page), "page %d is enqueued once", page)
		}
		c := res.Progress.Counters
		require.Zero(t, c.DuplicateSignals+c.UnexpectedSignals+c.MalformedSignals)
	})
	t.Run("a next cursor from a page that is not the frontier", func(t *testing.T) {
		// Page 0 enqueues pages 1 and 2 by signal; its result's cursor names
		// page 1, which is already queued, and must not enqueue anything.
		d := newSimDataSet(50, 10)
		d.nextCursor = true
		d.onStart = func(env *testsuite.TestWorkflowEnvironment, page int64, _ int) {
			if page == 0 {
				env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: 1, Cursor: "10"})
				env.SignalWorkflow(processor.EnqueuePageSignal, processor.EnqueuePage{Number: 2, Cursor: "20"})
			}
		}
		env := runSim(t, d, nil, simInput(d, 1), nil)
		res := succeeded(t, env)
		requireCompleteJob(t, d, res.Progress)
		for page := range d.pages() {
			require.Equal(t, 1, d.callsOf(page), "page %d", page)
		}
	})
}

func TestPageInputCarriesTheJob(t *testing.T) {
	d := newSimDataSet(20, 10)
	d.firstCursor = "0"
	in := simInput(d, 1)
	var mu sync.Mutex
	var got []processor.PageInput
	env := newSimEnv(t, d, nil)
	env.SetOnActivityStartedListener(func(_ *activity.Info, _ context.Context, args converter.EncodedValues) {
		var pi processor.PageInput
		if err := args.Get(&pi); err == nil {
			mu.Lock()
			got = append(got, pi)
			mu.Unlock()
		}
	})
	env.ExecuteWorkflow(WorkflowType, in)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	require.Equal(t, in.Job, got[0].Job)
	require.Equal(t, processor.PageRef{Number: 0, Cursor: "0", Size: 10}, got[0].Page)
	require.JSONEq(t, `{"percent":3}`, string(got[0].Args))
	require.Equal(t, processor.PageRef{Number: 1, Cursor: "10", Size: 10}, got[1].Page)
}

// The orchestrator reads the EnqueuePage bodies of the contract's golden
// fixtures (testdata/contract) as the page that sent them and its cursors.
func TestEnqueueFixturesParse(t *testing.T) {
	for file, want := range map[string][]string{
		"enqueue-single.json": {"sku-00800"},
		"enqueue-batch.json":  {"sku-00800", "sku-00900", "sku-01000", "sku-01100"},
	} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "contract", file))
		require.NoError(t, err)
		sender, cursors, err := parseEnqueue(raw)
		require.NoError(t, err, file)
		require.Equal(t, int64(7), sender, file)
		require.Equal(t, want, cursors, file)
	}
}
