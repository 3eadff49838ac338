package manager

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

func TestGRPCMethodName(t *testing.T) {
	for in, want := range map[string]string{
		"/temporal.api.workflowservice.v1.WorkflowService/QueryWorkflow": "QueryWorkflow",
		"/grpc.health.v1.Health/Check":                                   "Check",
		"Bare":                                                           "Bare",
		"":                                                               "",
	} {
		if got := grpcMethodName(in); got != want {
			t.Errorf("grpcMethodName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCountTemporalCalls(t *testing.T) {
	const (
		query    = "/temporal.api.workflowservice.v1.WorkflowService/QueryWorkflow"
		describe = "/temporal.api.workflowservice.v1.WorkflowService/DescribeWorkflowExecution"
		poll     = "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue"
	)
	requests := func(method string) float64 { return counterValue(t, temporalRequests.WithLabelValues(method)) }
	failures := func(method, code string) float64 {
		return counterValue(t, temporalRequestFailures.WithLabelValues(method, code))
	}
	q0, d0, p0 := requests("QueryWorkflow"), requests("DescribeWorkflowExecution"), requests("PollWorkflowTaskQueue")
	dNotFound0, qUnavailable0, pUnknown0 := failures("DescribeWorkflowExecution", "NotFound"), failures("QueryWorkflow", "Unavailable"), failures("PollWorkflowTaskQueue", "Unknown")

	// The fake invoker answers per method and records what it was asked.
	var invoked []string
	answers := map[string]error{
		query:    nil,
		describe: status.Error(codes.NotFound, "workflow not found"),
		poll:     errors.New("not a gRPC status"),
	}
	invoker := func(_ context.Context, method string, req, reply any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		invoked = append(invoked, method)
		if req != "request" || reply != "reply" {
			t.Errorf("%s: the invoker got request %v reply %v", method, req, reply)
		}
		return answers[method]
	}
	call := func(method string) error {
		return countTemporalCalls(context.Background(), method, "request", "reply", nil, invoker)
	}

	for range 3 {
		if err := call(query); err != nil {
			t.Fatalf("query: %v", err)
		}
	}
	if err := call(describe); status.Code(err) != codes.NotFound {
		t.Fatalf("describe returned %v, want the invoker's NotFound", err)
	}
	if err := call(poll); err == nil {
		t.Fatal("poll returned no error, want the invoker's")
	}
	if len(invoked) != 5 {
		t.Fatalf("invoker called %d times, want 5: %v", len(invoked), invoked)
	}

	checks := []struct {
		name      string
		got, want float64
	}{
		{"QueryWorkflow requests", requests("QueryWorkflow") - q0, 3},
		{"DescribeWorkflowExecution requests", requests("DescribeWorkflowExecution") - d0, 1},
		{"PollWorkflowTaskQueue requests", requests("PollWorkflowTaskQueue") - p0, 1},
		{"DescribeWorkflowExecution NotFound failures", failures("DescribeWorkflowExecution", "NotFound") - dNotFound0, 1},
		{"PollWorkflowTaskQueue Unknown failures", failures("PollWorkflowTaskQueue", "Unknown") - pUnknown0, 1},
		{"QueryWorkflow failures", failures("QueryWorkflow", "Unavailable") - qUnavailable0, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestTemporalMetricsAreRegistered(t *testing.T) {
	call := func() error {
		return countTemporalCalls(context.Background(), "/x.Y/Z", nil, nil, nil,
			func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
				return status.Error(codes.Unavailable, "down")
			})
	}
	_ = call()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		found[f.GetName()] = true
	}
	for _, name := range []string{"temporal_batch_temporal_requests_total", "temporal_batch_temporal_request_failures_total"} {
		if !found[name] {
			t.Errorf("%s is not in controller-runtime's metrics registry", name)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestConnectionAnswering(t *testing.T) {
	var c connection
	if !c.answering() {
		t.Fatal("a client that made no call yet is taken as answering")
	}
	c.observe(status.Error(codes.Unavailable, "connection refused"))
	if c.answering() {
		t.Fatal("answering after a call found the frontend unavailable")
	}
	c.observe(status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	c.observe(errors.New("not a status"))
	if c.answering() {
		t.Fatal("a call that timed out on this side says the frontend answers")
	}
	c.observe(status.Error(codes.NotFound, "workflow not found"))
	if !c.answering() {
		t.Fatal("NotFound is an answer: the frontend is back")
	}
	c.observe(status.Error(codes.Unavailable, "connection refused"))
	c.observe(nil)
	if !c.answering() {
		t.Fatal("not answering after a call succeeded")
	}
}
