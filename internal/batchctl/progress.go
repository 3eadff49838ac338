package batchctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"k8s.io/apimachinery/pkg/util/duration"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// progress is what the views show of a job at one moment, computed from
// the BatchJob alone.
type progress struct {
	Phase batchv1alpha1.BatchJobPhase
	// Total is the size of the data set, when Sized.
	Total int64
	Sized bool

	Processed, Failed int64
	Pages             batchv1alpha1.PageStatus
	// Rate is items per second; RateKnown is false when status has none.
	Rate      float64
	RateKnown bool

	Desired, Effective int32
}

func progressOf(job *batchv1alpha1.BatchJob) progress {
	st := job.Status
	p := progress{
		Phase:     phaseOf(job),
		Processed: st.Items.Processed,
		Failed:    st.Items.Failed,
		Pages:     st.Pages,
		Desired:   st.Parallelism.Desired,
		Effective: st.Parallelism.Effective,
	}
	p.Total, p.Sized = dataSetSize(job)
	if r, err := strconv.ParseFloat(st.ItemsPerSecond, 64); err == nil && r >= 0 {
		p.Rate, p.RateKnown = r, true
	}
	if p.Desired == 0 && st.ObservedGeneration == 0 && job.Spec.Parallelism != nil {
		// The workflow has not reported yet: show what was asked for.
		p.Desired = *job.Spec.Parallelism
	}
	return p
}

// phaseOf is the job's phase; a job the controller has not seen yet is Pending.
func phaseOf(job *batchv1alpha1.BatchJob) batchv1alpha1.BatchJobPhase {
	if job.Status.Phase == "" {
		return batchv1alpha1.PhasePending
	}
	return job.Status.Phase
}

func finished(phase batchv1alpha1.BatchJobPhase) bool {
	return phase == batchv1alpha1.PhaseSucceeded || phase == batchv1alpha1.PhaseFailed
}

// dataSetSize is the number of items of the job's data set, when the job
// states it: spec.processor.args.totalItems, the synthetic processor's
// argument and a convention any processor may follow. Nothing else tells
// the size of a data set that is paged through without a first pass.
func dataSetSize(job *batchv1alpha1.BatchJob) (int64, bool) {
	if job.Spec.Processor.Args == nil || len(job.Spec.Processor.Args.Raw) == 0 {
		return 0, false
	}
	var args map[string]json.RawMessage
	if err := json.Unmarshal(job.Spec.Processor.Args.Raw, &args); err != nil {
		return 0, false
	}
	raw, ok := args["totalItems"]
	if !ok {
		return 0, false
	}
	// Read as the synthetic processor reads it: a whole JSON number.
	var total int64
	if err := json.Unmarshal(raw, &total); err != nil || total < 0 {
		return 0, false
	}
	return total, true
}

// Done is the items finished (processed or failed).
func (p progress) Done() int64 { return p.Processed + p.Failed }

// Fraction is the share of the data set finished, when it is Sized.
func (p progress) Fraction() float64 {
	switch {
	case !p.Sized:
		return 0
	case p.Total == 0:
		return 1
	}
	return min(1, float64(p.Done())/float64(p.Total))
}

// Percent is Fraction in whole percent, rounded down so that 100% means done.
func (p progress) Percent() int { return int(p.Fraction() * 100) }

// ETA is the time left at the current rate, when it can be told.
func (p progress) ETA() (time.Duration, bool) {
	if !p.Sized || !p.RateKnown || p.Rate <= 0 || finished(p.Phase) || p.Phase == batchv1alpha1.PhaseSuspended {
		return 0, false
	}
	left := max(0, p.Total-p.Done())
	return time.Duration(float64(left) / p.Rate * float64(time.Second)), true
}

// ETAText is ETA in words, saying why when there is none.
func (p progress) ETAText() string {
	if d, ok := p.ETA(); ok {
		return roundDuration(d)
	}
	switch {
	case finished(p.Phase):
		return "none: the job finished"
	case !p.Sized:
		return "unknown: the size of the data set is not known (spec.processor.args has no totalItems)"
	case p.Phase == batchv1alpha1.PhaseSuspended:
		return "none while paused"
	default:
		return "unknown until items are processed"
	}
}

// RateText is the rate as the status states it, "-" when there is none.
func (p progress) RateText() string {
	if !p.RateKnown {
		return "-"
	}
	return strconv.FormatFloat(p.Rate, 'f', -1, 64) + " items/s"
}

// Bar is a progress bar of the data set, drawn by progressbar; empty when
// the size is not known.
func (p progress) Bar(width int) string {
	if !p.Sized {
		return ""
	}
	// The bar counts permille so that it draws any total, 0 included.
	const steps = 1000
	bar := progressbar.NewOptions64(steps,
		progressbar.OptionSetWriter(io.Discard),
		progressbar.OptionSetWidth(width),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionSetRenderBlankState(true),
	)
	_ = bar.Set64(int64(p.Fraction() * steps))
	return strings.TrimSpace(bar.String())
}

// ItemsText is items done, of how many when known.
func (p progress) ItemsText() string {
	var b strings.Builder
	b.WriteString(count(p.Processed))
	if p.Sized {
		b.WriteString(" of " + count(p.Total))
	}
	b.WriteString(" items processed")
	if p.Failed > 0 {
		b.WriteString(", " + count(p.Failed) + " failed")
	}
	return b.String()
}

// PagesText is the pages by state, leaving out states with none but the
// completed and in-flight ones.
func (p progress) PagesText() string {
	parts := []string{count(p.Pages.Completed) + " completed", count(p.Pages.InFlight) + " in flight"}
	for _, s := range []struct {
		n    int64
		what string
	}{{p.Pages.Pending, "pending"}, {p.Pages.Stuck, "stuck"}, {p.Pages.Failed, "failed"}} {
		if s.n > 0 {
			parts = append(parts, count(s.n)+" "+s.what)
		}
	}
	if p.Pages.Unknown > 0 {
		parts = append(parts, fmt.Sprintf("%s of them with an unknown outcome (AtMostOnce: re-driven only with --include-unknown)", count(p.Pages.Unknown)))
	}
	if p.Pages.Ignored > 0 {
		parts = append(parts, fmt.Sprintf("%s of the completed ignored by a failure rule (their items count as failed)", count(p.Pages.Ignored)))
	}
	return strings.Join(parts, ", ")
}

// Short is a one-line summary, for list and plain watch output.
func (p progress) Short() string {
	if !p.Sized {
		return count(p.Processed)
	}
	return fmt.Sprintf("%s/%s (%d%%)", count(p.Processed), count(p.Total), p.Percent())
}

// count formats n with thousands separators: 50,000.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// roundDuration shows a duration to the second (to the minute past a day).
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < 24*time.Hour:
		return d.Round(time.Second).String()
	default:
		return duration.HumanDuration(d)
	}
}

// age is how long ago t was, kubectl style ("5m", "3d"); "-" for no time.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}
