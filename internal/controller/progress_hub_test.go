package controller

import (
	"testing"
	"time"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

func TestProgressHub(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := t0
	h := NewProgressHub()
	h.now = func() time.Time { return clock }
	job := processor.JobRef{Namespace: "team", Name: "backfill", WorkflowID: "wf"}
	report := func(p temporalbatch.Progress) {
		h.Report(temporalbatch.Report{Job: job, WorkflowID: "wf", RunID: "r1", Progress: p})
	}
	passes := func() int {
		n := 0
		for {
			select {
			case ev := <-h.changes:
				if ev.Object.GetNamespace() != "team" || ev.Object.GetName() != "backfill" {
					t.Fatalf("pass asked for %s/%s", ev.Object.GetNamespace(), ev.Object.GetName())
				}
				n++
			default:
				return n
			}
		}
	}
	running := temporalbatch.Progress{State: temporalbatch.StateRunning, Generation: 1}

	if _, ok := h.Latest("wf", clock, time.Minute); ok {
		t.Fatal("a report before any arrived")
	}
	report(running)
	if got := passes(); got != 1 {
		t.Fatalf("first report: %d passes, want 1", got)
	}
	// Counters move: kept, no pass of their own.
	for i := range 5 {
		clock = clock.Add(time.Second)
		p := running
		p.Pages.Completed = int64(i + 1)
		report(p)
	}
	if got := passes(); got != 0 {
		t.Fatalf("counters alone asked for %d passes", got)
	}
	pr, ok := h.Latest("wf", clock, time.Minute)
	if !ok || pr.Pages.Completed != 5 {
		t.Fatalf("Latest = %d, %v; want the last report, 5 pages", pr.Pages.Completed, ok)
	}

	// What a user waits for asks for a pass at once.
	for _, change := range []func(*temporalbatch.Progress){
		func(p *temporalbatch.Progress) { p.Generation = 2 },
		func(p *temporalbatch.Progress) { p.State = temporalbatch.StateSuspended },
		func(p *temporalbatch.Progress) { p.Pages.Failed = 1 },
		func(p *temporalbatch.Progress) { p.HandlerQueued = 3 },
		func(p *temporalbatch.Progress) { now := clock; p.CompletionTime = &now },
	} {
		p := running
		p.Pages.Completed = 5
		change(&p)
		report(p)
		if got := passes(); got != 1 {
			t.Fatalf("change %+v asked for %d passes, want 1", p, got)
		}
		report(running)
		passes()
	}

	// Too old, or older than the last query answer: the controller queries.
	clock = clock.Add(time.Second)
	report(running)
	if _, ok := h.Latest("wf", clock.Add(61*time.Second), time.Minute); ok {
		t.Fatal("a report older than maxAge was served")
	}
	h.Queried("wf", clock.Add(time.Second))
	if _, ok := h.Latest("wf", clock.Add(2*time.Second), time.Minute); ok {
		t.Fatal("a report older than the last query answer was served")
	}
	clock = clock.Add(3 * time.Second)
	report(running)
	if _, ok := h.Latest("wf", clock, time.Minute); !ok {
		t.Fatal("a report newer than the query answer was not served")
	}

	h.Forget("wf")
	if _, ok := h.Latest("wf", clock, time.Minute); ok {
		t.Fatal("a forgotten workflow's report was served")
	}
	if len(h.entries) != 0 {
		t.Fatalf("%d entries left after Forget", len(h.entries))
	}
}

func TestProgressHubDropsPassesBeyondItsBuffer(t *testing.T) {
	h := NewProgressHub()
	for i := range hubBuffer + 10 {
		id := "wf-" + string(rune('a'+i%26)) + time.Duration(i).String()
		h.Report(temporalbatch.Report{Job: processor.JobRef{Namespace: "ns", Name: id}, WorkflowID: id})
	}
	if len(h.changes) != hubBuffer {
		t.Fatalf("%d passes queued, want the buffer's %d: Report must never block a workflow", len(h.changes), hubBuffer)
	}
}

func TestProgressHubForgetsQuietEntries(t *testing.T) {
	clock := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h := NewProgressHub()
	h.now = func() time.Time { return clock }
	h.Report(temporalbatch.Report{WorkflowID: "quiet"})
	clock = clock.Add(30 * time.Minute)
	h.Report(temporalbatch.Report{WorkflowID: "busy"})
	clock = clock.Add(31 * time.Minute)
	h.Report(temporalbatch.Report{WorkflowID: "busy"})
	if _, ok := h.entries["quiet"]; ok {
		t.Fatal("an entry quiet for over an hour is kept")
	}
	if _, ok := h.entries["busy"]; !ok {
		t.Fatal("a reporting entry was dropped")
	}
}

func TestProgressHubServesNothingWhileTemporalDoesNotAnswer(t *testing.T) {
	h := NewProgressHub()
	up := true
	h.Reachable = func() bool { return up }
	h.Report(temporalbatch.Report{WorkflowID: "wf"})
	if _, ok := h.Latest("wf", time.Now(), time.Minute); !ok {
		t.Fatal("no report while Temporal answers")
	}
	up = false
	if _, ok := h.Latest("wf", time.Now(), time.Minute); ok {
		t.Fatal("a report stood in for the query while Temporal did not answer")
	}
}
