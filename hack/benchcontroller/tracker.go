package main

import (
	"context"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// tracker watches the benchmark's BatchJobs and keeps, per job, its latest
// state, when it was first Running, its writes (resourceVersion changes) and
// its page counts over time as the status showed them.
type tracker struct {
	mu       sync.Mutex
	jobs     map[string]*trackedJob
	counting bool
	changed  chan struct{}
}

type trackedJob struct {
	latest       *batchv1alpha1.BatchJob
	firstRunning time.Time
	// writes counts resourceVersion changes while counting is on.
	writes int
	// completed is status.pages.completed at each change, at the time the
	// watch event arrived.
	completed []countAt
	gone      bool
}

func newTracker() *tracker {
	return &tracker{jobs: map[string]*trackedJob{}, changed: make(chan struct{}, 1)}
}

// run watches until ctx ends, starting the watch again where it broke off.
func (t *tracker) run(ctx context.Context, c client.WithWatch, namespace string, labels map[string]string) {
	rv := ""
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, &batchv1alpha1.BatchJobList{}, client.InNamespace(namespace), client.MatchingLabels(labels),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			rv = ""
			continue
		}
		for ev := range w.ResultChan() {
			job, ok := ev.Object.(*batchv1alpha1.BatchJob)
			if !ok {
				if ev.Type == watch.Error {
					rv = ""
				}
				continue
			}
			rv = job.ResourceVersion
			t.observe(ev.Type, job, time.Now())
		}
		w.Stop()
	}
}

func (t *tracker) observe(typ watch.EventType, job *batchv1alpha1.BatchJob, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.jobs[job.Name]
	if j == nil {
		j = &trackedJob{}
		t.jobs[job.Name] = j
	}
	if typ == watch.Deleted {
		j.gone = true
	} else if j.latest == nil || j.latest.ResourceVersion != job.ResourceVersion {
		if j.latest != nil && t.counting {
			j.writes++
		}
		if j.firstRunning.IsZero() && job.Status.Phase == batchv1alpha1.PhaseRunning {
			j.firstRunning = at
		}
		if n := len(j.completed); n == 0 || j.completed[n-1].Count != job.Status.Pages.Completed {
			j.completed = append(j.completed, countAt{At: at, Count: job.Status.Pages.Completed})
		}
	}
	j.latest = job
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// countWrites turns counting writes on or off.
func (t *tracker) countWrites(on bool) {
	t.mu.Lock()
	t.counting = on
	t.mu.Unlock()
}

// writes is the sum of writes counted so far.
func (t *tracker) writes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, j := range t.jobs {
		n += j.writes
	}
	return n
}

// running counts the jobs that have been Running, and returns when the last
// of them first was.
func (t *tracker) running() (n int, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		if !j.firstRunning.IsZero() {
			n++
			if j.firstRunning.After(last) {
				last = j.firstRunning
			}
		}
	}
	return n, last
}

// runningNames lists the jobs that have been Running, by name.
func (t *tracker) runningNames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for name, j := range t.jobs {
		if !j.firstRunning.IsZero() && !j.gone {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// present counts the jobs not deleted.
func (t *tracker) present() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, j := range t.jobs {
		if !j.gone {
			n++
		}
	}
	return n
}

// job returns a copy of a job's latest state, nil if unknown.
func (t *tracker) job(name string) *batchv1alpha1.BatchJob {
	t.mu.Lock()
	defer t.mu.Unlock()
	if j := t.jobs[name]; j != nil && j.latest != nil {
		return j.latest.DeepCopy()
	}
	return nil
}

// completedSince is a job's status page counts seen from since on, led by
// the count in effect at since.
func (t *tracker) completedSince(name string, since time.Time) []countAt {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.jobs[name]
	if j == nil {
		return nil
	}
	var out []countAt
	for i, c := range j.completed {
		if c.At.Before(since) {
			if i+1 < len(j.completed) && !j.completed[i+1].At.After(since) {
				continue
			}
			c.At = since
		}
		out = append(out, c)
	}
	return out
}
