package controller

import (
	"context"
	"errors"
	"testing"

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
			name:  "reports its end, not closed yet: as reported",
			o:     fakeOrchestrator{progress: ending},
			calls: []string{"RunningProgress", "Outcome"}, progress: &ending,
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
		})
	}
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
