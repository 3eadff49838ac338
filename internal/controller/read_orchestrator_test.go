package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// One Temporal call per poll of a running job; Describe only when the query
// cannot tell.
func TestReadOrchestrator(t *testing.T) {
	running := progressFixture()
	ending := progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed", 0))
	final := progressFixture(ended(temporalbatch.StateFailed, temporalbatch.ReasonPagesFailed, "2 pages failed, handler done", 0))
	unavailable := serviceerror.NewUnavailable("connection refused")
	noPoller := serviceerror.NewQueryFailed("no poller")
	terminated := errors.New("workflow execution already completed: terminated")
	tests := []struct {
		name string
		o    fakeOrchestrator

		calls               []string
		progress            *temporalbatch.Progress
		closedWithoutResult bool
		finishing           bool
		err                 error
	}{
		{
			name:  "running: the query alone",
			o:     fakeOrchestrator{progress: running},
			calls: []string{"RunningProgress"}, progress: &running,
		},
		{
			name:  "closed with a result: the query is rejected, the result is read",
			o:     fakeOrchestrator{queryErr: temporalbatch.ErrClosed, closed: true, result: temporalbatch.Result{Progress: final, Next: temporalbatch.Input{State: &temporalbatch.State{}}}},
			calls: []string{"RunningProgress", "Outcome"}, progress: &final,
		},
		{
			name:  "terminated: closed without a result",
			o:     fakeOrchestrator{queryErr: temporalbatch.ErrClosed, closed: true, endErr: terminated},
			calls: []string{"RunningProgress", "Outcome"}, closedWithoutResult: true,
		},
		{
			name:  "reports its end, not closed yet: as reported, finishing",
			o:     fakeOrchestrator{progress: ending},
			calls: []string{"RunningProgress", "Outcome"}, progress: &ending, finishing: true,
		},
		{
			name:  "reports its end and has closed: the result wins",
			o:     fakeOrchestrator{progress: ending, closed: true, result: temporalbatch.Result{Progress: final, Next: temporalbatch.Input{State: &temporalbatch.State{}}}},
			calls: []string{"RunningProgress", "Outcome"}, progress: &final,
		},
		{
			name:  "query unanswered, workflow open: the query's error",
			o:     fakeOrchestrator{queryErr: noPoller},
			calls: []string{"RunningProgress", "Outcome"}, err: noPoller,
		},
		{
			name:  "Temporal down: Describe's error",
			o:     fakeOrchestrator{queryErr: unavailable, outcomeErr: unavailable},
			calls: []string{"RunningProgress", "Outcome"}, err: unavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			r := &BatchJobReconciler{Orchestrator: &o}
			obs := observation{job: reported(planJobFixture(), running)}
			err := r.readOrchestrator(context.Background(), &obs, "wf")
			require.Equal(t, tt.calls, o.calls)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.progress, obs.progress)
			require.Equal(t, tt.closedWithoutResult, obs.closedWithoutResult)
			require.Equal(t, tt.finishing, obs.finishing)
		})
	}
}

// A report from the run in this process stands for the query while it is
// recent and newer than the last query answer.
func TestReadOrchestratorFromReports(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := t0
	queried := progressFixture()
	queried.Pages.Completed = 7
	pushed := progressFixture()
	pushed.Pages.Completed = 9
	ending := progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "done", 0))

	hub := NewProgressHub()
	hub.now = func() time.Time { return clock }
	o := &fakeOrchestrator{progress: queried}
	r := &BatchJobReconciler{Orchestrator: o, Reports: hub, Intervals: DefaultIntervals, Now: func() time.Time { return clock }}
	read := func() observation {
		t.Helper()
		o.calls = nil
		obs := observation{job: reported(planJobFixture(), queried)}
		require.NoError(t, r.readOrchestrator(context.Background(), &obs, "wf"))
		return obs
	}

	obs := read()
	require.Equal(t, []string{"RunningProgress"}, o.calls, "no report yet: the query")
	require.EqualValues(t, 7, obs.progress.Pages.Completed)

	clock = clock.Add(time.Second)
	hub.Report(temporalbatch.Report{WorkflowID: "wf", Progress: pushed})
	obs = read()
	require.Empty(t, o.calls, "a recent report: no Temporal call")
	require.EqualValues(t, 9, obs.progress.Pages.Completed)

	clock = clock.Add(DefaultIntervals.Idle + time.Second)
	read()
	require.Equal(t, []string{"RunningProgress"}, o.calls, "a report older than the idle interval: the query confirms")
	clock = clock.Add(time.Second)
	read()
	require.Equal(t, []string{"RunningProgress"}, o.calls, "the report is older than the query answer: the query again")

	clock = clock.Add(time.Second)
	hub.Report(temporalbatch.Report{WorkflowID: "wf", Progress: ending})
	obs = read()
	require.Equal(t, []string{"Outcome"}, o.calls, "a reported end is checked against the workflow")
	require.True(t, obs.finishing)
}

type fakeOrchestrator struct {
	Orchestrator
	progress   temporalbatch.Progress
	queryErr   error
	closed     bool
	result     temporalbatch.Result
	endErr     error
	outcomeErr error
	calls      []string
}

func (f *fakeOrchestrator) RunningProgress(context.Context, string) (temporalbatch.Progress, error) {
	f.calls = append(f.calls, "RunningProgress")
	return f.progress, f.queryErr
}

func (f *fakeOrchestrator) Outcome(context.Context, string) (temporalbatch.Result, bool, error, error) {
	f.calls = append(f.calls, "Outcome")
	return f.result, f.closed, f.endErr, f.outcomeErr
}
