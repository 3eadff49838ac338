package examples

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
	"github.com/temporal-batch/temporal-batch/pkg/processor/processortest"
)

// walkedPage is a page the walk ran.
type walkedPage struct {
	Number int64
	Cursor string
	Chain  int
	// Asked is the lookahead the page was asked for.
	Asked int
	// Enqueued are the cursors it enqueued.
	Enqueued []string
	Result   processor.PageResult
}

// walkJob runs the whole job a processor and its first cursors describe,
// scheduling pages the way the orchestrator does: one chain per first cursor
// (page numbers 0..len(firsts)-1 are their first pages), only a chain's
// frontier, its last enqueued page, asked for lookahead successors, every
// other page for none, and the pages a frontier enqueues numbered in order,
// the last becoming the frontier. A chain ends when its frontier enqueues
// nothing. Pages run one at a time in a random (seeded) order, as parallel
// pages complete in any order. lookahead nil stands for an orchestrator older
// than lookahead, which sends no lookahead and wants one successor.
//
// It fails the test when a page fails or breaks the contract: a page not
// asked for successors that enqueues some, more cursors than asked, more
// than one signal, or a signal with the wrong workflow, run or number.
func walkJob(t *testing.T, fn processor.Func, firsts []string, size int, lookahead *int, args any) []walkedPage {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(len(firsts)), uint64(size)))
	var waiting []walkedPage
	frontiers := make([]int64, len(firsts))
	for i, c := range firsts {
		waiting = append(waiting, walkedPage{Number: int64(i), Cursor: c, Chain: i})
		frontiers[i] = int64(i)
	}
	next := int64(len(firsts))
	var walked []walkedPage
	for len(waiting) > 0 {
		if len(walked) > 10_000 {
			t.Fatalf("the walk ran %d pages and did not end", len(walked))
		}
		i := rng.IntN(len(waiting))
		p := waiting[i]
		waiting = slices.Delete(waiting, i, i+1)

		in := processor.PageInput{
			Job:  processor.JobRef{Namespace: "demo", Name: "walk", WorkflowID: testWorkflowID},
			Page: processor.PageRef{Number: p.Number, Cursor: p.Cursor, Size: size},
			Args: raw,
		}
		frontier := frontiers[p.Chain] == p.Number
		switch {
		case lookahead == nil:
			p.Asked = 1
		case frontier:
			p.Asked = *lookahead
			in.Lookahead = lookahead
		default:
			in.Lookahead = new(int)
		}
		env := processortest.New(fn)
		p.Result, err = env.Execute(in)
		if err != nil {
			t.Fatalf("page %d (cursor %q, chain %d): %v", p.Number, p.Cursor, p.Chain, err)
		}
		signals := env.Signals()
		switch {
		case len(signals) > 1:
			t.Fatalf("page %d sent %d signals, want at most one: %+v", p.Number, len(signals), signals)
		case len(signals) == 1:
			s := signals[0]
			if s.Name != processor.EnqueuePageSignal || s.WorkflowID != testWorkflowID || s.RunID != "" || s.Page.Number != p.Number+1 {
				t.Fatalf("page %d sent %+v, want EnqueuePage to %q, no run ID, number %d", p.Number, s, testWorkflowID, p.Number+1)
			}
			p.Enqueued = s.Cursors
		}
		if len(p.Enqueued) > p.Asked {
			t.Fatalf("page %d (cursor %q) was asked for %d successors and enqueued %q", p.Number, p.Cursor, p.Asked, p.Enqueued)
		}
		walked = append(walked, p)
		if !frontier {
			continue
		}
		for _, c := range p.Enqueued {
			waiting = append(waiting, walkedPage{Number: next, Cursor: c, Chain: p.Chain})
			frontiers[p.Chain] = next
			next++
		}
		if len(p.Enqueued) == 0 {
			frontiers[p.Chain] = -1 // the chain ended
		}
	}
	return walked
}

// processedItems sums the items the pages processed.
func processedItems(pages []walkedPage) int64 {
	var n int64
	for _, p := range pages {
		n += p.Result.ItemsProcessed
	}
	return n
}

// askedMore reports whether some page was asked for more than one successor
// and enqueued more than one, so that a walk shows lookahead at work.
func askedMore(pages []walkedPage) bool {
	for _, p := range pages {
		if len(p.Enqueued) > 1 {
			return true
		}
	}
	return false
}
