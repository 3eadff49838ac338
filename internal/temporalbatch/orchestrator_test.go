package temporalbatch

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
)

func TestJobCompletesWithExactCounters(t *testing.T) {
	tests := []struct {
		name        string
		items       int
		pageSize    int
		parallelism int
		duration    time.Duration
		wantRate    float64
	}{
		{name: "one page", items: 7, pageSize: 10, parallelism: 1},
		{name: "exact pages", items: 100, pageSize: 10, parallelism: 1},
		{name: "last page partial", items: 95, pageSize: 10, parallelism: 3},
		{name: "empty data set", items: 0, pageSize: 10, parallelism: 2},
		{name: "pages overlap", items: 250, pageSize: 10, parallelism: 4, duration: 10 * time.Second},
		{name: "a page every 10s", items: 100, pageSize: 10, parallelism: 1, duration: 10 * time.Second, wantRate: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(tt.items, tt.pageSize)
			d.duration = tt.duration
			env := runSim(t, d, nil, simInput(d, tt.parallelism), nil)
			res := succeeded(t, env)

			p := res.Progress
			pages := d.pages()
			require.Equal(t, pages, p.Pages.Completed)
			require.Equal(t, int64(tt.items), p.Items.Processed)
			require.Zero(t, p.Items.Failed)
			require.Zero(t, p.Pages.InFlight+p.Pages.Pending+p.Pages.Stuck+p.Pages.Failed)
			require.Empty(t, p.FailedPages)
			require.Equal(t, 1, p.Runs)
			require.NotNil(t, p.CompletionTime)
			require.Contains(t, p.Message, "items processed")
			if tt.wantRate > 0 {
				require.InDelta(t, tt.wantRate, p.ItemsPerSecond, 1e-9)
			}
			for page := range pages {
				require.Equal(t, 1, d.callsOf(page), "page %d runs once", page)
			}
			d.requireContract(t)

			// The query of the closed workflow agrees with its result.
			q := queryProgress(t, env)
			require.Equal(t, StateSucceeded, q.State)
			require.Equal(t, p.Counters, q.Counters)
		})
	}
}

func TestPagesInFlightNeverExceedParallelism(t *testing.T) {
	for _, parallelism := range []int{1, 3, 8} {
		t.Run("parallelism "+strconv.Itoa(parallelism), func(t *testing.T) {
			d := newSimDataSet(400, 10)
			d.duration = 10 * time.Second
			mid := (*Progress)(nil)
			env := runSim(t, d, nil, simInput(d, parallelism), func(env *testsuite.TestWorkflowEnvironment) {
				mid = progressAt(env, 45*time.Second)
			})
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)

			require.Equal(t, int64(parallelism), d.maxInFlight(), "the processor saw exactly the parallelism at most")
			require.Equal(t, parallelism, res.Progress.Parallelism.MaxAchieved)
			require.Equal(t, parallelism, res.Progress.Parallelism.Desired)
			require.Equal(t, int64(parallelism), mid.Pages.InFlight, "slots are kept full")
			require.Equal(t, parallelism, mid.Parallelism.Effective)
			require.Equal(t, StateRunning, mid.State)
		})
	}
}

func TestSuspendedJobStartsNothingUntilResumed(t *testing.T) {
	d := newSimDataSet(50, 10)
	in := simInput(d, 2)
	in.Desired = DesiredState{Generation: 1, Parallelism: 2, Suspend: true}

	var suspended *Progress
	var startedAt time.Time
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		startedAt = env.Now()
		suspended = progressAt(env, time.Hour)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 2})
		}, time.Hour+time.Second)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	require.Equal(t, StateSuspended, suspended.State)
	require.Equal(t, int64(1), suspended.Generation)
	require.Zero(t, suspended.Parallelism.Effective)
	require.Zero(t, suspended.Pages.InFlight)
	require.Equal(t, int64(1), suspended.Pages.Pending, "the first page waits")
	require.Equal(t, int64(2), res.Progress.Generation)
	for _, s := range d.startsSnapshot() {
		require.False(t, s.At.Before(startedAt.Add(time.Hour+time.Second)), "page %d started while suspended", s.Page)
	}
}

