package temporalbatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

func atMostOnceInput(d *simDataSet, parallelism int) Input {
	in := simInput(d, parallelism)
	in.Processor.Delivery = AtMostOnce
	return in
}

func withDetails(msg, errType string, d processor.ErrorDetails) error {
	return temporal.NewApplicationErrorWithOptions(msg, errType, temporal.ApplicationErrorOptions{Details: []any{d}})
}

// requireNoItemTwice: AtMostOnce's promise, whatever else happened.
func requireNoItemTwice(t *testing.T, d *simDataSet) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for item, n := range d.seen {
		require.LessOrEqual(t, n, 1, "item %d processed %d times", item, n)
	}
}

func TestAtMostOncePageWithUnknownOutcomeIsRedrivenOnlyWhenAskedFor(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	// Page 3 fails after it processed its items (the sim marks them seen);
	// page 6 says it processed nothing.
	d.afterEnqueue = func(page int64, call int) error {
		switch {
		case page == 3 && call == 1:
			return temporal.NewApplicationError("connection reset", "Flaky")
		case page == 6 && call == 1:
			return withDetails("fetch failed", "FetchFailed", processor.ErrorDetails{NothingProcessed: true})
		}
		return nil
	}
	env := runSim(t, d, nil, atMostOnceInput(d, 2), nil)
	failed := pagesFailed(t, env)
	p := failed.Progress
	require.Equal(t, int64(2), p.Pages.Failed)
	require.Equal(t, int64(1), p.Pages.Unknown, "page 3 may have processed its items")
	require.Len(t, p.FailedPages, 2)
	require.True(t, p.FailedPages[0].OutcomeUnknown)
	require.False(t, p.FailedPages[1].OutcomeUnknown, "page 6 said it processed nothing")
	require.Contains(t, p.Message, "--include-unknown")

	// A plain re-drive runs page 6 again and leaves page 3 failed.
	next := failed.Next
	next.Redrive = "plain"
	env = runSim(t, d, nil, next, nil)
	again := pagesFailed(t, env)
	require.Equal(t, 1, d.callsOf(3), "a page whose outcome is unknown does not run again unasked")
	require.Equal(t, 2, d.callsOf(6))
	require.Equal(t, int64(1), again.Progress.Pages.Failed)
	require.Equal(t, int64(1), again.Progress.Pages.Unknown)
	requireNoItemTwice(t, d)

	// Asked for explicitly, it runs again and the job succeeds.
	next = again.Next
	next.Redrive, next.RedriveIncludeUnknown = "checked", true
	env = runSim(t, d, nil, next, nil)
	res := succeeded(t, env)
	require.Equal(t, 2, d.callsOf(3))
	require.Zero(t, res.Progress.Pages.Failed)
	require.Zero(t, res.Progress.Pages.Unknown)
	require.Equal(t, d.pages(), res.Progress.Pages.Completed)
}

func TestAtMostOncePagesCancelledInFlightAreNotRunAgain(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	env := runSim(t, d, nil, atMostOnceInput(d, 2), func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(env.CancelWorkflow, 25*time.Second)
	})
	var canErr *temporal.CanceledError
	require.True(t, errors.As(env.GetWorkflowError(), &canErr))
	var res Result
	require.NoError(t, canErr.Details(&res))
	p := res.Progress
	require.Equal(t, int64(4), p.Pages.Completed, "pages 0-3 completed; 4 and 5 were in flight")
	require.Equal(t, int64(2), p.Pages.Unknown, "pages 4 and 5 were cancelled in flight")
	require.Equal(t, int64(2), p.ByType[ErrorTypePageCancelled])
	require.Equal(t, []Page{{Number: 6, Cursor: "60"}}, queued(res.Next.State), "only the page that never started waits")

	next := res.Next
	next.Redrive = "after-cancel"
	env = runSim(t, d, nil, next, nil)
	failed := pagesFailed(t, env)
	require.Equal(t, int64(2), failed.Progress.Pages.Unknown)
	require.Equal(t, d.pages()-2, failed.Progress.Pages.Completed)
	for page := range d.pages() {
		require.Equal(t, 1, d.callsOf(page), "page %d", page)
	}
	requireNoItemTwice(t, d)
}

