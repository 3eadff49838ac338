package temporalbatch

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// validatedInput is an input every check accepts.
func validatedInput() Input {
	maxFailed := int64(3)
	return Input{
		Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: WorkflowID("shop", "inflate-prices", "uid")},
		TaskQueue: "inflate-prices",
		Processor: ProcessorSpec{
			Name:             "InflateProductPrices",
			PageSize:         200,
			FirstCursor:      "",
			Timeout:          5 * time.Minute,
			HeartbeatTimeout: 30 * time.Second,
			Delivery:         AtLeastOnce,
		},
		Retry: RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{"InvalidRecord"},
			StuckPageRetryInterval: 5 * time.Minute,
		},
		FailurePolicy:           FailurePolicy{MaxFailedPages: &maxFailed, Handler: "RecordFailures"},
		Desired:                 DesiredState{Generation: 1, Parallelism: 10, RampUp: &RampUp{From: 1, Step: 1, Every: 30 * time.Second}, RateLimit: &RateLimit{PagesPerSecond: 5}},
		ContinueAsNewAfterPages: 1000,
	}
}

func TestValidateInput(t *testing.T) {
	negative := int64(-1)
	tests := []struct {
		name   string
		mutate func(*Input)
		// want are substrings of the message, one per problem; none means valid.
		want []string
	}{
		{name: "valid", mutate: func(*Input) {}},
		{
			name: "zero values the operator defaults are valid",
			mutate: func(in *Input) {
				in.Processor.HeartbeatTimeout = 0
				in.Retry = RetryPolicy{}
				in.FailurePolicy = FailurePolicy{}
				in.Desired = DesiredState{}
				in.ContinueAsNewAfterPages = 0
			},
		},
		{
			name:   "AtMostOnce is valid",
			mutate: func(in *Input) { in.Processor.Delivery = AtMostOnce },
		},
		{
			name:   "missing workflow ID",
			mutate: func(in *Input) { in.Job.WorkflowID = "" },
			want:   []string{"job.workflowId is empty: set it to the orchestrator workflow's ID so processors can signal it"},
		},
		{
			name:   "missing task queue",
			mutate: func(in *Input) { in.TaskQueue = "" },
			want:   []string{"taskQueue is empty: set the task queue the page processors poll"},
		},
		{
			name:   "missing processor name",
			mutate: func(in *Input) { in.Processor.Name = "" },
			want:   []string{"processor.name is empty: set the page processor's activity type"},
		},
		{
			name:   "page size 0",
			mutate: func(in *Input) { in.Processor.PageSize = 0 },
			want:   []string{"processor.pageSize is 0: use 1..100000"},
		},
		{
			name:   "page size too large",
			mutate: func(in *Input) { in.Processor.PageSize = 100001 },
			want:   []string{"processor.pageSize is 100001: use 1..100000"},
		},
		{
			name:   "no timeout",
			mutate: func(in *Input) { in.Processor.Timeout = 0 },
			want:   []string{"processor.timeout is 0s: set a positive start-to-close timeout per page attempt"},
		},
		{
			name:   "negative heartbeat timeout",
			mutate: func(in *Input) { in.Processor.HeartbeatTimeout = -time.Second },
			want:   []string{"processor.heartbeatTimeout is -1s: use 0 (disabled) or a positive duration"},
		},
		{
			name:   "unknown delivery",
			mutate: func(in *Input) { in.Processor.Delivery = "ExactlyOnce" },
			want:   []string{`processor.delivery is "ExactlyOnce": use AtLeastOnce or AtMostOnce`},
		},
		{
			name:   "empty delivery",
			mutate: func(in *Input) { in.Processor.Delivery = "" },
			want:   []string{`processor.delivery is "": use AtLeastOnce or AtMostOnce`},
		},
		{
			name:   "first cursor too long",
			mutate: func(in *Input) { in.Processor.FirstCursor = strings.Repeat("x", MaxCursorBytes+1) },
			want:   []string{"processor.firstCursor is 4097 bytes: keep cursors under 4096 bytes"},
		},
		{
			name:   "args too large",
			mutate: func(in *Input) { in.Processor.Args = []byte(`"` + strings.Repeat("a", MaxArgsBytes-1) + `"`) },
			want:   []string{"processor.args is 65537 bytes of JSON: keep it under 65536 bytes (64 KiB), it travels in every page's input; pass a reference (a ConfigMap name, an object key) instead of the data"},
		},
		{
			name:   "negative stuck retry interval",
			mutate: func(in *Input) { in.Retry.StuckPageRetryInterval = -time.Minute },
			want:   []string{"retry intervals must not be negative"},
		},
		{
			name:   "initial interval above maximum",
			mutate: func(in *Input) { in.Retry.InitialInterval = 2 * time.Minute },
			want:   []string{"retry.initialInterval (2m0s) exceeds retry.maximumInterval (1m0s): lower the first or raise the second"},
		},
		{
			name:   "backoff below 1",
			mutate: func(in *Input) { in.Retry.BackoffCoefficient = 0.5 },
			want:   []string{"retry.backoffCoefficient is 0.5: use a number >= 1"},
		},
		{
			name:   "backoff NaN",
			mutate: func(in *Input) { in.Retry.BackoffCoefficient = math.NaN() },
			want:   []string{"retry.backoffCoefficient is NaN: use a number >= 1"},
		},
		{
			name:   "negative maximum attempts",
			mutate: func(in *Input) { in.Retry.MaximumAttempts = -1 },
			want:   []string{"retry.maximumAttempts is -1: use 0 (unlimited) or more"},
		},
		{
			name:   "negative max failed pages",
			mutate: func(in *Input) { in.FailurePolicy.MaxFailedPages = &negative },
			want:   []string{"failurePolicy.maxFailedPages is -1: use 0 or more, or omit it to fail the job for failed pages only at its end"},
		},
		{
			name:   "tolerated failed pages up to max failed pages",
			mutate: func(in *Input) { in.FailurePolicy.ToleratedFailedPages = 3 },
		},
		{
			name: "tolerated failed pages without max failed pages",
			mutate: func(in *Input) {
				in.FailurePolicy.MaxFailedPages = nil
				in.FailurePolicy.ToleratedFailedPages = 400
			},
		},
		{
			name:   "negative tolerated failed pages",
			mutate: func(in *Input) { in.FailurePolicy.ToleratedFailedPages = -1 },
			want:   []string{"failurePolicy.toleratedFailedPages is -1: use 0 or more"},
		},
		{
			name:   "tolerated failed pages above max failed pages",
			mutate: func(in *Input) { in.FailurePolicy.ToleratedFailedPages = 4 },
			want:   []string{"failurePolicy.toleratedFailedPages (4) is above failurePolicy.maxFailedPages (3): the job would fail before it ends with that many failed pages; lower toleratedFailedPages or raise maxFailedPages"},
		},
		{
			name:   "negative continue-as-new threshold",
			mutate: func(in *Input) { in.ContinueAsNewAfterPages = -5 },
			want:   []string{"continueAsNewAfterPages is -5: use 0 or more"},
		},
		{
			name:   "invalid desired state",
			mutate: func(in *Input) { in.Desired.Parallelism = -1 },
			want:   []string{"parallelism is -1: use 0..10000"},
		},
		{
			name: "every problem is reported at once",
			mutate: func(in *Input) {
				in.TaskQueue = ""
				in.Processor.PageSize = 0
				in.Desired.RateLimit.PagesPerSecond = 0
			},
			want: []string{
				"taskQueue is empty",
				"processor.pageSize is 0",
				"rateLimit.pagesPerSecond is 0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validatedInput()
			tt.mutate(&in)
			err := in.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tt.want), "one line per problem: %s", err)
		})
	}
}

