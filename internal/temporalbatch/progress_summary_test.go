package temporalbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	querypb "go.temporal.io/api/query/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// The summary query answers what the full one does, less the cursors.
func TestProgressSummaryQuery(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.afterEnqueue = failCalls(3, -1, flaky(3))
	in := simInput(d, 2)
	in.Retry.MaximumAttempts = 3
	in.Retry.StuckPageRetryInterval = 0
	env := runSim(t, d, nil, in, nil)
	pagesFailed(t, env)

	full := queryProgress(t, env)
	require.Len(t, full.FailedPages, 1, "the full query keeps the failed pages")
	v, err := env.QueryWorkflow(QueryProgressSummary)
	require.NoError(t, err)
	var summary Progress
	require.NoError(t, v.Get(&summary))
	require.Empty(t, summary.FailedPages)
	require.Zero(t, summary.Frontier)
	require.Equal(t, int64(1), summary.Pages.Failed, "the count stays")
	require.Equal(t, full.Summary(), summary)
}

func TestProgressSummaryDropsOnlyCursors(t *testing.T) {
	p := Progress{
		State: StateRunning, Generation: 3, Pages: PageCounts{Completed: 5, Failed: 1},
		Recent:      []Failure{{Page: 2, Cursor: "c2", Type: "Timeout"}},
		FailedPages: []ParkedPage{{Page: Page{Number: 2, Cursor: "c2"}, State: PageFailed}},
		Frontier:    Page{Number: 7, Cursor: "c7"},
		Runs:        2, LastRedrive: "r1",
	}
	s := p.Summary()
	require.Nil(t, s.FailedPages)
	require.Zero(t, s.Frontier)
	p.FailedPages, p.Frontier = nil, Page{}
	require.Equal(t, p, s, "everything else, Recent with its cursors included (status shows them), stays")
}

func TestUnknownQuery(t *testing.T) {
	sdkAnswer := "unknown queryType progressSummary. KnownQueryTypes=[progress __stack_trace __open_sessions __temporal_workflow_metadata]"
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"an older worker's answer", serviceerror.NewQueryFailed(sdkAnswer), true},
		{"wrapped", fmt.Errorf("query: %w", serviceerror.NewQueryFailed(sdkAnswer)), true},
		{"the query handler failed", serviceerror.NewQueryFailed("panic in handler"), false},
		{"not found", serviceerror.NewNotFound("workflow not found"), false},
		{"unavailable", serviceerror.NewUnavailable("unknown queryType"), false},
		{"deadline", context.DeadlineExceeded, false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, unknownQuery(tc.err)) })
	}
}

func TestClientProgressFallsBack(t *testing.T) {
	full := Progress{State: StateRunning, Pages: PageCounts{Completed: 4, Failed: 1},
		FailedPages: []ParkedPage{{Page: Page{Number: 2, Cursor: "big"}, State: PageFailed}}, Frontier: Page{Number: 5, Cursor: "c5"}}
	for _, tc := range []struct {
		name      string
		knows     bool
		failWith  error
		wantCalls []string
		wantErr   bool
	}{
		{"a current worker answers the summary", true, nil, []string{QueryProgressSummary}, false},
		{"an older worker: the full query answers", false, nil, []string{QueryProgressSummary, QueryProgress}, false},
		{"other errors are not retried", true, serviceerror.NewUnavailable("down"), []string{QueryProgressSummary}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &queryClient{progress: full, knowsSummary: tc.knows, err: tc.failWith}
			p, err := NewClient(q, "").Progress(context.Background(), "wf")
			require.Equal(t, tc.wantCalls, q.calls)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, full.Summary(), p, "the same slim progress either way")
		})
	}
}

func TestClientRunningProgress(t *testing.T) {
	full := Progress{State: StateRunning, Pages: PageCounts{Completed: 4}}

	q := &queryClient{progress: full, knowsSummary: true}
	p, err := NewClient(q, "").RunningProgress(context.Background(), "wf")
	require.NoError(t, err)
	require.Equal(t, full, p)
	require.Equal(t, []enumspb.QueryRejectCondition{enumspb.QUERY_REJECT_CONDITION_NOT_OPEN}, q.rejects, "one call, rejected by the server once closed")

	q = &queryClient{progress: full, knowsSummary: true, closed: true}
	_, err = NewClient(q, "").RunningProgress(context.Background(), "wf")
	require.ErrorIs(t, err, ErrClosed)
	_, err = NewClient(q, "").Progress(context.Background(), "wf")
	require.NoError(t, err, "Progress answers on closed workflows too")

	q = &queryClient{progress: full, closed: true}
	_, err = NewClient(q, "").RunningProgress(context.Background(), "wf")
	require.ErrorIs(t, err, ErrClosed, "a closed workflow is rejected before any worker is asked")
	require.Equal(t, []string{QueryProgressSummary}, q.calls)
}

// queryClient answers the progress queries as a worker of the current
// code, or of one from before the summary query, would.
type queryClient struct {
	client.Client
	progress     Progress
	knowsSummary bool
	closed       bool
	err          error
	calls        []string
	rejects      []enumspb.QueryRejectCondition
}

func (q *queryClient) QueryWorkflowWithOptions(_ context.Context, req *client.QueryWorkflowWithOptionsRequest) (*client.QueryWorkflowWithOptionsResponse, error) {
	q.calls = append(q.calls, req.QueryType)
	q.rejects = append(q.rejects, req.QueryRejectCondition)
	switch {
	case q.err != nil:
		return nil, q.err
	case q.closed && req.QueryRejectCondition == enumspb.QUERY_REJECT_CONDITION_NOT_OPEN:
		return &client.QueryWorkflowWithOptionsResponse{QueryRejected: &querypb.QueryRejected{Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED}}, nil
	case req.QueryType == QueryProgressSummary && !q.knowsSummary:
		return nil, serviceerror.NewQueryFailed(fmt.Sprintf("unknown queryType %s. KnownQueryTypes=[%s]", req.QueryType, QueryProgress))
	case req.QueryType == QueryProgressSummary:
		return &client.QueryWorkflowWithOptionsResponse{QueryResult: jsonValue{q.progress.Summary()}}, nil
	case req.QueryType == QueryProgress:
		return &client.QueryWorkflowWithOptionsResponse{QueryResult: jsonValue{q.progress}}, nil
	}
	return nil, errors.New("unexpected query " + req.QueryType)
}

type jsonValue struct{ v any }

func (j jsonValue) HasValue() bool { return true }

func (j jsonValue) Get(ptr any) error {
	raw, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, ptr)
}
