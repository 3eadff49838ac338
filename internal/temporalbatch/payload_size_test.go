package temporalbatch

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// payloadBudget is the most a continue-as-new input or a Result may take as
// a JSON payload: Temporal rejects blobs over 2 MiB by default, and the
// budget keeps room below it for the envelope and what the worst case below
// leaves out (pending pages).
const payloadBudget = 3 << 19 // 1.5 MiB

// worstCaseOrchestrator builds the largest state the limits let a job carry:
// failed pages with the largest cursors until the job ends for them, the
// failure handler's queue filled with item failures until it takes no more,
// Recent and ByType full, the most chains each with a refusal, processor
// cursors and args at their limits, the re-drive IDs remembered. escaping:
// the cursors are made of a character encoding/json escapes to six bytes,
// and the run counts JSON escapes (changeUnknownOutcomes).
func worstCaseOrchestrator(t *testing.T, bounded, escaping bool) *orchestrator {
	t.Helper()
	fill := "c"
	if escaping {
		fill = "<"
	}
	cursor := func(i int) string {
		s := fmt.Sprintf("%08d", i)
		return s + strings.Repeat(fill, MaxCursorBytes-len(s))
	}
	typeName := func(i int) string { return fmt.Sprintf("ErrorType%023d", i) } // 32 bytes
	message := strings.Repeat("m", MaxMessageBytes)

	cursors := make([]string, MaxChains)
	for i := range cursors {
		cursors[i] = strings.Repeat("k", MaxCursorsBytes/MaxChains)
	}
	args := json.RawMessage(`"` + strings.Repeat("a", MaxArgsBytes-2) + `"`)
	in := Input{
		Job:       processor.JobRef{Namespace: "default", Name: strings.Repeat("j", 63), WorkflowID: "batchjob-default-" + strings.Repeat("j", 63)},
		TaskQueue: "worker-queue",
		Processor: ProcessorSpec{Name: "ProcessPage", PageSize: 1000, Args: args, Cursors: cursors,
			Timeout: time.Minute, HeartbeatTimeout: time.Minute, Delivery: AtLeastOnce},
		Retry:         RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
		FailurePolicy: FailurePolicy{Handler: "HandleFailures"},
		Desired:       DesiredState{Generation: 1, Parallelism: 10},
	}
	require.NoError(t, in.Validate(), "the worst case stays within what Validate admits")

	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	st := &State{StartTime: now, Applied: in.Desired, RampStart: now, ByType: map[string]int64{}}
	for i := range MaxChains {
		st.Chains = append(st.Chains, Chain{Frontier: int64(i), Refused: message})
	}
	st.ChainsStarted, st.NextNumber = MaxChains, 1<<40
	o := &orchestrator{
		in: in, st: st, now: now, version: versionLookahead,
		handlerTimeout: true, failedPagesFail: true, boundedPayloads: bounded, unknownOutcomes: escaping,
		logger:     log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		inflight:   map[int64]*flight{},
		frontierOf: map[int64]int{},
	}
	for i := range MaxFailureTypes {
		o.countType(typeName(1000+i), 1)
	}
	if escaping {
		for i := range MaxRememberedRedrives + 1 {
			o.redrive(RedriveRequest{ID: fmt.Sprintf("%0*d", MaxRedriveIDBytes, i)})
		}
		require.Len(t, st.Redrives, MaxRememberedRedrives)
	}
	// Pages fail for good, each with a few types, until the job ends for
	// them; none is forgotten, whatever the end.
	for n := int64(MaxChains); o.endState == ""; n++ {
		p := Page{Number: n, Cursor: cursor(int(n)), Attempts: 5}
		if st.FailedAs == nil {
			st.FailedAs = map[int64][]string{}
		}
		for k := range MaxPageFailureTypes {
			st.FailedAs[n] = append(st.FailedAs[n], typeName(k))
		}
		o.park(p, PageFailed, false, typeName(0), message, now)
	}
	require.Equal(t, ReasonTooManyFailedPages, o.endReason)
	// Item failures fill the handler's queue as far as it takes them.
	for i := 0; len(st.HandlerQueue) < HandlerQueueLimit; i++ {
		before, dropped := len(st.HandlerQueue), st.Counters.HandlerDropped
		o.record(Failure{Page: int64(i), Cursor: cursor(i), Item: strings.Repeat("i", 64), Type: typeName(1), Message: message, Time: now}, true)
		if len(st.HandlerQueue) == before && st.Counters.HandlerDropped > dropped {
			break
		}
	}
	require.Len(t, st.Recent, MaxRecentFailures)
	require.GreaterOrEqual(t, len(st.ByType), MaxFailureTypes)
	return o
}

func payloadSize(t *testing.T, v any) int {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return len(p.GetData())
}

// TestPayloadsStayUnderBudget: the continue-as-new input and the Result of
// the largest state a job can carry stay under payloadBudget.
func TestPayloadsStayUnderBudget(t *testing.T) {
	// Runs from before changeBoundedPayloads bound the same state by count
	// only: logged for comparison.
	old := worstCaseOrchestrator(t, false, false)
	t.Logf("unbounded by bytes: continue-as-new input %d bytes, Result %d bytes", payloadSize(t, old.nextInput()), payloadSize(t, old.result()))
	// Runs from before changeUnknownOutcomes count a cursor's bytes, not
	// its JSON: logged for comparison.
	unescaped := worstCaseOrchestrator(t, true, false)
	unescaped.in.Processor.Args = nil
	for i := range unescaped.st.Parked {
		unescaped.st.Parked[i].Cursor = strings.Repeat("<", MaxCursorBytes)
	}
	t.Logf("escapes not counted: continue-as-new input %d bytes", payloadSize(t, unescaped.nextInput()))

	for _, escaping := range []bool{false, true} {
		t.Run(fmt.Sprintf("escaping=%v", escaping), func(t *testing.T) {
			underBudget(t, worstCaseOrchestrator(t, true, escaping))
		})
	}
}

func underBudget(t *testing.T, o *orchestrator) {
	next := o.nextInput()
	res := o.result()
	inSize, resSize := payloadSize(t, next), payloadSize(t, res)
	t.Logf("continue-as-new input %d bytes (%.2f MiB), Result %d bytes (%.2f MiB), budget %d bytes; %d parked pages, %d queued for the handler, %d dropped",
		inSize, float64(inSize)/(1<<20), resSize, float64(resSize)/(1<<20), payloadBudget, len(next.State.Parked), len(next.State.HandlerQueue), next.State.Counters.HandlerDropped)
	require.LessOrEqual(t, inSize, payloadBudget, "continue-as-new input")
	require.LessOrEqual(t, resSize, payloadBudget, "Result")

	// Nothing a re-drive needs is lost: every failed page keeps its cursor
	// in Next, and the Result still lists every failed page.
	require.Len(t, res.Progress.FailedPages, len(res.Next.State.Parked))
	for i, p := range res.Next.State.Parked {
		require.Len(t, p.Cursor, MaxCursorBytes)
		require.Equal(t, p.Cursor, o.st.Parked[i].Cursor)
		require.Equal(t, p.Number, res.Progress.FailedPages[i].Number)
	}
}
