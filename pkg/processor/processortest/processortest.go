// Package processortest runs page processors in unit tests, without a Temporal
// server or an orchestrator workflow.
//
// An [Env] executes a [processor.Func] through the same activity wrapper a
// worker uses, in a go.temporal.io/sdk/testsuite activity environment. It
// records the EnqueuePage signals the processor sends and replays retries the
// way the server does: with the next attempt number and the heartbeat details
// the failed attempt recorded last.
//
//	env := processortest.New(myProcessor)
//	res, err := env.Execute(processor.PageInput{
//		Job:  processor.JobRef{WorkflowID: "batchjob/shop/inflate-prices/uid"},
//		Page: processor.PageRef{Number: 0, Size: 100},
//		Args: json.RawMessage(`{"percent": 3}`),
//	})
//	// inspect res, err and env.Signals()
package processortest

import (
	"context"
	"fmt"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// activityType is the name the processor is registered under inside the test
// environment; only the environment ever sees it.
const activityType = "processortest"

// Signal is one signal a processor sent through the activity's client.
type Signal struct {
	WorkflowID string
	// RunID is the run the signal addressed; processors must leave it empty
	// so that the signal reaches the orchestrator's current run.
	RunID string
	Name  string
	// Page is the signal body when it is a single-cursor EnqueuePage signal;
	// for a lookahead batch it holds the number and the first cursor.
	Page processor.EnqueuePage
	// Cursors are the cursors an EnqueuePage signal enqueued, in order: one
	// for the single-cursor form, the batch for the lookahead form.
	Cursors []string
	// Arg is the signal body as sent.
	Arg any
}

// Env runs one processor. Its methods are safe for concurrent use, but the
// attempts of a page run one after another, as they do on a real server.
type Env struct {
	suite testsuite.WorkflowTestSuite
	fn    processor.Func

	mu        sync.Mutex
	signals   []Signal
	signalErr error
	// The attempt that ran last, so that Retry can run its successor.
	lastInput     *processor.PageInput
	lastAttempt   int32
	lastHeartbeat []any
}

// New returns an Env that runs fn.
func New(fn processor.Func) *Env {
	return &Env{fn: fn}
}

// Execute runs the first attempt of the page in.
func (e *Env) Execute(in processor.PageInput) (processor.PageResult, error) {
	return e.run(in, 1, nil)
}

// Retry runs the next attempt of the page Execute or Retry ran last, with the
// heartbeat details that attempt recorded last, as the server does when it
// retries a failed attempt.
func (e *Env) Retry() (processor.PageResult, error) {
	e.mu.Lock()
	if e.lastInput == nil {
		e.mu.Unlock()
		return processor.PageResult{}, fmt.Errorf("processortest: Retry called before Execute")
	}
	in, attempt, details := *e.lastInput, e.lastAttempt+1, e.lastHeartbeat
	e.mu.Unlock()
	return e.run(in, attempt, details)
}

// ExecuteAttempt runs attempt number attempt of the page in, as if the
// earlier attempts had recorded heartbeatDetails (nil: no details), for tests
// that need a particular attempt without running the ones before it.
func (e *Env) ExecuteAttempt(in processor.PageInput, attempt int32, heartbeatDetails any) (processor.PageResult, error) {
	var details []any
	if heartbeatDetails != nil {
		details = []any{heartbeatDetails}
	}
	return e.run(in, attempt, details)
}

// Signals returns the signals sent so far, oldest first.
func (e *Env) Signals() []Signal {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Signal(nil), e.signals...)
}

// EnqueuedPages returns the bodies of the EnqueuePage signals sent so far,
// oldest first.
func (e *Env) EnqueuedPages() []processor.EnqueuePage {
	var pages []processor.EnqueuePage
	for _, s := range e.Signals() {
		if s.Name == processor.EnqueuePageSignal {
			pages = append(pages, s.Page)
		}
	}
	return pages
}

// EnqueuedCursors returns every cursor the EnqueuePage signals sent so far
// enqueued, in order, whichever form each signal took.
func (e *Env) EnqueuedCursors() []string {
	var cursors []string
	for _, s := range e.Signals() {
		if s.Name == processor.EnqueuePageSignal {
			cursors = append(cursors, s.Cursors...)
		}
	}
	return cursors
}

