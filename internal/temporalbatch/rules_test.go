package temporalbatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

func rule(action FailureAction, msg string, types ...string) FailureRule {
	return FailureRule{Action: action, OnErrorTypes: types, OnMessageContains: msg}
}

// A FailJob rule fails the job at the first matching failure, without
// running the rest; the page is kept for a re-drive.
func TestFailJobRuleFailsTheJobAtOnce(t *testing.T) {
	d := newSimDataSet(1000, 10)
	d.duration = 10 * time.Second
	d.afterEnqueue = failCalls(3, -1, processor.Retryable("Unauthorized", "token revoked"))
	in := simInput(d, 2)
	in.FailurePolicy.Rules = []FailureRule{rule(ActionFailJob, "", "Unauthorized")}
	env := runSim(t, d, nil, in, nil)
	appErr, res := failedWith(t, env, ReasonFailurePolicyRule)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Error(), "page 3 failed with Unauthorized, which failurePolicy.rules[0] fails the job for (FailJob): token revoked")
	require.Contains(t, appErr.Error(), "kubectl batch redrive")
	p := res.Progress
	require.Equal(t, ReasonFailurePolicyRule, p.Reason)
	require.Equal(t, int64(1), p.Pages.Failed)
	require.Equal(t, int64(3), p.FailedPages[0].Number, "kept for a re-drive")
	require.Less(t, p.Pages.Completed, d.pages()-1, "the job stopped without running the rest")
	require.Equal(t, 5, d.callsOf(3), "the retry policy's attempts ran before the failure reached the rule")
	d.requireContract(t)
}

// A FailPage rule fails the page for good after its retries, where it
// would otherwise be stuck and retried.
func TestFailPageRuleSkipsStuckRetries(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(3, -1, processor.Retryable("Flaky", "connection reset"))
	in := simInput(d, 2)
	in.Retry.MaximumAttempts = 2
	in.Retry.StuckPageRetryInterval = time.Minute
	in.FailurePolicy.Rules = []FailureRule{rule(ActionFailPage, "", "Flaky")}
	env := runSim(t, d, nil, in, nil)
	res := pagesFailed(t, env)
	require.Equal(t, 2, d.callsOf(3), "one round of attempts, no stuck retry")
	require.Equal(t, d.pages()-1, res.Progress.Pages.Completed)
	require.Zero(t, res.Progress.Pages.Stuck)
}

// An Ignore rule counts the page as done and its items as failed: the job
// succeeds.
func TestIgnoreRuleCountsThePageAsDone(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(3, -1, corruptPage(3))
	in := simInput(d, 2)
	in.FailurePolicy.Rules = []FailureRule{rule(ActionIgnore, "", "Corrupt")}
	env := runSim(t, d, nil, in, nil)
	res := succeeded(t, env)
	p := res.Progress
	require.Equal(t, d.pages(), p.Pages.Completed)
	require.Zero(t, p.Pages.Failed)
	require.Equal(t, int64(1), p.Counters.PagesIgnored)
	require.Equal(t, int64(10), p.Items.Failed, "the page's items, by its size")
	require.Equal(t, int64(90), p.Items.Processed)
	require.Equal(t, map[string]int64{"Corrupt": 1}, p.ByType)
	require.Equal(t, int64(3), p.Recent[0].Page)
	d.requireContract(t)
}

// An Ignore rule cannot pass over a chain's frontier that failed before it
// enqueued its successor: the chain breaks, as for any failure.
func TestIgnoreRuleOnAFrontierBreaksTheChain(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.beforeEnqueue = failCalls(4, -1, corruptPage(4))
	in := simInput(d, 2)
	in.FailurePolicy.Rules = []FailureRule{rule(ActionIgnore, "", "Corrupt")}
	env := runSim(t, d, nil, in, nil)
	_, res := failedWith(t, env, ReasonChainBroken)
	require.Zero(t, res.Progress.Counters.PagesIgnored)
	require.Equal(t, int64(4), res.Progress.FailedPages[0].Number, "kept for a re-drive")
}

