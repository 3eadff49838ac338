package batchctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// plainInterval is the least time between two lines of plain watch output.
const plainInterval = time.Second

// rewatchPause is how long to wait before opening a watch again when the
// last one closed at once, so that a server that keeps closing watches is
// not hammered.
const rewatchPause = time.Second

func newWatchCommand(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "watch NAME",
		Short: "Follow a job live until it finishes; exit 0 if it succeeded, 1 if it failed",
		Long: `Follow a job live until it finishes, then print the outcome. The view
updates on every change of the BatchJob (a Kubernetes watch, not polling).

On a terminal the view redraws in place; otherwise (CI logs, pipes) it prints
a plain line per change, at most one a second.

Exit status: 0 when the job succeeded, 1 when it failed, the watch timed out
(--timeout) or the job went away.`,
		Example: `  kubectl batch watch inflate-prices -n shop
  kubectl batch watch inflate-prices -n shop --timeout 2h && echo done`,
		Args:              nameArg,
		ValidArgsFunction: e.completeJobNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return fmt.Errorf("--timeout must not be negative, got %s", timeout)
			}
			if err := e.setup(); err != nil {
				return err
			}
			return e.watch(cmd.Context(), args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "Give up after this long (e.g. 30m, 2h); 0 waits until the job finishes.")
	return cmd
}

// watch follows the job until it finished.
func (e *env) watch(ctx context.Context, name string, timeout time.Duration) error {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	w := &jobWatch{env: e, name: name, view: e.newView()}
	err := w.run(ctx)
	w.view.Close()
	switch {
	case err == nil:
	case parent.Err() != nil:
		return errInterrupted
	case ctx.Err() != nil:
		phase := batchv1alpha1.PhasePending
		if w.job != nil {
			phase = phaseOf(w.job)
		}
		return fmt.Errorf("timed out after %s waiting for batchjob %s/%s to finish; it is %s", timeout, e.ns, name, phase)
	default:
		return err
	}
	outcome := outcomeText(w.job)
	fmt.Fprintln(e.streams().Out, outcome)
	if phaseOf(w.job) == batchv1alpha1.PhaseFailed {
		return &reportedError{msg: outcome}
	}
	return nil
}

// jobWatch follows one job through a Kubernetes watch, opened again from
// the last resource version seen whenever the server closes it.
type jobWatch struct {
	env  *env
	name string
	view watchView
	job  *batchv1alpha1.BatchJob
	// rv is the resource version to watch from; empty means read the job first.
	rv string
}

func (w *jobWatch) run(ctx context.Context) error {
	tick := time.NewTicker(plainInterval)
	defer tick.Stop()
	for {
		if w.rv == "" {
			job, err := w.env.job(ctx, w.name)
			if err != nil {
				return err
			}
			w.show(job)
		}
		if finished(phaseOf(w.job)) {
			return nil
		}
		opened := time.Now()
		events, err := w.env.client.Watch(ctx, &batchv1alpha1.BatchJobList{}, &client.ListOptions{
			Namespace:     w.env.ns,
			FieldSelector: fields.OneTermEqualSelector("metadata.name", w.name),
			Raw:           &metav1.ListOptions{ResourceVersion: w.rv, AllowWatchBookmarks: true},
		})
		if err != nil {
			return w.env.explain(err, w.name)
		}
		got, err := w.consume(ctx, events, tick.C)
		events.Stop()
		if err != nil || finished(phaseOf(w.job)) {
			return err
		}
		if !got && time.Since(opened) < rewatchPause {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(rewatchPause):
			}
		}
	}
}

// consume shows the events of one watch until the job finished, the watch
// closed (nil error) or failed. got says whether any event arrived.
func (w *jobWatch) consume(ctx context.Context, events watch.Interface, tick <-chan time.Time) (got bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case now := <-tick:
			w.view.Tick(now)
		case ev, ok := <-events.ResultChan():
			if !ok {
				return got, nil
			}
			got = true
			switch ev.Type {
			case watch.Added, watch.Modified:
				if job, ok := ev.Object.(*batchv1alpha1.BatchJob); ok {
					w.show(job)
					if finished(phaseOf(job)) {
						return got, nil
					}
				}
			case watch.Bookmark:
				if m, err := meta.Accessor(ev.Object); err == nil {
					w.rv = m.GetResourceVersion()
				}
			case watch.Deleted:
				return got, fmt.Errorf("batchjob %s/%s was deleted before it finished", w.env.ns, w.name)
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					// The version is too old to watch from: read the job again.
					w.rv = ""
					return got, nil
				}
				return got, fmt.Errorf("watch batchjob %s/%s: %w", w.env.ns, w.name, err)
			}
		}
	}
}

