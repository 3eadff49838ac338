package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
	"github.com/temporal-batch/temporal-batch/pkg/processor/processortest"
)

const workflowID = "batchjob/shop/inflate-prices/0f1e2d3c"

func pageInput(number int64, cursor string, args string) processor.PageInput {
	in := processor.PageInput{
		Job:  processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: workflowID},
		Page: processor.PageRef{Number: number, Cursor: cursor, Size: 10},
	}
	if args != "" {
		in.Args = json.RawMessage(args)
	}
	return in
}

// applicationError returns the application error in err's chain, failing the
// test when there is none.
func applicationError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v is not an application error", err)
	}
	return appErr
}

func TestPageCarriesInput(t *testing.T) {
	var got *processor.Page
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		got = page
		return processor.Result{}, nil
	})
	in := pageInput(7, "abc", `{"percent":3}`)
	if _, err := env.ExecuteAttempt(in, 4, nil); err != nil {
		t.Fatal(err)
	}
	if got.Job != in.Job || got.Number != 7 || got.Cursor != "abc" || got.Size != 10 || got.Attempt != 4 {
		t.Errorf("page = %+v, want the input's job, number 7, cursor abc, size 10, attempt 4", got)
	}
	if string(got.Args) != `{"percent":3}` {
		t.Errorf("Args = %s, want the input's args", got.Args)
	}
}

func TestResultConversion(t *testing.T) {
	longMessage := strings.Repeat("a", processor.MaxFailureMessageBytes-1) + "é and more"
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		for i := range 150 {
			page.FailItem(fmt.Sprint(i), "InvalidRecord", longMessage)
		}
		return processor.Result{ItemsProcessed: 42, NextCursor: "next"}, nil
	})
	res, err := env.Execute(pageInput(0, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsProcessed != 42 {
		t.Errorf("ItemsProcessed = %d, want 42", res.ItemsProcessed)
	}
	if res.ItemsFailed != 150 {
		t.Errorf("ItemsFailed = %d, want the true count 150", res.ItemsFailed)
	}
	if len(res.FailedItems) != processor.MaxReportedFailedItems {
		t.Fatalf("len(FailedItems) = %d, want %d", len(res.FailedItems), processor.MaxReportedFailedItems)
	}
	first := res.FailedItems[0]
	if first.Item != "0" || first.Type != "InvalidRecord" {
		t.Errorf("first failed item = %+v, want item 0 of type InvalidRecord", first)
	}
	if res.FailedItems[99].Item != "99" {
		t.Errorf("last reported item = %q, want the 100th reported, 99", res.FailedItems[99].Item)
	}
	// The cut falls inside the two-byte "é", which must not be split.
	if len(first.Message) != processor.MaxFailureMessageBytes-1 || !utf8.ValidString(first.Message) {
		t.Errorf("message cut to %d bytes (valid UTF-8: %t), want %d bytes of valid UTF-8",
			len(first.Message), utf8.ValidString(first.Message), processor.MaxFailureMessageBytes-1)
	}
	if res.NextCursor != "next" {
		t.Errorf("NextCursor = %q, want the fallback cursor when nothing was enqueued", res.NextCursor)
	}
	if got := env.Signals(); len(got) != 0 {
		t.Errorf("signals = %+v, want none", got)
	}
}

func TestResultWithoutFailures(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		page.FailItem("sku-1", "InvalidRecord", "short")
		return processor.Result{ItemsProcessed: 9}, nil
	})
	res, err := env.Execute(pageInput(0, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := processor.PageResult{
		ItemsProcessed: 9,
		ItemsFailed:    1,
		FailedItems:    []processor.FailedItem{{Item: "sku-1", Type: "InvalidRecord", Message: "short"}},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result = %+v, want %+v", res, want)
	}
}

func TestEnqueueNextSignalsCurrentRun(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		if err := page.EnqueueNext(ctx, "cursor-18"); err != nil {
			return processor.Result{}, err
		}
		// A second call in the same attempt must not enqueue the page twice.
		if err := page.EnqueueNext(ctx, "cursor-18"); err != nil {
			return processor.Result{}, err
		}
		return processor.Result{ItemsProcessed: 10, NextCursor: "ignored"}, nil
	})
	res, err := env.Execute(pageInput(17, "cursor-17", ""))
	if err != nil {
		t.Fatal(err)
	}
	signals := env.Signals()
	if len(signals) != 1 {
		t.Fatalf("signals = %+v, want exactly one", signals)
	}
	s := signals[0]
	if s.WorkflowID != workflowID || s.RunID != "" || s.Name != processor.EnqueuePageSignal {
		t.Errorf("signal went to workflow %q run %q as %q, want workflow %q, empty run ID, %q",
			s.WorkflowID, s.RunID, s.Name, workflowID, processor.EnqueuePageSignal)
	}
	if want := (processor.EnqueuePage{Number: 18, Cursor: "cursor-18"}); s.Page != want {
		t.Errorf("signal body = %+v, want %+v", s.Page, want)
	}
	if res.NextCursor != "" {
		t.Errorf("NextCursor = %q, want it dropped once the next page is enqueued", res.NextCursor)
	}
}