// A Retry rule parks a page as stuck, to run again, even after a
// non-retryable error.
func TestRetryRuleRetriesNonRetryableFailures(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(3, 2, temporal.NewNonRetryableApplicationError("lock held", "Locked", nil))
	in := simInput(d, 2)
	in.Retry.StuckPageRetryInterval = time.Minute
	in.FailurePolicy.Rules = []FailureRule{rule(ActionRetry, "", "Locked")}
	env := runSim(t, d, nil, in, nil)
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, 3, d.callsOf(3), "one attempt a round: the error is not retryable")
}

// The first rule that matches acts; onMessageContains narrows a rule; a
// failure no rule matches follows the retry policy.
func TestFirstMatchingRuleActs(t *testing.T) {
	rules := []FailureRule{
		rule(ActionIgnore, "row 7", "Corrupt", "Invalid"),
		rule(ActionFailJob, "", "Corrupt"),
		rule(ActionIgnore, "row", "Corrupt"), // never reached: the second rule takes every Corrupt
	}
	tests := []struct {
		name       string
		err        error
		wantReason string // "" succeeded
	}{
		{name: "the first rule by its message", err: temporal.NewNonRetryableApplicationError("bad row 7", "Corrupt", nil)},
		{name: "the first rule by its second type", err: temporal.NewNonRetryableApplicationError("bad row 7", "Invalid", nil)},
		{name: "another message: the second rule", err: temporal.NewNonRetryableApplicationError("bad row 8", "Corrupt", nil), wantReason: ReasonFailurePolicyRule},
		{name: "no rule: the retry policy", err: temporal.NewNonRetryableApplicationError("bad row 8", "Invalid", nil), wantReason: ReasonPagesFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(100, 10)
			d.afterEnqueue = failCalls(3, -1, tt.err)
			in := simInput(d, 1)
			in.FailurePolicy.Rules = rules
			env := runSim(t, d, nil, in, nil)
			if tt.wantReason == "" {
				require.Equal(t, int64(1), succeeded(t, env).Progress.Counters.PagesIgnored)
				return
			}
			failedWith(t, env, tt.wantReason)
		})
	}
}

// maxFailedPages as a percentage fails the job early once the failed pages
// are more than that share of the pages completed or failed, judged from
// PercentMinBase pages on.
func TestMaxFailedPagesPercent(t *testing.T) {
	pct := func(n int32) *int32 { return &n }
	for _, tt := range []struct {
		name      string
		pct       int32
		wantEarly bool
	}{
		{name: "5% with 10% failing: early", pct: 5, wantEarly: true},
		{name: "20% with 10% failing: the job's end decides", pct: 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(3000, 10) // 300 pages, every tenth fails
			d.afterEnqueue = func(page int64, _ int) error {
				if page%10 == 5 {
					return corruptPage(page)
				}
				return nil
			}
			in := simInput(d, 2)
			in.FailurePolicy.MaxFailedPagesPercent = pct(tt.pct)
			in.FailurePolicy.ToleratedFailedPages = 30
			env := runSim(t, d, nil, in, nil)
			if !tt.wantEarly {
				succeeded(t, env)
				return
			}
			appErr, res := failedWith(t, env, ReasonPagesFailed)
			require.Contains(t, appErr.Error(), "more than failurePolicy.maxFailedPages (5% of the")
			p := res.Progress
			require.GreaterOrEqual(t, p.Pages.Completed+p.Pages.Failed, int64(PercentMinBase), "not before the base")
			require.Less(t, p.Pages.Completed, int64(150), "the job stopped early")
		})
	}
}

