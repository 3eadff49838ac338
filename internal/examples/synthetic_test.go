package examples

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
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
		{name: "cursor end not a number", args: `{"totalItems": 10}`, cursor: "0:ten", wantType: "InvalidCursor", wantText: `"<offset>:<end>"`},
		{name: "cursor end missing", args: `{"totalItems": 10}`, cursor: "5:", wantType: "InvalidCursor", wantText: `"<offset>:<end>"`},
		{name: "cursor offset not a number", args: `{"totalItems": 10}`, cursor: "x:5", wantType: "InvalidCursor", wantText: `"<offset>:<end>"`},
		{name: "cursor end before offset", args: `{"totalItems": 10}`, cursor: "6:5", wantType: "InvalidCursor", wantText: "end 5 is before offset 6"},
		{name: "cursor end past totalItems", args: `{"totalItems": 10}`, cursor: "0:11", wantType: "InvalidCursor", wantText: "end 11 is past totalItems"},
		{name: "cursor with two ends", args: `{"totalItems": 10}`, cursor: "0:5:10", wantType: "InvalidCursor", wantText: `"<offset>:<end>"`},
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

func lookahead(n int) *int { return &n }

// TestSyntheticLookahead: a page enqueues as many following pages of its
// chain as it is asked for, in one signal, fewer near the chain's end and
// none at it, and processes its own items only.
func TestSyntheticLookahead(t *testing.T) {
	for _, tc := range []struct {
		name          string
		total         int64
		cursor        string
		lookahead     *int
		wantCursors   []string
		wantProcessed int64
	}{
		{name: "not the frontier", total: 100, cursor: "", lookahead: lookahead(0), wantProcessed: 10},
		{name: "asked for one", total: 100, cursor: "", lookahead: lookahead(1), wantCursors: []string{"10"}, wantProcessed: 10},
		{name: "orchestrator without lookahead", total: 100, cursor: "", wantCursors: []string{"10"}, wantProcessed: 10},
		{name: "asked for five", total: 100, cursor: "", lookahead: lookahead(5),
			wantCursors: []string{"10", "20", "30", "40", "50"}, wantProcessed: 10},
		{name: "near the end", total: 35, cursor: "0", lookahead: lookahead(5),
			wantCursors: []string{"10", "20", "30"}, wantProcessed: 10},
		{name: "asked for more than the data has", total: 100, cursor: "70", lookahead: lookahead(1000),
			wantCursors: []string{"80", "90"}, wantProcessed: 10},
		{name: "at the end", total: 30, cursor: "20", lookahead: lookahead(5), wantProcessed: 10},
		{name: "past the end", total: 5, cursor: "10", lookahead: lookahead(5), wantProcessed: 0},
		{name: "chain end kept", total: 100, cursor: "0:35", lookahead: lookahead(5),
			wantCursors: []string{"10:35", "20:35", "30:35"}, wantProcessed: 10},
		{name: "chain end without offset", total: 100, cursor: ":25", lookahead: lookahead(5),
			wantCursors: []string{"10:25", "20:25"}, wantProcessed: 10},
		{name: "chain end inside the page", total: 100, cursor: "30:35", lookahead: lookahead(5), wantProcessed: 5},
		{name: "chain end at the page's end", total: 100, cursor: "20:30", lookahead: lookahead(5), wantProcessed: 10},
		{name: "empty chain", total: 100, cursor: "40:40", lookahead: lookahead(5), wantProcessed: 0},
		{name: "chain end not the frontier", total: 100, cursor: "10:35", lookahead: lookahead(0), wantProcessed: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := syntheticPage(t, 3, tc.cursor, 10, SyntheticArgs{TotalItems: tc.total})
			in.Lookahead = tc.lookahead
			env := processortest.New(Synthetic)
			res, err := env.Execute(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.ItemsProcessed != tc.wantProcessed {
				t.Errorf("processed %d, want %d", res.ItemsProcessed, tc.wantProcessed)
			}
			if got := env.EnqueuedCursors(); !slices.Equal(got, tc.wantCursors) {
				t.Errorf("enqueued %q, want %q", got, tc.wantCursors)
			}
			signals := env.Signals()
			if len(tc.wantCursors) == 0 {
				if len(signals) != 0 {
					t.Errorf("sent %+v, want no signal", signals)
				}
				return
			}
			if len(signals) != 1 || signals[0].Page.Number != 4 {
				t.Errorf("sent %+v, want one signal numbered 4", signals)
			}
		})
	}
}