func TestSuspendMidRunLetsInFlightPagesFinish(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 10 * time.Second
	in := simInput(d, 2)

	var start time.Time
	var suspended *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		start = env.Now()
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 2, Suspend: true})
		}, 15*time.Second)
		suspended = progressAt(env, 30*time.Minute)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 3, Parallelism: 2})
		}, time.Hour)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, int64(3), res.Progress.Generation)

	require.Equal(t, StateSuspended, suspended.State)
	require.Zero(t, suspended.Pages.InFlight, "pages in flight when suspended finished")
	require.Equal(t, int64(4), suspended.Pages.Completed, "two pages at 0s and two at 10s ran")
	for _, s := range d.startsSnapshot() {
		at := s.At.Sub(start)
		require.False(t, at > 15*time.Second && at < time.Hour, "page %d started at %s, while suspended", s.Page, at)
	}
}

func TestStaleDesiredStateIsIgnored(t *testing.T) {
	d := newSimDataSet(30, 10)
	in := simInput(d, 1)
	in.Desired = DesiredState{Generation: 5, Parallelism: 1, Suspend: true}

	var afterStale, afterCurrent *Progress
	var start time.Time
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		start = env.Now()
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 4, Parallelism: 3})
		}, time.Minute)
		afterStale = progressAt(env, 2*time.Minute)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 6, Parallelism: 2, Suspend: true})
		}, 3*time.Minute)
		afterCurrent = progressAt(env, 4*time.Minute)
		env.RegisterDelayedCallback(func() {
			// Re-sent by a controller that missed the newer one: ignored too.
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 5, Parallelism: 1})
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 7, Parallelism: 2})
		}, 5*time.Minute)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	require.Equal(t, StateSuspended, afterStale.State, "generation 4 must not resume generation 5")
	require.Equal(t, int64(5), afterStale.Generation)
	require.Equal(t, 1, afterStale.Parallelism.Desired)
	require.Equal(t, int64(6), afterCurrent.Generation)
	require.Equal(t, 2, afterCurrent.Parallelism.Desired)
	require.Equal(t, StateSuspended, afterCurrent.State)
	require.Equal(t, int64(7), res.Progress.Generation)
	require.Equal(t, 2, res.Progress.Parallelism.Desired)
	require.Zero(t, res.Progress.Counters.MalformedSignals)
	for _, s := range d.startsSnapshot() {
		require.False(t, s.At.Before(start.Add(5*time.Minute)), "page %d started before generation 7 resumed the job", s.Page)
	}
}

func TestChangingParallelismMidRun(t *testing.T) {
	tests := []struct {
		name        string
		from, to    int
		wantBefore  int64
		wantAfter   int64
		wantMaxEver int
	}{
		{name: "raised", from: 1, to: 5, wantBefore: 1, wantAfter: 5, wantMaxEver: 5},
		{name: "lowered", from: 4, to: 1, wantBefore: 4, wantAfter: 1, wantMaxEver: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(300, 10)
			d.duration = 10 * time.Second
			var start time.Time
			env := runSim(t, d, nil, simInput(d, tt.from), func(env *testsuite.TestWorkflowEnvironment) {
				start = env.Now()
				env.RegisterDelayedCallback(func() {
					env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: tt.to})
				}, 35*time.Second)
			})
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)
			require.Equal(t, tt.wantMaxEver, res.Progress.Parallelism.MaxAchieved)
			require.Equal(t, tt.to, res.Progress.Parallelism.Desired)
			var maxBefore, maxAfter int64
			for _, s := range d.startsSnapshot() {
				if s.At.Sub(start) < 35*time.Second {
					maxBefore = max(maxBefore, s.InFlight)
				} else {
					maxAfter = max(maxAfter, s.InFlight)
				}
			}
			require.Equal(t, tt.wantBefore, maxBefore)
			require.Equal(t, tt.wantAfter, maxAfter)
		})
	}
}

