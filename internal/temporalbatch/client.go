package temporalbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// WorkflowID is the orchestrator workflow ID of a BatchJob: derived from the
// object so that starting it is idempotent, and from its UID so that a job
// re-created under the same name gets a workflow of its own.
func WorkflowID(namespace, name, uid string) string {
	return fmt.Sprintf("batchjob/%s/%s/%s", namespace, name, uid)
}

// Client drives orchestrator workflows. Every call is safe to repeat.
type Client struct {
	c         client.Client
	taskQueue string
}

// NewClient returns a Client that starts orchestrators on taskQueue.
func NewClient(c client.Client, taskQueue string) *Client {
	if taskQueue == "" {
		taskQueue = DefaultTaskQueue
	}
	return &Client{c: c, taskQueue: taskQueue}
}

// Start starts the orchestrator for in.Job.WorkflowID, or returns the run
// already there: a running one is adopted (no second workflow), and a closed
// one is not started again.
func (c *Client) Start(ctx context.Context, in Input) (runID string, err error) {
	if err := in.Validate(); err != nil {
		return "", err
	}
	run, err := c.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       in.Job.WorkflowID,
		TaskQueue:                c.taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, WorkflowType, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already):
		return already.RunId, nil
	case err != nil:
		return "", err
	}
	return run.GetRunID(), nil
}

// SetDesiredState sends the desired-state message. The workflow ignores a
// generation older than the one applied, so re-sending is harmless.
func (c *Client) SetDesiredState(ctx context.Context, workflowID string, d DesiredState) error {
	if err := d.Validate(); err != nil {
		return err
	}
	return c.c.SignalWorkflow(ctx, workflowID, "", SignalDesiredState, d)
}

// Progress queries the job's progress summary (Progress.Summary); it works
// on closed workflows too. The worker that answers a query registers the
// handlers of its own code, so a worker from before the summary query (an
// older manager replica during a rolling upgrade) answers an unknown-query
// error: the full progress query then answers instead.
func (c *Client) Progress(ctx context.Context, workflowID string) (Progress, error) {
	return c.progress(ctx, workflowID, enumspb.QUERY_REJECT_CONDITION_UNSPECIFIED)
}

// ErrClosed is RunningProgress's answer once the workflow has closed:
// Outcome then reads how it ended.
var ErrClosed = errors.New("the orchestrator workflow has closed")

// RunningProgress is Progress of a workflow that runs, in one call: once the
// workflow has closed, the server rejects the query (ErrClosed) rather than
// have a worker replay the whole history to answer it.
func (c *Client) RunningProgress(ctx context.Context, workflowID string) (Progress, error) {
	return c.progress(ctx, workflowID, enumspb.QUERY_REJECT_CONDITION_NOT_OPEN)
}

func (c *Client) progress(ctx context.Context, workflowID string, reject enumspb.QueryRejectCondition) (Progress, error) {
	p, err := c.query(ctx, workflowID, QueryProgressSummary, reject)
	if unknownQuery(err) {
		p, err = c.query(ctx, workflowID, QueryProgress, reject)
		p = p.Summary()
	}
	return p, err
}

func (c *Client) query(ctx context.Context, workflowID, queryType string, reject enumspb.QueryRejectCondition) (Progress, error) {
	resp, err := c.c.QueryWorkflowWithOptions(ctx, &client.QueryWorkflowWithOptionsRequest{
		WorkflowID: workflowID, QueryType: queryType, QueryRejectCondition: reject,
	})
	if err != nil {
		return Progress{}, err
	}
	if resp.QueryRejected != nil {
		return Progress{}, fmt.Errorf("%w (%s)", ErrClosed, resp.QueryRejected.GetStatus())
	}
	var p Progress
	return p, resp.QueryResult.Get(&p)
}

// unknownQuery: the workflow's worker has no handler of the query type. The
// SDK's worker answers "unknown queryType X. KnownQueryTypes=[...]", which
// the server returns as QueryFailed.
func unknownQuery(err error) bool {
	var failed *serviceerror.QueryFailed
	return errors.As(err, &failed) && strings.Contains(failed.Message, "unknown queryType")
}

// Outcome returns the Result of a closed workflow and the error it ended
// with (nil when it succeeded); closed is false while it runs.
func (c *Client) Outcome(ctx context.Context, workflowID string) (res Result, closed bool, endErr error, err error) {
	desc, err := c.c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return Result{}, false, nil, err
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return Result{}, false, nil, nil
	}
	endErr = c.c.GetWorkflow(ctx, workflowID, "").Get(ctx, &res)
	if endErr == nil {
		return res, true, nil, nil
	}
	if ok := resultFromError(endErr, &res); !ok {
		// Terminated or timed out: no Result was written.
		return Result{}, true, endErr, nil
	}
	return res, true, endErr, nil
}

func resultFromError(err error, res *Result) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		return appErr.Details(res) == nil
	}
	var canErr *temporal.CanceledError
	if errors.As(err, &canErr) && canErr.HasDetails() {
		return canErr.Details(res) == nil
	}
	return false
}

// ErrNothingToRedrive is returned when a closed job left no state to re-drive.
var ErrNothingToRedrive = errors.New("the job's workflow closed without a result to re-drive from")

// Redrive re-queues failed and stuck pages and a broken chain's frontier.
// A running workflow gets the message; a closed one is started again, under
// the same workflow ID, from the state its last run ended with.
// Each request ID acts once.
func (c *Client) Redrive(ctx context.Context, workflowID string, r RedriveRequest) error {
	redriveID := r.ID
	if redriveID == "" {
		return errors.New("redrive ID is empty: pass a new value (a timestamp, say) for each re-drive")
	}
	res, closed, _, err := c.Outcome(ctx, workflowID)
	if err != nil {
		return err
	}
	if !closed {
		return c.c.SignalWorkflow(ctx, workflowID, "", SignalRedrive, r)
	}
	next := res.Next
	if next.State == nil {
		return ErrNothingToRedrive
	}
	if next.State.LastRedrive == redriveID || slices.Contains(next.State.Redrives, redriveID) {
		return nil
	}
	next.Redrive, next.RedriveIncludeUnknown = redriveID, r.IncludeUnknown
	_, err = c.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                c.taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, WorkflowType, next)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		// Someone re-started it meanwhile: hand it the request instead.
		return c.c.SignalWorkflow(ctx, workflowID, "", SignalRedrive, r)
	}
	return err
}

// Cancel asks the workflow to stop: in-flight pages are cancelled and the
// final progress recorded. Cancelling a closed or missing workflow is not an error.
func (c *Client) Cancel(ctx context.Context, workflowID string) error {
	return ignoreNotFound(c.c.CancelWorkflow(ctx, workflowID, ""))
}

// Terminate ends the workflow at once, without letting it record anything.
func (c *Client) Terminate(ctx context.Context, workflowID, reason string) error {
	return ignoreNotFound(c.c.TerminateWorkflow(ctx, workflowID, "", reason))
}

func ignoreNotFound(err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}