// FailSignals makes every following signal fail with err, as when the
// Temporal server cannot be reached; nil lets signals succeed again. A failed
// signal is not recorded.
func (e *Env) FailSignals(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.signalErr = err
}

func (e *Env) run(in processor.PageInput, attempt int32, heartbeat []any) (processor.PageResult, error) {
	env := e.suite.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{
		Interceptors: []interceptor.WorkerInterceptor{&workerInterceptor{env: e, attempt: attempt}},
	})
	switch len(heartbeat) {
	case 0:
	case 1:
		env.SetHeartbeatDetails(heartbeat[0])
	default:
		env.SetHeartbeatDetails(heartbeat)
	}
	processor.Register(env, activityType, e.fn)

	e.mu.Lock()
	e.lastInput, e.lastAttempt, e.lastHeartbeat = &in, attempt, heartbeat
	e.mu.Unlock()

	val, err := env.ExecuteActivity(activityType, in)
	if err != nil {
		return processor.PageResult{}, err
	}
	var res processor.PageResult
	if err := val.Get(&res); err != nil {
		return processor.PageResult{}, fmt.Errorf("processortest: decode page result: %w", err)
	}
	return res, nil
}

func (e *Env) recordHeartbeat(details []any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastHeartbeat = append([]any(nil), details...)
}

func (e *Env) signal(s Signal) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.signalErr != nil {
		return e.signalErr
	}
	e.signals = append(e.signals, s)
	return nil
}

// The interceptors below stand in for the parts of a worker the test activity
// environment does not provide: attempt numbers above 1, a client that
// signals, and the heartbeat details a retry inherits.

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	env     *Env
	attempt int32
}

func (w *workerInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{
		ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next},
		env:                            w.env,
		attempt:                        w.attempt,
	}
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	env     *Env
	attempt int32
}

func (a *activityInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return a.Next.Init(newActivityOutbound(activity.GetClient, outbound, a.env, a.attempt))
}

// activityOutbound is generic only because the SDK declares
// ActivityOutboundInterceptor.GetClient with a client type from its internal
// package, which cannot be named here. C is inferred from activity.GetClient's
// result type, which is that very type.
type activityOutbound[C any] struct {
	interceptor.ActivityOutboundInterceptorBase
	env     *Env
	attempt int32
}

func newActivityOutbound[C any](_ func(context.Context) C, next interceptor.ActivityOutboundInterceptor, env *Env, attempt int32) *activityOutbound[C] {
	return &activityOutbound[C]{
		ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: next},
		env:                             env,
		attempt:                         attempt,
	}
}

func (o *activityOutbound[C]) GetInfo(ctx context.Context) activity.Info {
	info := o.Next.GetInfo(ctx)
	info.Attempt = o.attempt
	return info
}

func (o *activityOutbound[C]) RecordHeartbeat(ctx context.Context, details ...any) {
	o.env.recordHeartbeat(details)
	o.Next.RecordHeartbeat(ctx, details...)
}

func (o *activityOutbound[C]) GetClient(context.Context) C {
	// signalClient implements client.Client, whose methods are the SDK
	// client's, so the assertion cannot fail.
	return any(&signalClient{env: o.env}).(C)
}

// signalClient records signals. Embedding the interface keeps it a
// client.Client; any other method panics, which points a test at a processor
// using the client for more than the contract needs.
type signalClient struct {
	client.Client
	env *Env
}

func (c *signalClient) SignalWorkflow(_ context.Context, workflowID, runID, signalName string, arg any) error {
	s := Signal{WorkflowID: workflowID, RunID: runID, Name: signalName, Arg: arg}
	switch body := arg.(type) {
	case processor.EnqueuePage:
		s.Page, s.Cursors = body, []string{body.Cursor}
	case *processor.EnqueuePage:
		s.Page, s.Cursors = *body, []string{body.Cursor}
	case processor.EnqueuePageBatch:
		s.Page, s.Cursors = processor.EnqueuePage{Number: body.Number, Cursor: body.Cursors[0]}, body.Cursors
	}
	return c.env.signal(s)
}