func (w *jobWatch) show(job *batchv1alpha1.BatchJob) {
	w.job, w.rv = job, job.ResourceVersion
	w.view.Show(job)
}

// outcomeText is the last word on a finished job.
func outcomeText(job *batchv1alpha1.BatchJob) string {
	p := progressOf(job)
	st := job.Status
	var b strings.Builder
	fmt.Fprintf(&b, "batchjob %s %s: %s, in %s pages", jobKey(job), strings.ToLower(string(p.Phase)), p.ItemsText(), count(st.Pages.Completed))
	if st.StartTime != nil && st.CompletionTime != nil {
		fmt.Fprintf(&b, ", took %s", roundDuration(st.CompletionTime.Sub(st.StartTime.Time)))
	}
	if p.Phase == batchv1alpha1.PhaseFailed {
		if c := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionFailed); c != nil {
			fmt.Fprintf(&b, "; %s", c.Reason)
			if c.Message != "" {
				fmt.Fprintf(&b, ": %s", oneLine(c.Message, 300))
			}
		}
	}
	if st.Pages.Failed > 0 {
		fmt.Fprintf(&b, "; %s pages failed: 'kubectl batch redrive %s -n %s' runs them again", count(st.Pages.Failed), job.Name, job.Namespace)
	}
	return b.String()
}

// watchView shows a job as it changes.
type watchView interface {
	// Show shows the job's latest state.
	Show(job *batchv1alpha1.BatchJob)
	// Tick lets the view catch up with time: redraw, print what was held back.
	Tick(now time.Time)
	// Close leaves the last state shown.
	Close()
}

func (e *env) newView() watchView {
	if e.terminal() {
		v := &terminalView{out: e.streams().Out, width: 100}
		if f, ok := e.streams().Out.(*os.File); ok {
			v.fd = int(f.Fd())
			v.sized = true
		}
		return v
	}
	return &plainView{out: e.streams().Out, every: plainInterval}
}

// terminalView redraws a block of lines in place.
type terminalView struct {
	out   io.Writer
	fd    int
	sized bool
	width int
	job   *batchv1alpha1.BatchJob
	lines int
}

func (v *terminalView) Show(job *batchv1alpha1.BatchJob) {
	v.job = job
	v.draw(time.Now())
}

func (v *terminalView) Tick(now time.Time) {
	if v.job != nil {
		v.draw(now)
	}
}

func (v *terminalView) Close() {}

func (v *terminalView) draw(now time.Time) {
	width := v.width
	if v.sized {
		if w, _, err := term.GetSize(v.fd); err == nil && w > 0 {
			width = w
		}
	}
	var b strings.Builder
	if v.lines > 0 {
		// Back to the first line of the block, and clear it all.
		fmt.Fprintf(&b, "\x1b[%dF\x1b[J", v.lines)
	}
	lines := blockLines(v.job, now)
	for _, l := range lines {
		// A line as wide as the terminal wraps and breaks the redraw.
		if r := []rune(l); len(r) >= width {
			l = string(r[:max(0, width-1)])
		}
		b.WriteString(l + "\n")
	}
	v.lines = len(lines)
	_, _ = io.WriteString(v.out, b.String())
}

