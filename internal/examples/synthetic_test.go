package examples

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
	"github.com/temporal-batch/temporal-batch/pkg/processor/processortest"
)

const testWorkflowID = "batchjob/demo/synthetic/uid"

func syntheticPage(t *testing.T, number int64, cursor string, size int, args any) processor.PageInput {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return processor.PageInput{
		Job:  processor.JobRef{Namespace: "demo", Name: "synthetic", WorkflowID: testWorkflowID},
		Page: processor.PageRef{Number: number, Cursor: cursor, Size: size},
		Args: raw,
	}
}

func applicationError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v is not an application error", err)
	}
	return appErr
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestSyntheticEnqueuesNextPage(t *testing.T) {
	for _, tc := range []struct {
		name          string
		total         int64
		cursor        string
		wantProcessed int64
		wantEnqueued  []processor.EnqueuePage
	}{
		{name: "first page", total: 25, cursor: "", wantProcessed: 10,
			wantEnqueued: []processor.EnqueuePage{{Number: 4, Cursor: "10"}}},
		{name: "middle page", total: 25, cursor: "10", wantProcessed: 10,
			wantEnqueued: []processor.EnqueuePage{{Number: 4, Cursor: "20"}}},
		{name: "short last page", total: 25, cursor: "20", wantProcessed: 5},
		{name: "full last page", total: 20, cursor: "10", wantProcessed: 10},
		{name: "cursor past the end", total: 5, cursor: "10", wantProcessed: 0},
		{name: "empty data set", total: 0, cursor: "", wantProcessed: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := processortest.New(Synthetic)
			res, err := env.Execute(syntheticPage(t, 3, tc.cursor, 10, SyntheticArgs{TotalItems: tc.total}))
			if err != nil {
				t.Fatal(err)
			}
			if res.ItemsProcessed != tc.wantProcessed || res.ItemsFailed != 0 {
				t.Errorf("processed %d, failed %d; want %d, 0", res.ItemsProcessed, res.ItemsFailed, tc.wantProcessed)
			}
			if got := env.EnqueuedPages(); !reflect.DeepEqual(got, tc.wantEnqueued) {
				t.Errorf("enqueued %+v, want %+v", got, tc.wantEnqueued)
			}
		})
	}
}

// TestSyntheticChain follows the chain of pages the way the orchestrator
// does and checks, through the ledger, that every item is processed once.
func TestSyntheticChain(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger")
	args := SyntheticArgs{TotalItems: 23, Ledger: ledger, FetchDelay: "1ms", ItemDelay: "100us"}
	env := processortest.New(Synthetic)
	next := processor.EnqueuePage{Number: 0}
	var processed int64
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("chain of 23 items in pages of 10 did not end after 3 pages")
		}
		res, err := env.Execute(syntheticPage(t, next.Number, next.Cursor, 10, args))
		if err != nil {
			t.Fatal(err)
		}
		processed += res.ItemsProcessed
		enqueued := env.EnqueuedPages()
		if len(enqueued) == pages {
			break
		}
		next = enqueued[len(enqueued)-1]
	}
	if processed != 23 {
		t.Errorf("processed %d items, want 23", processed)
	}
	lines := readLines(t, ledger)
	if len(lines) != 23 {
		t.Fatalf("ledger has %d lines, want 23", len(lines))
	}
	for _, want := range []string{"0 0 1", "9 0 1", "10 1 1", "22 2 1"} {
		if !slices.Contains(lines, want) {
			t.Errorf("ledger lacks %q: %q", want, lines)
		}
	}
}

func TestSyntheticFailItems(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger")
	env := processortest.New(Synthetic)
	res, err := env.Execute(syntheticPage(t, 1, "10", 10, SyntheticArgs{
		TotalItems: 100,
		FailItems:  map[string]string{"13": "InvalidRecord", "17": "Timeout", "42": "OtherPage"},
		Ledger:     ledger,
	}))
	if err != nil {
		t.Fatalf("page failed, want it to succeed with failed items: %v", err)
	}
	if res.ItemsProcessed != 8 || res.ItemsFailed != 2 {
		t.Errorf("processed %d, failed %d; want 8, 2", res.ItemsProcessed, res.ItemsFailed)
	}
	var failed []string
	for _, f := range res.FailedItems {
		failed = append(failed, f.Item+":"+f.Type)
	}
	if want := []string{"13:InvalidRecord", "17:Timeout"}; !reflect.DeepEqual(failed, want) {
		t.Errorf("failed items %v, want %v", failed, want)
	}
	lines := readLines(t, ledger)
	if len(lines) != 8 || slices.Contains(lines, "13 1 1") || slices.Contains(lines, "17 1 1") {
		t.Errorf("ledger %q, want the 8 processed items only", lines)
	}
}