// TestSyntheticChainStaysInItsPart: the pages of a chain started at
// "<offset>:<end>" process exactly the items offset..end-1, whatever the
// lookahead, and no page enqueues a cursor at or past the end.
func TestSyntheticChainStaysInItsPart(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		ledger := filepath.Join(t.TempDir(), "ledger")
		args := SyntheticArgs{TotalItems: 100, Ledger: ledger}
		pages := walkJob(t, Synthetic, []string{"13:47"}, 10, lookahead(n), args)
		for _, p := range pages {
			c, err := ParseSyntheticCursor(p.Cursor, 100)
			if err != nil || !c.Bounded || c.End != 47 || c.Offset >= 47 {
				t.Errorf("lookahead %d: page %d has cursor %q, want one before 47 ending at 47", n, p.Number, p.Cursor)
			}
		}
		var got, want []int
		for _, line := range readLines(t, ledger) {
			var item, page, attempt int
			if _, err := fmt.Sscan(line, &item, &page, &attempt); err != nil {
				t.Fatalf("ledger line %q: %v", line, err)
			}
			got = append(got, item)
		}
		for item := 13; item < 47; item++ {
			want = append(want, item)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || processedItems(pages) != 34 {
			t.Errorf("lookahead %d: ledger has items %v, pages processed %d; want items 13..46 once each", n, got, processedItems(pages))
		}
	}
}

// TestSyntheticFailingPageEnqueuesItsLookaheadOnce: a page that enqueued
// its successors and then failed does not enqueue them again when retried.
func TestSyntheticFailingPageEnqueuesItsLookaheadOnce(t *testing.T) {
	args := SyntheticArgs{TotalItems: 100, FailPages: map[string]PageFailure{"0": {Type: "Flaky", Attempts: 1}}}
	in := syntheticPage(t, 0, "0:60", 10, args)
	in.Lookahead = lookahead(3)
	env := processortest.New(Synthetic)
	if _, err := env.Execute(in); err == nil {
		t.Fatal("attempt 1 succeeded, want it to fail as failPages asks")
	}
	res, err := env.Retry()
	if err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	if res.ItemsProcessed != 10 {
		t.Errorf("attempt 2 processed %d items, want 10", res.ItemsProcessed)
	}
	if got, want := env.EnqueuedCursors(), []string{"10:60", "20:60", "30:60"}; len(env.Signals()) != 1 || !slices.Equal(got, want) {
		t.Errorf("sent %d signals enqueuing %q, want one enqueuing %q", len(env.Signals()), got, want)
	}
}

// TestSyntheticWalkSeveralChains walks whole data sets split into chains,
// with lookahead, and checks through the ledger that every item is
// processed exactly once and that no chain ran an empty page it did not
// need.
func TestSyntheticWalkSeveralChains(t *testing.T) {
	for _, tc := range []struct {
		name      string
		total     int64
		cursors   []string
		lookahead *int
		wantPages int
	}{
		{name: "four chains, lookahead 5", total: 103, cursors: SplitSynthetic(103, 4), lookahead: lookahead(5), wantPages: 12},
		{name: "uneven chains, lookahead 3", total: 103, cursors: []string{":25", "25:60", "60"}, lookahead: lookahead(3), wantPages: 12},
		{name: "three chains, lookahead 1", total: 100, cursors: SplitSynthetic(100, 3), lookahead: lookahead(1), wantPages: 12},
		{name: "two chains, lookahead 1000", total: 250, cursors: SplitSynthetic(250, 2), lookahead: lookahead(1000), wantPages: 26},
		{name: "empty parts", total: 50, cursors: []string{"0:0", "0:20", "20:20", "20"}, lookahead: lookahead(4), wantPages: 7},
		{name: "one chain, orchestrator without lookahead", total: 47, cursors: []string{""}, wantPages: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ledger := filepath.Join(t.TempDir(), "ledger")
			args := SyntheticArgs{TotalItems: tc.total, Ledger: ledger}
			pages := walkJob(t, Synthetic, tc.cursors, 10, tc.lookahead, args)
			if len(pages) != tc.wantPages {
				t.Errorf("ran %d pages, want %d", len(pages), tc.wantPages)
			}
			if tc.lookahead != nil && *tc.lookahead > 1 && !askedMore(pages) {
				t.Errorf("no page enqueued more than one successor with lookahead %d", *tc.lookahead)
			}
			seen := map[string]int{}
			for _, line := range readLines(t, ledger) {
				item, _, _ := strings.Cut(line, " ")
				seen[item]++
			}
			for item := range tc.total {
				if n := seen[strconv.FormatInt(item, 10)]; n != 1 {
					t.Errorf("item %d processed %d times, want once", item, n)
				}
			}
			if len(seen) != int(tc.total) || processedItems(pages) != tc.total {
				t.Errorf("ledger has %d distinct items, pages processed %d; want %d", len(seen), processedItems(pages), tc.total)
			}
		})
	}
}

