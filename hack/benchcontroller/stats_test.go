package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 95, 7 * time.Millisecond},
		{"median of ten, unsorted", ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 50, 5 * time.Millisecond},
		{"p95 of ten is the largest", ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 95, 10 * time.Millisecond},
		{"p95 of twenty is the 19th", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 95, 19 * time.Millisecond},
		{"p0 is the smallest", ms(3, 1, 2), 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.ds, tt.p, got, tt.want)
			}
		})
	}
}

func TestStatusLags(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(s float64, n int64) countAt {
		return countAt{At: t0.Add(time.Duration(s * float64(time.Second))), Count: n}
	}
	tests := []struct {
		name           string
		workflow       []countAt
		status         []countAt
		wantLags       []time.Duration
		wantUnresolved int
	}{
		{
			name:     "each new count measured once, from the first report",
			workflow: []countAt{at(0, 1), at(1, 1), at(2, 3)},
			status:   []countAt{at(0, 0), at(1.5, 1), at(2.25, 3)},
			wantLags: []time.Duration{1500 * time.Millisecond, 250 * time.Millisecond},
		},
		{
			name:     "status already there counts as no lag",
			workflow: []countAt{at(2, 4)},
			status:   []countAt{at(1, 5)},
			wantLags: []time.Duration{0},
		},
		{
			name:     "a status that skips counts catches up on all of them",
			workflow: []countAt{at(0, 1), at(1, 2), at(2, 3)},
			status:   []countAt{at(0, 0), at(3, 3)},
			wantLags: []time.Duration{3 * time.Second, 2 * time.Second, time.Second},
		},
		{
			name:           "counts the status never shows are unresolved",
			workflow:       []countAt{at(0, 1), at(1, 2), at(2, 3)},
			status:         []countAt{at(0.5, 1)},
			wantLags:       []time.Duration{500 * time.Millisecond},
			wantUnresolved: 2,
		},
		{
			name:     "a count lower than one already reported is ignored",
			workflow: []countAt{at(0, 2), at(1, 1)},
			status:   []countAt{at(0.1, 2)},
			wantLags: []time.Duration{100 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lags, unresolved := statusLags(tt.workflow, tt.status)
			if len(lags) != len(tt.wantLags) || unresolved != tt.wantUnresolved {
				t.Fatalf("statusLags = %v, %d unresolved; want %v, %d", lags, unresolved, tt.wantLags, tt.wantUnresolved)
			}
			for i := range lags {
				if lags[i] != tt.wantLags[i] {
					t.Errorf("lag %d = %v, want %v", i, lags[i], tt.wantLags[i])
				}
			}
		})
	}
}

func TestPerJobMinute(t *testing.T) {
	if got := perJobMinute(300, 100, 2*time.Minute); got != 1.5 {
		t.Errorf("300 over 100 jobs × 2 min = %v, want 1.5", got)
	}
	if got := perJobMinute(300, 0, time.Minute); got != 0 {
		t.Errorf("no jobs = %v, want 0", got)
	}
}

func TestReconcileErrors(t *testing.T) {
	log := `time=2026-11-29T12:00:00Z level=INFO msg="Starting workers"
time=2026-11-29T12:00:01Z level=ERROR msg="Reconciler error" controller=batchjob name=bench-0001 err="Temporal does not answer: query batchjob/default/bench-0001/3f2a: context deadline exceeded"
time=2026-11-29T12:00:02Z level=ERROR msg="Reconciler error" controller=batchjob name=bench-0042 err="Temporal does not answer: query batchjob/default/bench-0042/9c1d: context deadline exceeded"
time=2026-11-29T12:00:03Z level=ERROR msg="Reconciler error" controller=batchjob name=bench-0007 err="status write of bench-0007: conflict after 3 tries"
`
	total, byMsg := reconcileErrors(log)
	if total != 3 {
		t.Fatalf("total = %d, want 3", total)
	}
	top := topMessages(byMsg, 5)
	want := []string{
		"2× Temporal does not answer: query batchjob/…: context deadline exceeded",
		"1× status write of bench-…: conflict after N tries",
	}
	if len(top) != len(want) {
		t.Fatalf("top = %q, want %q", top, want)
	}
	for i := range want {
		if top[i] != want[i] {
			t.Errorf("top[%d] = %q, want %q", i, top[i], want[i])
		}
	}
}