func TestRampUpLimitsPagesInFlightEarly(t *testing.T) {
	d := newSimDataSet(1000, 10)
	d.duration = 10 * time.Second
	in := simInput(d, 4)
	in.Desired.RampUp = &RampUp{From: 1, Step: 1, Every: time.Minute}

	var start time.Time
	var at []*Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		start = env.Now()
		for _, after := range []time.Duration{35 * time.Second, 95 * time.Second, 155 * time.Second, 215 * time.Second, 275 * time.Second} {
			at = append(at, progressAt(env, after))
		}
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)

	for i, want := range []int{1, 2, 3, 4, 4} {
		require.Equal(t, want, at[i].Parallelism.Effective, "effective parallelism after %d:35", i)
		require.Equal(t, int64(want), at[i].Pages.InFlight, "pages in flight after %d:35", i)
		require.Equal(t, 4, at[i].Parallelism.Desired)
	}
	for _, s := range d.startsSnapshot() {
		eff, _ := effectiveParallelism(in.Desired, start, s.At)
		require.LessOrEqual(t, s.InFlight, int64(eff), "page %d started at %s", s.Page, s.At.Sub(start))
	}
	require.Equal(t, 4, res.Progress.Parallelism.MaxAchieved)
}

func TestRampUpStartsOverOnResume(t *testing.T) {
	d := newSimDataSet(3000, 10)
	d.duration = 10 * time.Second
	in := simInput(d, 4)
	ramp := &RampUp{From: 1, Step: 1, Every: time.Minute}
	in.Desired.RampUp = ramp

	var ramped, resumed, later *Progress
	env := runSim(t, d, nil, in, func(env *testsuite.TestWorkflowEnvironment) {
		ramped = progressAt(env, 5*time.Minute)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 2, Parallelism: 4, Suspend: true, RampUp: ramp})
		}, 6*time.Minute)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalDesiredState, DesiredState{Generation: 3, Parallelism: 4, RampUp: ramp})
		}, 10*time.Minute)
		resumed = progressAt(env, 10*time.Minute+35*time.Second)
		later = progressAt(env, 11*time.Minute+35*time.Second)
	})
	res := succeeded(t, env)
	requireCompleteJob(t, d, res.Progress)
	require.Equal(t, 4, ramped.Parallelism.Effective)
	require.Equal(t, 1, resumed.Parallelism.Effective, "a resumed job ramps up again")
	require.Equal(t, int64(1), resumed.Pages.InFlight)
	require.Equal(t, 2, later.Parallelism.Effective)
}

func TestRateLimitSpacesPageStarts(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		duration time.Duration
		gap      time.Duration
	}{
		{name: "instant pages", rate: 2, gap: 500 * time.Millisecond},
		{name: "slow pages", rate: 0.25, duration: 30 * time.Second, gap: 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(120, 10)
			d.duration = tt.duration
			in := simInput(d, 10)
			in.Desired.RateLimit = &RateLimit{PagesPerSecond: tt.rate}
			env := runSim(t, d, nil, in, nil)
			res := succeeded(t, env)
			requireCompleteJob(t, d, res.Progress)

			starts := d.startsSnapshot()
			require.Len(t, starts, int(d.pages()))
			for i := 1; i < len(starts); i++ {
				gap := starts[i].At.Sub(starts[i-1].At)
				require.InDelta(t, float64(tt.gap), float64(gap), float64(time.Millisecond), "gap before page %d", starts[i].Page)
			}
		})
	}
}

func TestJobWithInvalidInputFails(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   string
	}{
		{name: "no task queue", mutate: func(in *Input) { in.TaskQueue = "" }, want: "taskQueue is empty"},
		{name: "bad page size", mutate: func(in *Input) { in.Processor.PageSize = 0 }, want: "processor.pageSize is 0"},
		{name: "bad desired state", mutate: func(in *Input) { in.Desired.Parallelism = -2 }, want: "parallelism is -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimDataSet(10, 10)
			in := simInput(d, 1)
			tt.mutate(&in)
			env := runSim(t, d, nil, in, nil)
			appErr, _ := failedWith(t, env, ReasonInvalidInput)
			require.True(t, appErr.NonRetryable())
			require.Contains(t, appErr.Error(), tt.want)
			require.Empty(t, d.startsSnapshot(), "no page ran")
		})
	}
}