// blockLines is the terminal view of a job.
func blockLines(job *batchv1alpha1.BatchJob, now time.Time) []string {
	p := progressOf(job)
	st := job.Status
	head := fmt.Sprintf("batchjob %s  %s", jobKey(job), phaseLine(job, p))
	if st.StartTime != nil {
		end := now
		if st.CompletionTime != nil {
			end = st.CompletionTime.Time
		}
		head += "  elapsed " + roundDuration(end.Sub(st.StartTime.Time))
	}
	progressLine := p.ItemsText() + " (size of the data set unknown)"
	if p.Sized {
		progressLine = p.Bar(40) + " " + p.ItemsText()
	}
	par := "parallelism: " + parallelismText(job, p)
	if s := occupancyText(job); s != "" {
		par += "; " + s
	}
	lines := []string{
		head,
		progressLine,
		"pages: " + p.PagesText(),
		fmt.Sprintf("rate: %s   ETA: %s", p.RateText(), p.ETAText()),
		par,
	}
	var chains []string
	if s := chainsText(job); s != "" {
		chains = append(chains, "chains: "+s)
	}
	if s := lookaheadText(job); s != "" {
		chains = append(chains, "lookahead: "+s)
	}
	if len(chains) > 0 {
		lines = append(lines, strings.Join(chains, "   "))
	}
	if chainBound(job) {
		lines = append(lines, "chain-bound: the chains set the pace, not the parallelism: "+chainBoundFix)
	}
	if st.Workers != nil {
		lines = append(lines, "workers: "+workersText(job))
	}
	if redriveWaits(job) {
		lines = append(lines, "re-drive: "+redriveText(job))
	}
	if f := st.Failures; f != nil && len(f.ByType) > 0 {
		lines = append(lines, "failures: "+byTypeText(f.ByType))
		if len(f.Recent) > 0 {
			r := f.Recent[0]
			what := fmt.Sprintf("page %d", r.Page)
			if r.Item != "" {
				what += " item " + r.Item
			}
			lines = append(lines, fmt.Sprintf("latest: %s %s: %s", what, r.Type, oneLine(r.Message, 200)))
		}
	}
	return lines
}

// plainView prints a line per change, at most one per interval; a phase
// change prints at once.
type plainView struct {
	out       io.Writer
	every     time.Duration
	last      string
	lastPhase batchv1alpha1.BatchJobPhase
	printed   time.Time
	pending   string
}

func (v *plainView) Show(job *batchv1alpha1.BatchJob) {
	line := plainLine(job)
	if line == v.last {
		v.pending = ""
		return
	}
	phase := phaseOf(job)
	now := time.Now()
	if phase == v.lastPhase && now.Sub(v.printed) < v.every {
		v.pending = line
		return
	}
	v.lastPhase = phase
	v.print(line, now)
}

func (v *plainView) Tick(now time.Time) {
	if v.pending != "" && now.Sub(v.printed) >= v.every {
		v.print(v.pending, now)
	}
}

func (v *plainView) Close() {
	if v.pending != "" {
		v.print(v.pending, time.Now())
	}
}

func (v *plainView) print(line string, now time.Time) {
	fmt.Fprintf(v.out, "%s %s\n", now.Format("15:04:05"), line)
	v.last, v.printed, v.pending = line, now, ""
}

// plainLine is a job on one line; it changes only when the job does.
func plainLine(job *batchv1alpha1.BatchJob) string {
	p := progressOf(job)
	s := fmt.Sprintf("%s %s items %s", jobKey(job), phaseLine(job, p), p.Short())
	if p.Failed > 0 {
		s += fmt.Sprintf(" +%s failed", count(p.Failed))
	}
	s += fmt.Sprintf(" | pages %s done, %s in flight", count(p.Pages.Completed), count(p.Pages.InFlight))
	if p.Pages.Failed > 0 {
		s += fmt.Sprintf(", %s failed", count(p.Pages.Failed))
	}
	s += fmt.Sprintf(" | %s | parallelism %d/%d", p.RateText(), p.Effective, p.Desired)
	if m := job.Status.Pages.MeanInFlight; m != "" {
		s += ", " + m + " in flight on average"
	}
	if c := chainsShort(job); c != "" {
		s += " | chains " + c
	}
	if chainBound(job) {
		s += " | chain-bound: " + chainBoundFix
	}
	if rollingOut(job) {
		s += " | workers " + workersText(job)
	}
	if redriveWaits(job) {
		s += " | re-drive waits for the worker rollout"
	}
	if d, ok := p.ETA(); ok {
		s += " | ETA " + roundDuration(d)
	}
	return s
}

func byTypeText(byType map[string]int64) string {
	types := sortedTypes(byType)
	parts := make([]string, 0, len(types))
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s %s", t, count(byType[t])))
	}
	return strings.Join(parts, ", ")
}
