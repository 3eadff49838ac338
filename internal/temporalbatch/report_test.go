package temporalbatch

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

type reportSink struct {
	mu      sync.Mutex
	reports []Report
}

func (s *reportSink) Report(r Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r)
}

func TestReportsFollowTheRunToItsEnd(t *testing.T) {
	d := newSimDataSet(100, 10)
	d.duration = 5 * time.Second
	d.result = func(page int64, res *processor.PageResult) {
		if page == 2 || page == 7 {
			res.ItemsProcessed--
			res.ItemsFailed++
			res.FailedItems = append(res.FailedItems, processor.FailedItem{Item: "x", Type: "BadRow", Message: "bad"})
		}
	}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.SetStartTime(d.clock)
	sink := &reportSink{}
	RegisterReporting(env, sink)
	RegisterActivities(env, nil)
	env.RegisterActivityWithOptions(d.process, activity.RegisterOptions{Name: simProcessorName})
	d.env.Store(env)
	env.ExecuteWorkflow(WorkflowType, simInput(d, 3))
	require.True(t, env.IsWorkflowCompleted())
	res := succeeded(t, env)

	reps := sink.reports
	require.Greater(t, len(reps), 10, "a report after every pass of the loop")
	var firstFailure *Report
	for i, r := range reps {
		require.Equal(t, reps[0].WorkflowID, r.WorkflowID)
		require.Equal(t, simInput(d, 3).Job, r.Job)
		require.NotEmpty(t, r.RunID)
		require.Empty(t, r.Progress.FailedPages, "reports carry no cursors")
		if i > 0 {
			prev := reps[i-1].Progress
			require.GreaterOrEqual(t, r.Progress.Pages.Completed, prev.Pages.Completed, "report %d went back", i)
			require.GreaterOrEqual(t, r.Progress.Items.Processed, prev.Items.Processed, "report %d went back", i)
		}
		if firstFailure == nil && r.Progress.ByType["BadRow"] > 0 {
			firstFailure = &reps[i]
		}
	}
	// Each report owns its maps: later failures do not show in earlier ones.
	require.NotNil(t, firstFailure)
	require.EqualValues(t, 1, firstFailure.Progress.ByType["BadRow"])
	require.Len(t, firstFailure.Progress.Recent, 1)

	// The end state shows before the run closes, then the final report
	// matches the Result.
	last, finishing := reps[len(reps)-1].Progress, reps[len(reps)-2].Progress
	require.Equal(t, StateSucceeded, finishing.State)
	require.Nil(t, finishing.CompletionTime, "the run has not closed when it first reports its end")
	require.Equal(t, StateSucceeded, last.State)
	require.NotNil(t, last.CompletionTime)
	require.Equal(t, res.Progress.Counters, last.Counters)
	require.EqualValues(t, 2, last.ByType["BadRow"])
}
