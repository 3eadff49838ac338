package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// RecordedFailure is one line RecordFailures appends to its file: the
// failure's fields, plus the job it belongs to.
type RecordedFailure struct {
	Job processor.JobRef `json:"job"`
	processor.FailureReport
}

// FailureRecorder is the RecordFailures failure handler: it logs every
// failure it receives and, when File is set, appends it there as a JSON line,
// so that tests and demos can see exactly what the orchestrator reported.
//
// The orchestrator retries a handler that fails, so a batch may be recorded
// more than once.
type FailureRecorder struct {
	// File is the path failures are appended to; empty records to the log
	// only.
	File string
	// Logger receives one record per failure; nil means slog.Default().
	Logger *slog.Logger
}

// RecordFailures records a batch of failures.
func (r *FailureRecorder) RecordFailures(ctx context.Context, batch processor.FailureBatch) error {
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	job := batch.Job.Namespace + "/" + batch.Job.Name
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	for _, f := range batch.Failures {
		logger.LogAttrs(ctx, slog.LevelInfo, "Batch failure",
			slog.String("job", job),
			slog.String("workflowId", batch.Job.WorkflowID),
			slog.Int64("page", f.Page),
			slog.String("cursor", f.Cursor),
			slog.String("item", f.Item),
			slog.String("type", f.Type),
			slog.String("message", f.Message),
			slog.Time("time", f.Time),
		)
		if err := enc.Encode(RecordedFailure{Job: batch.Job, FailureReport: f}); err != nil {
			return fmt.Errorf("encode failure of page %d: %w", f.Page, err)
		}
	}
	if r.File == "" || lines.Len() == 0 {
		return nil
	}
	// One append per batch keeps the batch's lines together when several
	// workers record to the same file.
	if err := appendFile(r.File, lines.Bytes()); err != nil {
		return fmt.Errorf("record failures to %s: %w", r.File, err)
	}
	return nil
}
