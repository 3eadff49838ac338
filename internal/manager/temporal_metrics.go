package manager

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
func countingDialOptions(conn *connection) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, fullMethod string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := countTemporalCalls(ctx, fullMethod, req, reply, cc, invoker, opts...)
		conn.observe(err)
		return err
	})}
}

func countTemporalCalls(ctx context.Context, fullMethod string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	method := grpcMethodName(fullMethod)
	temporalRequests.WithLabelValues(method).Inc()
	err := invoker(ctx, fullMethod, req, reply, cc, opts...)
	if err != nil {
		temporalRequestFailures.WithLabelValues(method, status.Code(err).String()).Inc()
	}
	return err
}

// connection is what the calls of one client say of the frontend: whether
// the last call that could tell found it answering. The orchestrator
// worker's polls make calls all the time, so a frontend that went away is
// seen within a poll, even by a controller that makes no call of its own.
type connection struct {
	// seq numbers the calls' ends; lastOK and lastDown are the numbers of
	// the last call that found the frontend answering and the last that
	// found it unavailable.
	seq, lastOK, lastDown atomic.Int64
}

func (c *connection) observe(err error) {
	n := c.seq.Add(1)
	switch status.Code(err) {
	case codes.Unavailable:
		c.lastDown.Store(n)
	case codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
		// Ended on this side, or not an answer of the frontend: tells nothing.
	default:
		// Success, or an answer such as NotFound: the frontend answers.
		c.lastOK.Store(n)
	}
}

// answering: no call found the frontend unavailable since the last one
// that found it answering.
func (c *connection) answering() bool {
	return c.lastDown.Load() <= c.lastOK.Load()
}

func grpcMethodName(fullMethod string) string {
	return fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
}