func TestValidateDesiredState(t *testing.T) {
	tests := []struct {
		name    string
		desired DesiredState
		want    []string
	}{
		{name: "zero value", desired: DesiredState{}},
		{name: "suspended", desired: DesiredState{Generation: 4, Parallelism: 3, Suspend: true}},
		{name: "largest parallelism", desired: DesiredState{Parallelism: 10000}},
		{name: "ramp-up from the parallelism", desired: DesiredState{Parallelism: 5, RampUp: &RampUp{From: 5, Step: 1, Every: time.Second}}},
		{name: "ramp-up with parallelism 0", desired: DesiredState{Parallelism: 0, RampUp: &RampUp{From: 1, Step: 1, Every: time.Second}}},
		// Parallelism 0 pauses the job; the ramp-up stays as written.
		{name: "ramp-up from above parallelism 0", desired: DesiredState{Parallelism: 0, RampUp: &RampUp{From: 3, Step: 1, Every: time.Second}}},
		{name: "fractional rate", desired: DesiredState{Parallelism: 1, RateLimit: &RateLimit{PagesPerSecond: 0.25}}},
		{
			name:    "negative parallelism",
			desired: DesiredState{Parallelism: -1},
			want:    []string{"parallelism is -1: use 0..10000"},
		},
		{
			name:    "parallelism too large",
			desired: DesiredState{Parallelism: 10001},
			want:    []string{"parallelism is 10001: use 0..10000"},
		},
		{
			name:    "ramp-up from 0",
			desired: DesiredState{Parallelism: 5, RampUp: &RampUp{From: 0, Step: 1, Every: time.Second}},
			want:    []string{"rampUp.from is 0: use 1..parallelism (5)"},
		},
		{
			name:    "ramp-up from 0 with parallelism 0",
			desired: DesiredState{Parallelism: 0, RampUp: &RampUp{From: 0, Step: 1, Every: time.Second}},
			want:    []string{"rampUp.from is 0: use 1 or more"},
		},
		{
			name:    "ramp-up from above the parallelism",
			desired: DesiredState{Parallelism: 5, RampUp: &RampUp{From: 6, Step: 1, Every: time.Second}},
			want:    []string{"rampUp.from is 6: use 1..parallelism (5)"},
		},
		{
			name:    "ramp-up step 0",
			desired: DesiredState{Parallelism: 5, RampUp: &RampUp{From: 1, Step: 0, Every: time.Second}},
			want:    []string{"rampUp.step is 0: use 1 or more"},
		},
		{
			name:    "ramp-up without a period",
			desired: DesiredState{Parallelism: 5, RampUp: &RampUp{From: 1, Step: 1}},
			want:    []string{"rampUp.every is 0s: use a positive duration"},
		},
		{
			name:    "rate 0",
			desired: DesiredState{Parallelism: 5, RateLimit: &RateLimit{}},
			want:    []string{"rateLimit.pagesPerSecond is 0: use a positive number, or omit rateLimit"},
		},
		{
			name:    "negative rate",
			desired: DesiredState{Parallelism: 5, RateLimit: &RateLimit{PagesPerSecond: -2}},
			want:    []string{"rateLimit.pagesPerSecond is -2: use a positive number, or omit rateLimit"},
		},
		{
			name:    "infinite rate",
			desired: DesiredState{Parallelism: 5, RateLimit: &RateLimit{PagesPerSecond: math.Inf(1)}},
			want:    []string{"rateLimit.pagesPerSecond is +Inf: use a positive number, or omit rateLimit"},
		},
		{
			name:    "NaN rate",
			desired: DesiredState{Parallelism: 5, RateLimit: &RateLimit{PagesPerSecond: math.NaN()}},
			want:    []string{"rateLimit.pagesPerSecond is NaN: use a positive number, or omit rateLimit"},
		},
		{
			name:    "every ramp-up problem",
			desired: DesiredState{Parallelism: 5, RampUp: &RampUp{From: 0, Step: 0, Every: -time.Second}},
			want:    []string{"rampUp.from is 0", "rampUp.step is 0", "rampUp.every is -1s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.desired.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tt.want), "one line per problem: %s", err)
		})
	}
}
