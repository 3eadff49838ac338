package temporalbatch_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// Histories recorded from real runs must replay against the current
// workflow code: a change that breaks this needs workflow.GetVersion.
// Record a new one with `go test -run TestIntegrationReplay -record-history`.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/history-*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no committed histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := newReplayer(t)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

func newReplayer(t *testing.T) worker.WorkflowReplayer {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(temporalbatch.BatchOrchestrator, workflow.RegisterOptions{Name: temporalbatch.WorkflowType})
	return r
}