func TestRetryDoesNotEnqueueAgain(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		if err := page.EnqueueNext(ctx, "next"); err != nil {
			return processor.Result{}, err
		}
		if page.Attempt == 1 {
			return processor.Result{}, errors.New("database went away")
		}
		return processor.Result{ItemsProcessed: 10}, nil
	})
	if _, err := env.Execute(pageInput(3, "", "")); err == nil {
		t.Fatal("first attempt succeeded, want it to fail")
	}
	if _, err := env.Retry(); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if got := env.EnqueuedPages(); len(got) != 1 || got[0].Number != 4 {
		t.Errorf("enqueued pages = %+v, want page 4 exactly once across both attempts", got)
	}
}

// TestHeartbeatMarkerSkipsEnqueue drives the SDK's activity environment
// directly. Its client is a strict mock, so any signal attempt fails the test.
func TestHeartbeatMarkerSkipsEnqueue(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetHeartbeatDetails(processor.HeartbeatMarker{EnqueuedNext: true})
	processor.Register(env, "page", func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		if err := page.EnqueueNext(ctx, "next"); err != nil {
			return processor.Result{}, err
		}
		return processor.Result{ItemsProcessed: 1, NextCursor: "next"}, nil
	})
	val, err := env.ExecuteActivity("page", pageInput(0, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	var res processor.PageResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.NextCursor != "" {
		t.Errorf("NextCursor = %q, want none: an earlier attempt enqueued the next page", res.NextCursor)
	}
}

func TestEnqueueNextSignalError(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		if err := page.EnqueueNext(ctx, "next"); err != nil {
			return processor.Result{}, err
		}
		return processor.Result{ItemsProcessed: 10}, nil
	})
	env.FailSignals(errors.New("frontend unavailable"))
	_, err := env.Execute(pageInput(0, "", ""))
	if err == nil || !strings.Contains(err.Error(), "frontend unavailable") {
		t.Fatalf("error = %v, want the signal error", err)
	}
	if appErr := applicationError(t, err); appErr.NonRetryable() {
		t.Errorf("signal error is non-retryable, want the attempt retried")
	}

	// The failed attempt recorded no marker, so the retry signals.
	env.FailSignals(nil)
	if _, err := env.Retry(); err != nil {
		t.Fatal(err)
	}
	if got := env.EnqueuedPages(); len(got) != 1 || got[0].Number != 1 {
		t.Errorf("enqueued pages = %+v, want page 1 once", got)
	}
}

func TestEnqueueNextWithoutWorkflowID(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		return processor.Result{}, page.EnqueueNext(ctx, "next")
	})
	in := pageInput(0, "", "")
	in.Job.WorkflowID = ""
	_, err := env.Execute(in)
	appErr := applicationError(t, err)
	if appErr.Type() != processor.ErrorTypeInvalidPageInput || !appErr.NonRetryable() {
		t.Errorf("error type %q non-retryable %t, want non-retryable %q", appErr.Type(), appErr.NonRetryable(), processor.ErrorTypeInvalidPageInput)
	}
}