func TestSplitSynthetic(t *testing.T) {
	for _, tc := range []struct {
		total  int64
		chains int
		want   []string
	}{
		{total: 103, chains: 4, want: []string{"0:26", "26:52", "52:78", "78"}},
		{total: 100, chains: 2, want: []string{"0:50", "50"}},
		{total: 10, chains: 1, want: []string{""}},
		{total: 0, chains: 3, want: []string{""}},
		{total: 2, chains: 5, want: []string{"0:1", "1"}},
	} {
		if got := SplitSynthetic(tc.total, tc.chains); !slices.Equal(got, tc.want) {
			t.Errorf("SplitSynthetic(%d, %d) = %q, want %q", tc.total, tc.chains, got, tc.want)
		}
	}
}

// TestSyntheticPanicPages: the first attempt of a listed page panics after
// enqueuing its successor and before writing any ledger line; its retry
// processes the page, and other pages never panic.
func TestSyntheticPanicPages(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger")
	args := SyntheticArgs{TotalItems: 100, PanicPages: []int64{2}, Ledger: ledger}
	env := processortest.New(Synthetic)
	_, err := env.Execute(syntheticPage(t, 2, "20", 10, args))
	var panicErr *temporal.PanicError
	if !errors.As(err, &panicErr) {
		t.Fatalf("attempt 1 returned %v, want a panic", err)
	}
	if !strings.Contains(panicErr.Error(), "panicPages") {
		t.Errorf("panic %q does not name panicPages", panicErr.Error())
	}
	if _, err := os.Stat(ledger); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the panicking attempt wrote the ledger: %v", err)
	}
	res, err := env.Retry()
	if err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	if res.ItemsProcessed != 10 {
		t.Errorf("attempt 2 processed %d items, want 10", res.ItemsProcessed)
	}
	if got, want := env.EnqueuedPages(), []processor.EnqueuePage{{Number: 3, Cursor: "30"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("enqueued %+v, want %+v", got, want)
	}
	if lines := readLines(t, ledger); len(lines) != 10 || lines[0] != "20 2 2" {
		t.Errorf("ledger %q, want 10 lines from attempt 2 only", lines)
	}
	if _, err := processortest.New(Synthetic).Execute(syntheticPage(t, 1, "10", 10, args)); err != nil {
		t.Errorf("page 1: %v", err)
	}
}

// TestSyntheticOversizedCursorFrom: a page whose successors reach the item
// oversizedCursorFrom fails for good with CursorTooLarge, sends nothing and
// processes nothing; a page before it enqueues its successor as usual.
func TestSyntheticOversizedCursorFrom(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger")
	args := SyntheticArgs{TotalItems: 100, OversizedCursorFrom: 50, Ledger: ledger}

	env := processortest.New(Synthetic)
	in := syntheticPage(t, 3, "30", 10, args)
	in.Lookahead = lookahead(1)
	if _, err := env.Execute(in); err != nil {
		t.Fatalf("page 3: %v", err)
	}
	if got := env.EnqueuedCursors(); !slices.Equal(got, []string{"40"}) {
		t.Errorf("page 3 enqueued %q, want [40]", got)
	}

	for _, la := range []int{1, 3} {
		env := processortest.New(Synthetic)
		in := syntheticPage(t, 4, "40", 10, args)
		if la == 3 {
			// Its first successor is fine, the second is not: nothing is sent.
			in = syntheticPage(t, 3, "30", 10, args)
		}
		in.Lookahead = lookahead(la)
		_, err := env.Execute(in)
		appErr := applicationError(t, err)
		if appErr.Type() != processor.ErrorTypeCursorTooLarge || !appErr.NonRetryable() {
			t.Errorf("lookahead %d: failed with type %q non-retryable %t, want non-retryable %s", la, appErr.Type(), appErr.NonRetryable(), processor.ErrorTypeCursorTooLarge)
		}
		if len(env.Signals()) != 0 {
			t.Errorf("lookahead %d: sent %+v, want nothing", la, env.Signals())
		}
	}
	if lines := readLines(t, ledger); len(lines) != 10 || lines[0] != "30 3 1" {
		t.Errorf("ledger %q, want the 10 items of page 3 only", lines)
	}

	// The padded cursor still names the same offset.
	padded := oversize([]string{"40", "50", "60:90"}, 50, 100)
	if padded[0] != "40" || len(padded[1]) != processor.MaxCursorBytes+1 || len(padded[2]) != processor.MaxCursorBytes+1 {
		t.Errorf("oversize gave lengths %d, %d, %d", len(padded[0]), len(padded[1]), len(padded[2]))
	}
	for i, want := range []string{"50", "60:90"} {
		c, err := ParseSyntheticCursor(padded[i+1], 100)
		if err != nil || c.String() != want {
			t.Errorf("padded cursor parses as %q, %v; want %q", c.String(), err, want)
		}
	}
}