func TestParseControllerMetrics(t *testing.T) {
	text := `# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="batchjob",result="error"} 2
controller_runtime_reconcile_total{controller="batchjob",result="requeue_after"} 40
controller_runtime_reconcile_total{controller="batchjob",result="success"} 5
controller_runtime_reconcile_total{controller="other",result="success"} 99
controller_runtime_reconcile_time_seconds_sum{controller="batchjob"} 12.5
controller_runtime_reconcile_time_seconds_count{controller="batchjob"} 47
workqueue_depth{controller="batchjob",name="batchjob",priority="-100"} 74
workqueue_depth{controller="batchjob",name="batchjob",priority="0"} 21
`
	got := parseControllerMetrics(text)
	if got.reconciles["error"] != 2 || got.reconciles["requeue_after"] != 40 || got.reconciles["success"] != 5 || len(got.reconciles) != 3 {
		t.Errorf("reconciles = %v", got.reconciles)
	}
	if got.reconcileSeconds != 12.5 || got.reconcileCount != 47 {
		t.Errorf("reconcile time = %v over %v", got.reconcileSeconds, got.reconcileCount)
	}
	if got.depth["-100"] != 74 || got.depth["0"] != 21 {
		t.Errorf("depth = %v", got.depth)
	}
}

func TestParseTemporalCalls(t *testing.T) {
	text := `# HELP temporal_batch_temporal_requests_total Requests the manager sent to the Temporal frontend.
# TYPE temporal_batch_temporal_requests_total counter
temporal_batch_temporal_requests_total{method="DescribeWorkflowExecution"} 3
temporal_batch_temporal_requests_total{method="PollWorkflowTaskQueue"} 7
temporal_batch_temporal_requests_total{method="QueryWorkflow"} 1200
temporal_batch_temporal_request_failures_total{code="NotFound",method="DescribeWorkflowExecution"} 2
temporal_batch_temporal_request_failures_total{code="DeadlineExceeded",method="QueryWorkflow"} 1
controller_runtime_reconcile_total{controller="batchjob",result="success"} 5
`
	got := parseControllerMetrics(text)
	if len(got.temporalCalls) != 3 || got.temporalCalls["QueryWorkflow"] != 1200 || got.temporalCalls["DescribeWorkflowExecution"] != 3 || got.temporalCalls["PollWorkflowTaskQueue"] != 7 {
		t.Errorf("temporalCalls = %v", got.temporalCalls)
	}
	if len(got.temporalFailures) != 2 || got.temporalFailures["DescribeWorkflowExecution NotFound"] != 2 || got.temporalFailures["QueryWorkflow DeadlineExceeded"] != 1 {
		t.Errorf("temporalFailures = %v", got.temporalFailures)
	}
	if got.reconciles["success"] != 5 || len(got.reconciles) != 1 {
		t.Errorf("reconciles = %v", got.reconciles)
	}
}

func TestTemporalCallsPerJobMinute(t *testing.T) {
	// Two scrapes of 100 jobs 2 minutes apart; SignalWorkflowExecution first
	// appears in the second, GetSystemInfo made no call in between.
	before := map[string]float64{"QueryWorkflow": 1000, "DescribeWorkflowExecution": 10, "PollWorkflowTaskQueue": 50, "RespondWorkflowTaskCompleted": 40, "GetSystemInfo": 1}
	after := map[string]float64{"QueryWorkflow": 3380, "DescribeWorkflowExecution": 50, "SignalWorkflowExecution": 4, "PollWorkflowTaskQueue": 650, "RespondWorkflowTaskCompleted": 620, "GetSystemInfo": 1}
	rates := perJobMinuteDeltas(before, after, 100, 2*time.Minute)
	want := map[string]float64{"QueryWorkflow": 11.9, "DescribeWorkflowExecution": 0.2, "SignalWorkflowExecution": 0.02, "PollWorkflowTaskQueue": 3, "RespondWorkflowTaskCompleted": 2.9, "GetSystemInfo": 0}
	if len(rates) != len(want) {
		t.Fatalf("rates = %v, want %v", rates, want)
	}
	for k, w := range want {
		if math.Abs(rates[k]-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, rates[k], w)
		}
	}
	if got, want := byMethod(rates), "18.0 (Query 11.9, Describe 0.20, Signal 0.02, worker etc. 5.9)"; got != want {
		t.Errorf("byMethod = %q, want %q", got, want)
	}
	if got, want := otherCalls(rates), "PollWorkflowTaskQueue 3.0, RespondWorkflowTaskCompleted 2.9"; got != want {
		t.Errorf("otherCalls = %q, want %q", got, want)
	}
	if got := byMethod(nil); got != "-" {
		t.Errorf("byMethod(nil) = %q, want -", got)
	}
	if got := byMethod(map[string]float64{"QueryWorkflow": 0}); got != "0.00" {
		t.Errorf("byMethod of no calls = %q, want 0.00", got)
	}

	failed, list := failedCalls(map[string]float64{"QueryWorkflow DeadlineExceeded": 0.01, "DescribeWorkflowExecution NotFound": 0.05, "PollWorkflowTaskQueue Canceled": 0})
	if math.Abs(failed-0.06) > 1e-9 || list != "DescribeWorkflowExecution NotFound 0.05, QueryWorkflow DeadlineExceeded 0.01" {
		t.Errorf("failedCalls = %v, %q", failed, list)
	}
	if failed, list := failedCalls(nil); failed != 0 || list != "none" {
		t.Errorf("failedCalls(nil) = %v, %q", failed, list)
	}
}