func TestDecodeArgs(t *testing.T) {
	type args struct {
		Percent int    `json:"percent"`
		Mode    string `json:"mode"`
	}
	for _, tc := range []struct {
		name    string
		raw     string
		want    args
		wantErr bool
	}{
		{name: "decodes", raw: `{"percent": 3}`, want: args{Percent: 3, Mode: "default"}},
		{name: "no args keeps defaults", raw: "", want: args{Mode: "default"}},
		{name: "null keeps defaults", raw: "null", want: args{Mode: "default"}},
		{name: "wrong type", raw: `{"percent": "three"}`, wantErr: true},
		{name: "not an object", raw: `[1, 2]`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got args
			env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
				got = args{Mode: "default"}
				return processor.Result{}, page.DecodeArgs(&got)
			})
			_, err := env.Execute(pageInput(0, "", tc.raw))
			if tc.wantErr {
				appErr := applicationError(t, err)
				if appErr.Type() != processor.ErrorTypeInvalidArgs || !appErr.NonRetryable() {
					t.Errorf("error type %q non-retryable %t, want non-retryable %q", appErr.Type(), appErr.NonRetryable(), processor.ErrorTypeInvalidArgs)
				}
				if !strings.Contains(appErr.Error(), "spec.processor.args") {
					t.Errorf("error %q does not say which field is wrong", appErr.Error())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("args = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestErrorHelpers(t *testing.T) {
	cause := errors.New("row 12 has no price")
	for _, tc := range []struct {
		name         string
		err          error
		nonRetryable bool
	}{
		{name: "NonRetryable", err: processor.NonRetryable("InvalidRecord", "page 3: %w", cause), nonRetryable: true},
		{name: "Retryable", err: processor.Retryable("InvalidRecord", "page 3: %w", cause)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appErr := applicationError(t, tc.err)
			if appErr.Type() != "InvalidRecord" || appErr.NonRetryable() != tc.nonRetryable {
				t.Errorf("type %q non-retryable %t, want InvalidRecord, %t", appErr.Type(), appErr.NonRetryable(), tc.nonRetryable)
			}
			if !strings.Contains(appErr.Error(), "page 3: row 12 has no price") {
				t.Errorf("message %q lacks the formatted text", appErr.Error())
			}
		})
	}
}

func TestRegisterFailureHandler(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	var got processor.FailureBatch
	processor.RegisterFailureHandler(env, "RecordFailures", func(ctx context.Context, batch processor.FailureBatch) error {
		got = batch
		return nil
	})
	batch := processor.FailureBatch{
		Job:      processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: workflowID},
		Failures: []processor.FailureReport{{Page: 3, Item: "sku-1", Type: "InvalidRecord"}},
	}
	if _, err := env.ExecuteActivity("RecordFailures", batch); err != nil {
		t.Fatal(err)
	}
	if got.Job != batch.Job || len(got.Failures) != 1 || got.Failures[0].Item != "sku-1" {
		t.Errorf("handler received %+v, want %+v", got, batch)
	}
}

// TestMarkedErrorsCarryDetails: a page that fails with an error marked
// Sensitive or NothingProcessed reaches the orchestrator as an application
// error of the same type and retry behaviour, with the ErrorDetails set.
func TestMarkedErrorsCarryDetails(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		wantType     string
		nonRetryable bool
		want         processor.ErrorDetails
	}{
		{name: "sensitive application error", err: processor.Sensitive(processor.NonRetryable("DBError", "dial %s", "postgres://u:p@db")),
			wantType: "DBError", nonRetryable: true, want: processor.ErrorDetails{Sensitive: true}},
		{name: "nothing processed, plain error", err: processor.NothingProcessed(fmt.Errorf("fetch page: %w", errors.New("timeout"))),
			wantType: "wrapError", want: processor.ErrorDetails{NothingProcessed: true}},
		{name: "both", err: processor.Sensitive(processor.NothingProcessed(processor.Retryable("Fetch", "GET %s", "https://token@api"))),
			wantType: "Fetch", want: processor.ErrorDetails{Sensitive: true, NothingProcessed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
				return processor.Result{}, tc.err
			})
			_, err := env.ExecuteAttempt(pageInput(3, "30", ""), 1, nil)
			appErr := applicationError(t, err)
			if appErr.Type() != tc.wantType || appErr.NonRetryable() != tc.nonRetryable {
				t.Errorf("type %q non-retryable %t, want %q, %t", appErr.Type(), appErr.NonRetryable(), tc.wantType, tc.nonRetryable)
			}
			var got processor.ErrorDetails
			if err := appErr.Details(&got); err != nil || got != tc.want {
				t.Errorf("details %+v (%v), want %+v", got, err, tc.want)
			}
		})
	}
	if processor.Sensitive(nil) != nil || processor.NothingProcessed(nil) != nil {
		t.Error("marking a nil error must stay nil")
	}
}

func TestTotalAttemptCountsEarlierRounds(t *testing.T) {
	var got *processor.Page
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		got = page
		return processor.Result{}, nil
	})
	in := pageInput(7, "abc", "")
	in.PriorAttempts, in.TotalPriorAttempts = 1, 6
	if _, err := env.ExecuteAttempt(in, 2, nil); err != nil {
		t.Fatal(err)
	}
	if got.Attempt != 3 || got.TotalAttempt != 9 {
		t.Errorf("Attempt %d TotalAttempt %d, want 3 and 9", got.Attempt, got.TotalAttempt)
	}
}

func TestFailItemSensitive(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		page.FailItemSensitive("sku-1", "Rejected", "row has card 4111")
		return processor.Result{ItemsProcessed: 9}, nil
	})
	res, err := env.ExecuteAttempt(pageInput(1, "10", ""), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.FailedItems) != 1 || !res.FailedItems[0].Sensitive {
		t.Errorf("failed items %+v, want one marked sensitive", res.FailedItems)
	}
}
