package controller

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// ProgressHub is where the orchestrator runs hosted by this process's
// worker leave their progress (temporalbatch.RegisterReporting), and where
// the controller reads it: a running job whose workflow runs here is polled
// without a Temporal call, and a change the user waits for (the end, a spec
// edit applied, suspend) triggers a pass at once instead of at the next poll.
//
// A report is only as new as the last workflow task this process ran. Where
// several manager replicas share the orchestrator task queue, a workflow's
// tasks may run elsewhere; its reports here then stop, and the controller
// queries as before once the last report is older than the poll interval
// allows (Latest's maxAge) or older than its last query.
type ProgressHub struct {
	// Reachable, when set, says whether Temporal answers this process:
	// while it does not, no report is served, and the query that fails
	// tells status why.
	Reachable func() bool

	now func() time.Time

	mu      sync.Mutex
	entries map[string]*hubEntry
	changes chan ctrlevent.GenericEvent
	sweptAt time.Time
}

type hubEntry struct {
	report temporalbatch.Report
	// at is when the report arrived; queried is when a query answer for
	// the workflow last arrived. A report older than the query may be older
	// than what the query showed.
	at, queried time.Time
}

// hubBuffer is how many pass requests may wait for the controller; beyond
// it they are dropped, and the job's next poll reads the report anyway.
const hubBuffer = 4096

// NewProgressHub returns an empty hub.
func NewProgressHub() *ProgressHub {
	return &ProgressHub{now: time.Now, entries: map[string]*hubEntry{}, changes: make(chan ctrlevent.GenericEvent, hubBuffer)}
}

// Report keeps a run's progress and asks for a pass of its job when
// something changed that status must show at once. Counters alone do not:
// the next poll shows them, so a busy job costs no more passes than an
// idle one.
func (h *ProgressHub) Report(r temporalbatch.Report) {
	h.mu.Lock()
	e, ok := h.entries[r.WorkflowID]
	if !ok {
		e = &hubEntry{}
		h.entries[r.WorkflowID] = e
	}
	notify := !ok || urgent(e.report.Progress, r.Progress)
	e.report, e.at = r, h.now()
	h.sweep(e.at)
	h.mu.Unlock()
	if !notify {
		return
	}
	select {
	case h.changes <- ctrlevent.GenericEvent{Object: &batchv1alpha1.BatchJob{ObjectMeta: metav1.ObjectMeta{Namespace: r.Job.Namespace, Name: r.Job.Name}}}:
	default:
	}
}

// urgent: the change from old to cur is one a user waits for.
func urgent(old, cur temporalbatch.Progress) bool {
	return old.State != cur.State || old.Generation != cur.Generation || old.Reason != cur.Reason ||
		(old.CompletionTime == nil) != (cur.CompletionTime == nil) || old.LastRedrive != cur.LastRedrive ||
		(old.HandlerQueued > 0) != (cur.HandlerQueued > 0) || old.Pages.Failed != cur.Pages.Failed
}

// hubForgetAfter: an entry neither reported nor queried for this long is
// dropped. The leader forgets a job's entry when the job is deleted; a
// replica that is not the leader hosts runs too and never sees a deletion.
const hubForgetAfter = time.Hour

// sweep drops entries gone quiet, at most every few minutes; h.mu is held.
func (h *ProgressHub) sweep(now time.Time) {
	if now.Sub(h.sweptAt) < hubForgetAfter/10 {
		return
	}
	h.sweptAt = now
	for id, e := range h.entries {
		if now.Sub(e.at) > hubForgetAfter && now.Sub(e.queried) > hubForgetAfter {
			delete(h.entries, id)
		}
	}
}

// Latest returns the workflow's last report when it arrived within maxAge
// of now and after the last query answer.
func (h *ProgressHub) Latest(workflowID string, now time.Time, maxAge time.Duration) (temporalbatch.Progress, bool) {
	if h.Reachable != nil && !h.Reachable() {
		return temporalbatch.Progress{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[workflowID]
	if !ok || e.at.IsZero() || !e.at.After(e.queried) || now.Sub(e.at) > maxAge {
		return temporalbatch.Progress{}, false
	}
	return e.report.Progress, true
}

// Queried records that a query answer for the workflow arrived at t.
func (h *ProgressHub) Queried(workflowID string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[workflowID]
	if !ok {
		e = &hubEntry{}
		h.entries[workflowID] = e
	}
	e.queried = t
}

// Forget drops what the hub holds for a workflow: its job is gone.
func (h *ProgressHub) Forget(workflowID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.entries, workflowID)
}

// source is the controller's watch of the hub's pass requests.
func (h *ProgressHub) source() source.TypedSource[reconcile.Request] {
	return source.Channel(h.changes, &handler.EnqueueRequestForObject{})
}

var _ temporalbatch.Reporter = (*ProgressHub)(nil)
