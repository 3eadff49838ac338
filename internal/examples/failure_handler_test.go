package examples

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

func failureBatch() processor.FailureBatch {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	return processor.FailureBatch{
		Job: processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: testWorkflowID},
		Failures: []processor.FailureReport{
			{Page: 17, Cursor: "1700", Item: "sku-991", Type: "InvalidRecord", Message: "no price", Time: at},
			{Page: 18, Cursor: "1800", Type: "Timeout", Message: "page failed for good", Time: at},
		},
	}
}

func TestRecordFailures(t *testing.T) {
	file := filepath.Join(t.TempDir(), "failures.jsonl")
	var logged bytes.Buffer
	recorder := &FailureRecorder{File: file, Logger: slog.New(slog.NewJSONHandler(&logged, nil))}
	batch := failureBatch()
	// A retried batch appends again rather than replacing what is there.
	for range 2 {
		if err := recorder.RecordFailures(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}

	lines := readLines(t, file)
	if len(lines) != 4 {
		t.Fatalf("file has %d lines, want 4: %q", len(lines), lines)
	}
	for i, line := range lines {
		var got RecordedFailure
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		want := RecordedFailure{Job: batch.Job, FailureReport: batch.Failures[i%2]}
		if got != want {
			t.Errorf("line %d = %+v, want %+v", i, got, want)
		}
	}
	if !strings.Contains(lines[0], `"item":"sku-991"`) || !strings.Contains(lines[0], `"workflowId":"`+testWorkflowID+`"`) {
		t.Errorf("line %q does not carry the failure's fields flat beside the job", lines[0])
	}

	logLines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(logLines) != 4 {
		t.Fatalf("logged %d records, want one per failure: %q", len(logLines), logLines)
	}
	var record map[string]any
	if err := json.Unmarshal([]byte(logLines[0]), &record); err != nil {
		t.Fatal(err)
	}
	if record["job"] != "shop/inflate-prices" || record["item"] != "sku-991" || record["type"] != "InvalidRecord" {
		t.Errorf("log record %v lacks the job and failure", record)
	}
}

func TestRecordFailuresWithoutFile(t *testing.T) {
	var logged bytes.Buffer
	recorder := &FailureRecorder{Logger: slog.New(slog.NewJSONHandler(&logged, nil))}
	if err := recorder.RecordFailures(t.Context(), failureBatch()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logged.String(), "\n"); n != 2 {
		t.Errorf("logged %d records, want 2", n)
	}
}

func TestRegister(t *testing.T) {
	file := filepath.Join(t.TempDir(), "failures.jsonl")
	t.Setenv(EnvFailuresFile, file)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	Register(env)

	// A single page of synthetic data enqueues nothing, so it needs no client.
	val, err := env.ExecuteActivity(NameSynthetic, syntheticPage(t, 0, "", 10, SyntheticArgs{TotalItems: 3}))
	if err != nil {
		t.Fatalf("%s: %v", NameSynthetic, err)
	}
	var res processor.PageResult
	if err := val.Get(&res); err != nil || res.ItemsProcessed != 3 {
		t.Errorf("%s processed %d items (%v), want 3", NameSynthetic, res.ItemsProcessed, err)
	}

	db := seededDatabase(t, 3, 100)
	if _, err := env.ExecuteActivity(NameSQLiteMigration, migrationPage(t, 0, "", 10, SQLiteMigrationArgs{Database: db, Percent: 1})); err != nil {
		t.Errorf("%s: %v", NameSQLiteMigration, err)
	}

	if _, err := env.ExecuteActivity(NameRecordFailures, failureBatch()); err != nil {
		t.Fatalf("%s: %v", NameRecordFailures, err)
	}
	if lines := readLines(t, file); len(lines) != 2 {
		t.Errorf("%s wrote %d lines to %s=%s, want 2", NameRecordFailures, len(lines), EnvFailuresFile, file)
	}
}