func TestAtMostOnceFrontierWithUnknownOutcomeKeepsItsChainBroken(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.beforeEnqueue = failCalls(4, 1, temporal.NewApplicationError("timeout talking to the API", "Flaky"))
	env := runSim(t, d, nil, atMostOnceInput(d, 1), nil)
	_, broken := failedWith(t, env, ReasonChainBroken)
	require.Contains(t, broken.Progress.Message, "--include-unknown")

	next := broken.Next
	next.Redrive = "plain"
	env = runSim(t, d, nil, next, nil)
	_, still := failedWith(t, env, ReasonChainBroken)
	require.Equal(t, 1, d.callsOf(4))
	require.Equal(t, 1, still.Progress.Chains.Broken)

	next = still.Next
	next.Redrive, next.RedriveIncludeUnknown = "checked", true
	env = runSim(t, d, nil, next, nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
}

func TestSensitiveMessagesAreWithheld(t *testing.T) {
	d := newSimDataSet(100, 10)
	secret := "dial postgres://app:hunter2@db:5432/shop: refused"
	d.afterEnqueue = failCalls(2, 1, processorError(secret))
	d.result = func(page int64, res *processor.PageResult) {
		if page == 5 {
			res.ItemsFailed = 1
			res.ItemsProcessed--
			res.FailedItems = []processor.FailedItem{{Item: "sku-1", Type: "Rejected", Message: "row " + secret, Sensitive: true}}
		}
	}
	env := runSim(t, d, nil, simInput(d, 2), nil)
	res := pagesFailed(t, env)
	p := res.Progress
	require.NotContains(t, p.Message, "hunter2")
	for _, f := range p.Recent {
		require.NotContains(t, f.Message, "hunter2")
		require.Contains(t, f.Message, "message withheld")
	}
	require.Len(t, p.Recent, 2)
	require.Equal(t, int64(1), p.ByType["Leaky"], "the type is kept")
	require.Equal(t, int64(1), p.ByType["Rejected"])
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "hunter2")
}

func processorError(msg string) error {
	return temporal.NewApplicationErrorWithOptions(msg, "Leaky", temporal.ApplicationErrorOptions{
		NonRetryable: true,
		Details:      []any{processor.ErrorDetails{Sensitive: true}},
	})
}

func TestRedriveIDsAreRememberedBeyondTheLast(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 30 * time.Second
	// Page 3 fails as it starts (at 90s), three times; pages 4-9 keep the
	// job running until 270s.
	d.afterEnqueue = failCalls(3, 3, corruptPage(3))
	var afterRepeat *Progress
	env := runSim(t, d, nil, simInput(d, 1), func(env *testsuite.TestWorkflowEnvironment) {
		redrive := func(id string, at time.Duration) {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRedrive, RedriveRequest{ID: id}) }, at)
		}
		redrive("a", 100*time.Second) // page 3 runs again and fails again
		redrive("b", 150*time.Second) // and again
		redrive("a", 160*time.Second) // an older request, delivered again: nothing happens
		afterRepeat = progressAt(env, 170*time.Second)
		redrive("c", 180*time.Second) // page 3 succeeds
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, int64(1), afterRepeat.Pages.Failed, "a repeated older re-drive ID does not re-queue")
	require.Equal(t, "b", afterRepeat.LastRedrive)
	require.Equal(t, 4, d.callsOf(3))
}

func TestAttemptsCountAcrossStuckRetries(t *testing.T) {
	d := newSimDataSet(60, 10)
	var totals []int32
	d.onInput = func(in processor.PageInput) {
		if in.Page.Number == 2 {
			totals = append(totals, in.TotalPriorAttempts)
		}
	}
	d.afterEnqueue = failCalls(2, 6, temporal.NewApplicationError("upstream down", "Flaky"))
	in := simInput(d, 2)
	in.Retry.MaximumAttempts = 2
	in.Retry.StuckPageRetryInterval = time.Minute
	env := runSim(t, d, nil, in, nil)
	succeeded(t, env)
	require.Equal(t, 7, d.callsOf(2))
	// Each round of two attempts counts both: the processor's total attempt
	// is the activity's attempt plus these.
	require.Equal(t, []int32{0, 0, 2, 2, 4, 4, 6}, totals)
}

func TestJSONStringBytesMatchesEncodingJSON(t *testing.T) {
	alphabet := []string{"a", "\"", "\\", "\n", "\x01", "<", "&", "é", "\u2028", "\xff", "😀", "\x7f"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b strings.Builder
		for range r.IntN(40) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		s := b.String()
		raw, err := json.Marshal(s)
		require.NoError(t, err)
		got := jsonStringBytes(s)
		// \b and \f may take two bytes where the count says six: never fewer.
		require.GreaterOrEqual(t, got, len(raw)-2, "%q", s)
		require.LessOrEqual(t, got, len(raw)-2+4*strings.Count(s, "\b")+4*strings.Count(s, "\f"), "%q", s)
	}
}

// The message of a job stopped by maxFailedPages counts the pages cancelled
// in flight after it stopped, and says how to run them again.
func TestMaxFailedPagesMessageCountsThePagesCancelledAfterIt(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.pageDuration = func(page int64) time.Duration {
		if page == 3 {
			return 0
		}
		return 10 * time.Second
	}
	d.afterEnqueue = failCalls(3, 1, temporal.NewApplicationError("connection reset", "Flaky"))
	in := atMostOnceInput(d, 3)
	in.FailurePolicy.MaxFailedPages = new(int64(0))
	env := runSim(t, d, nil, in, nil)
	appErr, res := failedWith(t, env, ReasonPagesFailed)
	p := res.Progress
	require.Greater(t, p.Pages.Failed, int64(1), "page 3 and the pages cancelled in flight")
	require.Contains(t, appErr.Error(), fmt.Sprintf("%d pages failed for good, more than failurePolicy.maxFailedPages (0)", p.Pages.Failed))
	require.Contains(t, appErr.Error(), "--include-unknown")
	requireNoItemTwice(t, d)
}