// maxFailedItems fails the job once more items failed than it allows: a
// count as soon as it is passed, a percentage from PercentMinBase items
// on, and at the job's end whatever the base.
func TestMaxFailedItems(t *testing.T) {
	count := func(n int64) *int64 { return &n }
	pct := func(n int32) *int32 { return &n }
	tests := []struct {
		name    string
		items   int
		policy  FailurePolicy
		wantEnd bool // failed at the end, every page done; else early
		wantOK  bool
	}{
		{name: "a count: early", items: 1000, policy: FailurePolicy{MaxFailedItems: count(5)}},
		{name: "a count not reached", items: 50, policy: FailurePolicy{MaxFailedItems: count(5)}, wantOK: true},
		{name: "a percentage: early", items: 1000, policy: FailurePolicy{MaxFailedItemsPercent: pct(5)}},
		{name: "a percentage under its base: at the end", items: 50, policy: FailurePolicy{MaxFailedItemsPercent: pct(5)}, wantEnd: true},
		{name: "a percentage not reached", items: 1000, policy: FailurePolicy{MaxFailedItemsPercent: pct(10)}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(tt.items, 10)
			d.result = func(page int64, res *processor.PageResult) { // one item of ten fails
				res.ItemsFailed = 1
				res.ItemsProcessed--
				res.FailedItems = []processor.FailedItem{{Item: "x", Type: "Rejected"}}
			}
			in := simInput(d, 1)
			in.FailurePolicy = tt.policy
			env := runSim(t, d, nil, in, nil)
			if tt.wantOK {
				succeeded(t, env)
				return
			}
			appErr, res := failedWith(t, env, ReasonItemsFailed)
			require.Contains(t, appErr.Error(), "items failed, more than failurePolicy.maxFailedItems")
			if tt.wantEnd {
				require.Equal(t, d.pages(), res.Progress.Pages.Completed)
			} else {
				require.Less(t, res.Progress.Pages.Completed, d.pages())
			}
		})
	}
}

// Rules set by the desired state while the job runs act from then on.
func TestFailureRulesSetWhileRunning(t *testing.T) {
	d := newSimDataSet(200, 10)
	d.duration = 10 * time.Second
	d.afterEnqueue = corruptPages(2, 12)
	in := simInput(d, 1)
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 1, FailurePolicy: &FailurePolicy{Rules: []FailureRule{rule(ActionIgnore, "", "Corrupt")}}})
		}, time.Minute)
	})
	res := pagesFailed(t, env)
	p := res.Progress
	require.Equal(t, int64(1), p.Pages.Failed, "page 2 failed before the rule")
	require.Equal(t, int64(2), p.FailedPages[0].Number)
	require.Equal(t, int64(1), p.Counters.PagesIgnored, "page 12 after it")
}

func TestFailurePolicyValidation(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	pct := func(v int32) *int32 { return &v }
	tests := []struct {
		name string
		fp   FailurePolicy
		want string
	}{
		{name: "a percentage over 100", fp: FailurePolicy{MaxFailedPagesPercent: pct(101)}, want: "failurePolicy.maxFailedPages is 101%"},
		{name: "items over 100%", fp: FailurePolicy{MaxFailedItemsPercent: pct(150)}, want: "failurePolicy.maxFailedItems is 150%"},
		{name: "a count and a percentage", fp: FailurePolicy{MaxFailedPages: n(1), MaxFailedPagesPercent: pct(1)}, want: "both a count and a percentage"},
		{name: "negative items", fp: FailurePolicy{MaxFailedItems: n(-1)}, want: "failurePolicy.maxFailedItems is -1"},
		{name: "an unknown action", fp: FailurePolicy{Rules: []FailureRule{rule("Panic", "", "X")}}, want: `failurePolicy.rules[0].action is "Panic"`},
		{name: "no error type", fp: FailurePolicy{Rules: []FailureRule{rule(ActionIgnore, "")}}, want: "failurePolicy.rules[0].onErrorTypes is empty"},
		{name: "the same matcher twice", fp: FailurePolicy{Rules: []FailureRule{rule(ActionIgnore, "x", "A"), rule(ActionFailJob, "x", "A")}}, want: "failurePolicy.rules[1] matches what failurePolicy.rules[0] matches"},
		{name: "too many rules", fp: FailurePolicy{Rules: make([]FailureRule, MaxFailureRules+1)}, want: "failurePolicy.rules has 21 rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, tt.fp.validate(), tt.want)
		})
	}
	require.NoError(t, FailurePolicy{MaxFailedPagesPercent: pct(10), MaxFailedItems: n(0), Rules: []FailureRule{rule(ActionIgnore, "x", "A"), rule(ActionFailJob, "", "A")}}.validate())
}
