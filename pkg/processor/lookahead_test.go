package processor_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
	"github.com/temporal-batch/temporal-batch/pkg/processor/processortest"
)

// withLookahead is a page input whose orchestrator asks for n successors.
func withLookahead(in processor.PageInput, n int) processor.PageInput {
	in.Lookahead = &n
	return in
}

// enqueueing is a processor that enqueues the given cursors and reports the
// lookahead it was asked for.
func enqueueing(asked *int, cursors ...string) processor.Func {
	return func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		*asked = page.Lookahead()
		if err := page.EnqueueNext(ctx, cursors...); err != nil {
			return processor.Result{}, err
		}
		return processor.Result{ItemsProcessed: 1}, nil
	}
}

func TestLookaheadSendsOneBatchSignal(t *testing.T) {
	asked := 0
	env := processortest.New(enqueueing(&asked, "b", "c", "d"))
	if _, err := env.Execute(withLookahead(pageInput(7, "a", ""), 5)); err != nil {
		t.Fatal(err)
	}
	if asked != 5 {
		t.Errorf("Lookahead() = %d, want 5", asked)
	}
	signals := env.Signals()
	if len(signals) != 1 {
		t.Fatalf("signals = %+v, want one batch", signals)
	}
	if want := (processor.EnqueuePageBatch{Number: 8, Cursors: []string{"b", "c", "d"}}); !reflect.DeepEqual(signals[0].Arg, want) {
		t.Errorf("signal body = %#v, want %#v", signals[0].Arg, want)
	}
}

func TestLookaheadKeepsWhatWasAskedFor(t *testing.T) {
	asked := 0
	env := processortest.New(enqueueing(&asked, "b", "c", "d", "e"))
	if _, err := env.Execute(withLookahead(pageInput(7, "a", ""), 2)); err != nil {
		t.Fatal(err)
	}
	if got := env.EnqueuedCursors(); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("enqueued %q, want the first 2 asked for", got)
	}
}

func TestOneCursorUsesTheSingleForm(t *testing.T) {
	// Also what an orchestrator that predates lookahead (no lookahead in
	// the input) gets, whatever the processor offers.
	for name, in := range map[string]processor.PageInput{
		"asked for 5":      withLookahead(pageInput(7, "a", ""), 5),
		"old orchestrator": pageInput(7, "a", ""),
	} {
		t.Run(name, func(t *testing.T) {
			asked := 0
			cursors := []string{"b"}
			if in.Lookahead == nil {
				cursors = []string{"b", "c"}
			}
			env := processortest.New(enqueueing(&asked, cursors...))
			if _, err := env.Execute(in); err != nil {
				t.Fatal(err)
			}
			signals := env.Signals()
			if len(signals) != 1 || !reflect.DeepEqual(signals[0].Arg, processor.EnqueuePage{Number: 8, Cursor: "b"}) {
				t.Errorf("signals = %+v, want the single form for page 8 at \"b\"", signals)
			}
		})
	}
}

func TestNotAskedEnqueuesNothing(t *testing.T) {
	asked := -1
	env := processortest.New(enqueueing(&asked, "b"))
	res, err := env.Execute(withLookahead(pageInput(7, "a", ""), 0))
	if err != nil {
		t.Fatal(err)
	}
	if asked != 0 || len(env.Signals()) != 0 {
		t.Errorf("asked %d, signals %+v: a page that is not its chain's frontier enqueues nothing", asked, env.Signals())
	}
	if res.ItemsProcessed != 1 {
		t.Errorf("result = %+v", res)
	}
}

func TestBatchIsRetrySafe(t *testing.T) {
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		if err := page.EnqueueNext(ctx, "b", "c"); err != nil {
			return processor.Result{}, err
		}
		if page.Attempt == 1 {
			return processor.Result{}, errors.New("database went away")
		}
		return processor.Result{ItemsProcessed: 1}, nil
	})
	if _, err := env.Execute(withLookahead(pageInput(3, "a", ""), 4)); err == nil {
		t.Fatal("first attempt succeeded, want it to fail")
	}
	if _, err := env.Retry(); err != nil {
		t.Fatal(err)
	}
	if got := env.EnqueuedCursors(); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("enqueued %q across both attempts, want the batch once", got)
	}
}

func TestOversizedCursorFailsThePageForGood(t *testing.T) {
	big := strings.Repeat("x", processor.MaxCursorBytes+1)
	for name, fn := range map[string]processor.Func{
		"enqueued": enqueueing(new(int), "b", big),
		"next cursor": func(ctx context.Context, page *processor.Page) (processor.Result, error) {
			return processor.Result{ItemsProcessed: 1, NextCursor: big}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			env := processortest.New(fn)
			_, err := env.Execute(withLookahead(pageInput(3, "a", ""), 4))
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != processor.ErrorTypeCursorTooLarge || !appErr.NonRetryable() {
				t.Fatalf("error = %v, want a non-retryable %s", err, processor.ErrorTypeCursorTooLarge)
			}
			if len(env.Signals()) != 0 {
				t.Errorf("signals = %+v, want none: the orchestrator would refuse the cursor", env.Signals())
			}
		})
	}
}

func TestBatchStopsAtTheByteLimit(t *testing.T) {
	cursor := strings.Repeat("k", processor.MaxCursorBytes)
	var cursors []string
	for range 100 {
		cursors = append(cursors, cursor)
	}
	env := processortest.New(enqueueing(new(int), cursors...))
	if _, err := env.Execute(withLookahead(pageInput(3, "a", ""), 100)); err != nil {
		t.Fatal(err)
	}
	if got, want := len(env.EnqueuedCursors()), processor.MaxEnqueueBytes/processor.MaxCursorBytes; got != want {
		t.Errorf("enqueued %d cursors, want the %d that fit in %d bytes", got, want, processor.MaxEnqueueBytes)
	}
}

func TestAttemptCountsOnAcrossRuns(t *testing.T) {
	var attempt int32
	env := processortest.New(func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		attempt = page.Attempt
		return processor.Result{}, nil
	})
	in := pageInput(3, "a", "")
	in.PriorAttempts = 2
	if _, err := env.Execute(in); err != nil {
		t.Fatal(err)
	}
	if attempt != 3 {
		t.Errorf("Attempt = %d, want 3: two attempts in an earlier run, then the first of this activity", attempt)
	}
}