func TestSyntheticFailPages(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger")
	args := SyntheticArgs{
		TotalItems: 100,
		FailPages:  map[string]PageFailure{"2": {Type: "Flaky", Attempts: 2}},
		Ledger:     ledger,
	}
	env := processortest.New(Synthetic)
	in := syntheticPage(t, 2, "20", 10, args)
	for attempt := 1; attempt <= 2; attempt++ {
		var err error
		if attempt == 1 {
			_, err = env.Execute(in)
		} else {
			_, err = env.Retry()
		}
		appErr := applicationError(t, err)
		if appErr.Type() != "Flaky" || appErr.NonRetryable() {
			t.Errorf("attempt %d failed with type %q non-retryable %t, want retryable Flaky", attempt, appErr.Type(), appErr.NonRetryable())
		}
	}
	res, err := env.Retry()
	if err != nil {
		t.Fatalf("attempt 3: %v", err)
	}
	if res.ItemsProcessed != 10 {
		t.Errorf("attempt 3 processed %d items, want 10", res.ItemsProcessed)
	}
	// The failing attempts enqueued the next page before failing; the
	// retries did not enqueue it again.
	if got, want := env.EnqueuedPages(), []processor.EnqueuePage{{Number: 3, Cursor: "30"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("enqueued %+v, want %+v", got, want)
	}
	if lines := readLines(t, ledger); len(lines) != 10 || lines[0] != "20 2 3" {
		t.Errorf("ledger %q, want 10 lines from attempt 3 only", lines)
	}
	// Other pages are not affected.
	if _, err := processortest.New(Synthetic).Execute(syntheticPage(t, 1, "10", 10, args)); err != nil {
		t.Errorf("page 1: %v", err)
	}
}

func TestSyntheticFailPagesEveryAttempt(t *testing.T) {
	args := SyntheticArgs{TotalItems: 100, FailPages: map[string]PageFailure{"0": {Type: "Broken"}}}
	_, err := processortest.New(Synthetic).ExecuteAttempt(syntheticPage(t, 0, "", 10, args), 50, nil)
	if appErr := applicationError(t, err); appErr.Type() != "Broken" {
		t.Errorf("attempt 50 failed with type %q, want Broken", appErr.Type())
	}
}

// TestSyntheticFailWhileExists: the listed pages fail while the file exists,
// on every attempt, and succeed once it is gone, also on an attempt 1 (a
// re-driven page starts over).
func TestSyntheticFailWhileExists(t *testing.T) {
	dir := t.TempDir()
	marker, ledger := filepath.Join(dir, "broken"), filepath.Join(dir, "ledger")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := SyntheticArgs{
		TotalItems:      100,
		FailPages:       map[string]PageFailure{"2": {Type: "BadData"}},
		FailWhileExists: marker,
		Ledger:          ledger,
	}
	in := syntheticPage(t, 2, "20", 10, args)
	for _, attempt := range []int32{1, 7} {
		_, err := processortest.New(Synthetic).ExecuteAttempt(in, attempt, nil)
		if appErr := applicationError(t, err); appErr.Type() != "BadData" {
			t.Errorf("attempt %d with the file present failed with type %q, want BadData", attempt, appErr.Type())
		}
	}
	// Pages not listed run while the file exists.
	if _, err := processortest.New(Synthetic).Execute(syntheticPage(t, 1, "10", 10, args)); err != nil {
		t.Errorf("page 1: %v", err)
	}

	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	res, err := processortest.New(Synthetic).Execute(in)
	if err != nil {
		t.Fatalf("attempt 1 after the file is gone: %v", err)
	}
	if res.ItemsProcessed != 10 {
		t.Errorf("processed %d items, want 10", res.ItemsProcessed)
	}
	if lines := readLines(t, ledger); len(lines) != 20 || !slices.Contains(lines, "20 2 1") {
		t.Errorf("ledger %q, want pages 1 and 2, attempt 1 each", lines)
	}
}

func TestSyntheticInvalidInput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     string
		cursor   string
		size     int
		wantType string
		wantText string
	}{
		{name: "no args", args: ``, wantType: "InvalidArgs", wantText: "totalItems"},
		{name: "totalItems missing", args: `{"itemDelay": "1s"}`, wantType: "InvalidArgs", wantText: "totalItems"},
		{name: "totalItems negative", args: `{"totalItems": -5}`, wantType: "InvalidArgs", wantText: "totalItems"},
		{name: "totalItems not a number", args: `{"totalItems": "ten"}`, wantType: "InvalidArgs", wantText: "totalItems"},
		{name: "unknown argument", args: `{"totalItems": 10, "failPage": {}}`, wantType: "InvalidArgs", wantText: "failPage"},
		{name: "itemDelay not a duration", args: `{"totalItems": 10, "itemDelay": "10"}`, wantType: "InvalidArgs", wantText: "itemDelay"},
		{name: "fetchDelay negative", args: `{"totalItems": 10, "fetchDelay": "-1s"}`, wantType: "InvalidArgs", wantText: "fetchDelay"},
		{name: "failItems without type", args: `{"totalItems": 10, "failItems": {"3": ""}}`, wantType: "InvalidArgs", wantText: "failItems"},
		{name: "failPages without type", args: `{"totalItems": 10, "failPages": {"3": {"attempts": 1}}}`, wantType: "InvalidArgs", wantText: "failPages"},
		{name: "failPages negative attempts", args: `{"totalItems": 10, "failPages": {"3": {"type": "X", "attempts": -1}}}`, wantType: "InvalidArgs", wantText: "failPages"},
		{name: "cursor not a number", args: `{"totalItems": 10}`, cursor: "abc", wantType: "InvalidCursor", wantText: "abc"},
		{name: "cursor negative", args: `{"totalItems": 10}`, cursor: "-10", wantType: "InvalidCursor", wantText: "-10"},
		{name: "page size not positive", args: `{"totalItems": 10}`, size: -1, wantType: "InvalidPageInput", wantText: "page size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := 10
			if tc.size != 0 {
				size = tc.size
			}
			in := syntheticPage(t, 0, tc.cursor, size, nil)
			in.Args = json.RawMessage(tc.args)
			env := processortest.New(Synthetic)
			_, err := env.Execute(in)
			appErr := applicationError(t, err)
			if appErr.Type() != tc.wantType || !appErr.NonRetryable() {
				t.Errorf("error type %q non-retryable %t, want non-retryable %q", appErr.Type(), appErr.NonRetryable(), tc.wantType)
			}
			if !strings.Contains(appErr.Error(), tc.wantText) {
				t.Errorf("error %q does not mention %q", appErr.Error(), tc.wantText)
			}
			if got := env.Signals(); len(got) != 0 {
				t.Errorf("invalid page enqueued %+v", got)
			}
		})
	}
}
