package batchctl

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func TestWatchExitsZeroWhenTheJobSucceeds(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`)
	setStatus(t, job, running)

	w := runInBackground(t, k8s, "watch", "inflate-prices", "-n", ns)
	w.waitOutput(t, "Running")
	setStatus(t, job, succeeded)

	r := w.wait(t)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "inflate-prices Running items 4,200/10,000 (42%)")
	assert.Contains(t, r.Out, "inflate-prices Succeeded items 9,997/10,000 (100%)")
	assert.Contains(t, r.Out, "batchjob "+ns+"/inflate-prices succeeded: 9,997 of 10,000 items processed, 3 failed, in 100 pages")
	assert.Empty(t, r.Err)
	assert.NotContains(t, r.Out, "\x1b[", "no terminal escapes when stdout is not a terminal")
}

func TestWatchExitsNonZeroWhenTheJobFails(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "inflate-prices", `{"totalItems": 10000}`)
	setStatus(t, job, running)

	w := runInBackground(t, k8s, "watch", "inflate-prices", "-n", ns)
	w.waitOutput(t, "Running")
	setStatus(t, job, failed)

	r := w.wait(t)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Out, "batchjob "+ns+"/inflate-prices failed: ")
	assert.Contains(t, r.Out, "PagesFailed: 2 pages failed for good")
	assert.Contains(t, r.Out, "'kubectl batch redrive inflate-prices -n "+ns+"' runs them again")
	assert.Empty(t, r.Err, "the outcome is reported once, on stdout")
}

func TestWatchAFinishedJobReportsAtOnce(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	ok := newJob(t, ns, "ok", "")
	setStatus(t, ok, succeeded)
	bad := newJob(t, ns, "bad", "")
	setStatus(t, bad, failed)

	r := run(t, "watch", "ok", "-n", ns)
	assert.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "succeeded")
	r = run(t, "watch", "bad", "-n", ns)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Out, "failed")
}

func TestWatchTimesOut(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "slow", "")
	setStatus(t, job, running)

	r := run(t, "watch", "slow", "-n", ns, "--timeout", "1s")
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "error: timed out after 1s waiting for batchjob "+ns+"/slow to finish; it is Running\n", r.Err)
}

func TestWatchReportsADeletedJob(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "short-lived", "")
	setStatus(t, job, running)

	w := runInBackground(t, k8s, "watch", "short-lived", "-n", ns)
	w.waitOutput(t, "Running")
	require.NoError(t, k8s.Delete(context.Background(), job))

	r := w.wait(t)
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "error: batchjob "+ns+"/short-lived was deleted before it finished\n", r.Err)
}

func TestWatchReopensAClosedWatch(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t)
	job := newJob(t, ns, "flaky", "")
	c := &closingWatchClient{WithWatch: k8s}

	w := runInBackground(t, c, "watch", "flaky", "-n", ns)
	w.waitOutput(t, "Pending")
	// This change arrives on the first watch, which the server then closes.
	setStatus(t, job, running)
	w.waitOutput(t, "Running")
	setStatus(t, job, succeeded)

	r := w.wait(t)
	require.Equal(t, 0, r.Code, r.Err)
	assert.Contains(t, r.Out, "succeeded")
	assert.GreaterOrEqual(t, c.watches.Load(), int32(2), "the watch was opened again")
}

// closingWatchClient closes every watch after its first event, as an API
// server does when a watch times out.
type closingWatchClient struct {
	client.WithWatch
	watches atomic.Int32
}

func (c *closingWatchClient) Watch(ctx context.Context, list client.ObjectList, opts ...client.ListOption) (watch.Interface, error) {
	c.watches.Add(1)
	inner, err := c.WithWatch.Watch(ctx, list, opts...)
	if err != nil {
		return nil, err
	}
	w := &oneEventWatch{ch: make(chan watch.Event), stop: make(chan struct{})}
	go func() {
		defer close(w.ch)
		defer inner.Stop()
		select {
		case ev, ok := <-inner.ResultChan():
			if ok {
				select {
				case w.ch <- ev:
				case <-w.stop:
				}
			}
		case <-w.stop:
		}
	}()
	return w, nil
}

type oneEventWatch struct {
	ch   chan watch.Event
	stop chan struct{}
	once sync.Once
}

func (w *oneEventWatch) Stop()                          { w.once.Do(func() { close(w.stop) }) }
func (w *oneEventWatch) ResultChan() <-chan watch.Event { return w.ch }

func TestPlainViewIsRateLimited(t *testing.T) {
	var out bytes.Buffer
	v := &plainView{out: &out, every: time.Hour}
	job := &batchv1alpha1.BatchJob{}
	job.Namespace, job.Name = "shop", "inflate-prices"
	running(&job.Status)

	v.Show(job)
	v.Show(job) // no change: no line
	more := job.DeepCopy()
	more.Status.Items.Processed = 5000
	v.Show(more) // a change within the interval: held back
	require.Equal(t, 1, strings.Count(out.String(), "\n"), out.String())

	v.Tick(time.Now()) // the interval has not passed
	require.Equal(t, 1, strings.Count(out.String(), "\n"))
	v.Tick(time.Now().Add(2 * time.Hour))
	require.Equal(t, 2, strings.Count(out.String(), "\n"))
	assert.Contains(t, out.String(), "items 5,000")

	done := more.DeepCopy()
	succeeded(&done.Status)
	v.Show(done) // a new phase prints at once
	require.Equal(t, 3, strings.Count(out.String(), "\n"))
	assert.Contains(t, out.String(), "Succeeded")
	v.Close()
	assert.Equal(t, 3, strings.Count(out.String(), "\n"))
}

func TestTerminalViewRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	v := &terminalView{out: &out, width: 120}
	job := &batchv1alpha1.BatchJob{}
	job.Namespace, job.Name = "shop", "inflate-prices"
	job.Spec.Processor.Args = jsonArgs(`{"totalItems": 10000}`)
	running(&job.Status)

	v.Show(job)
	first := out.String()
	assert.NotContains(t, first, "\x1b[", "the first draw moves nothing")
	assert.Contains(t, first, "batchjob shop/inflate-prices  Running")
	assert.Contains(t, first, "42%")
	assert.Contains(t, first, "ETA: 7s")
	assert.Contains(t, first, "failures: InvalidRecord 3")
	lines := strings.Count(first, "\n")

	out.Reset()
	v.Tick(time.Now())
	assert.True(t, strings.HasPrefix(out.String(), "\x1b["+itoa(lines)+"F\x1b[J"), "a redraw goes back over the block: %q", out.String())

	narrow := &terminalView{out: &out, width: 20}
	out.Reset()
	narrow.Show(job)
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		assert.Less(t, len([]rune(l)), 20, "lines fit the terminal: %q", l)
	}
}

func TestViewsShowChainsAndChainBound(t *testing.T) {
	job := &batchv1alpha1.BatchJob{}
	job.Namespace, job.Name = "shop", "two-chains"
	job.Spec.Processor.Args = jsonArgs(`{"totalItems": 10000}`)
	withCursors(&job.Spec)
	chainBoundRunning(&job.Status)

	line := plainLine(job)
	assert.Contains(t, line, "| parallelism 4/4, 0.6 in flight on average | chains 1/2 done | chain-bound: raise spec.processor.lookahead or split the data with spec.processor.cursors")

	var out bytes.Buffer
	v := &terminalView{out: &out, width: 200}
	v.Show(job)
	assert.Contains(t, out.String(), "parallelism: 4 in effect of 4 desired, at most 4 reached; 0.6 pages in flight on average of 4 slots\n")
	assert.Contains(t, out.String(), "chains: 1 of 2 done   lookahead: 2 (spec.processor.lookahead)\n")
	assert.Contains(t, out.String(), "chain-bound: the chains set the pace, not the parallelism: raise spec.processor.lookahead or split the data with spec.processor.cursors\n")

	// Once the job runs at its parallelism again, the hint goes.
	job.Status = batchv1alpha1.BatchJobStatus{}
	running(&job.Status)
	assert.NotContains(t, plainLine(job), "chain-bound")
	out.Reset()
	(&terminalView{out: &out, width: 200}).Show(job)
	assert.NotContains(t, out.String(), "chain-bound")
	assert.NotContains(t, out.String(), "chains:")
	assert.Contains(t, out.String(), "lookahead: 2 (spec.processor.lookahead)", "the spec's lookahead shows before the orchestrator reports it")
}
