package manager

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Temporal calls of the manager, served on its metrics endpoint: the
// controller's queries, describes, signals and starts, and the orchestrator
// worker's polls and task responses.
//
// Two counters rather than one with a result label: the calls per second by
// method are one rate() with nothing to sum away, and the failures carry the
// gRPC status code, which tells a workflow that is gone (NotFound) from a
// frontend that does not answer (Unavailable, DeadlineExceeded) without
// multiplying the series of the calls that succeed.
var (
	temporalRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "temporal_batch_temporal_requests_total",
		Help: "Requests the manager sent to the Temporal frontend, by gRPC method; a call the SDK retries counts once per attempt.",
	}, []string{"method"})
	temporalRequestFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "temporal_batch_temporal_request_failures_total",
		Help: "Requests to the Temporal frontend that returned an error, by gRPC method and status code.",
	}, []string{"method", "code"})
)

func init() {
	metrics.Registry.MustRegister(temporalRequests, temporalRequestFailures)
}

// countingDialOptions are the dial options that count the Temporal client's
// calls.
func countingDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(countTemporalCalls)}
}

// countTemporalCalls counts every unary call on the Temporal client's
// connection. The SDK chains its own interceptors (retries among them)
// before the dial options it is given, so this one sees each attempt.
func countTemporalCalls(ctx context.Context, fullMethod string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	method := grpcMethodName(fullMethod)
	temporalRequests.WithLabelValues(method).Inc()
	err := invoker(ctx, fullMethod, req, reply, cc, opts...)
	if err != nil {
		temporalRequestFailures.WithLabelValues(method, status.Code(err).String()).Inc()
	}
	return err
}

// grpcMethodName is the last element of a gRPC full method name:
// "/temporal.api.workflowservice.v1.WorkflowService/QueryWorkflow" is
// "QueryWorkflow".
func grpcMethodName(fullMethod string) string {
	return fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
}
