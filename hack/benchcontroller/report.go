package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
)

// printResults prints the table of every N measured so far, then each N's
// reconcile errors.
func printResults(results []result) {
	fmt.Println()
	fmt.Println("| jobs | all Running after | manager peak RSS | manager CPU s / job-min | reconciles / job-min | Temporal calls / job-min | BatchJob writes / job-min | status lag p50 / p95 | spec edit p50 / p95 | \"Reconciler error\" lines |")
	fmt.Println("| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		running := fmt.Sprintf("%s", r.allRunningIn.Round(100*time.Millisecond))
		if r.running < r.jobs {
			running = fmt.Sprintf("only %d after %s", r.running, r.allRunningIn.Round(time.Second))
		}
		lag := fmt.Sprintf("%s / %s (%d counts", dur(percentile(r.lags, 50)), dur(percentile(r.lags, 95)), len(r.lags))
		if r.lagsPending > 0 {
			lag += fmt.Sprintf(", %d never shown", r.lagsPending)
		}
		lag += ")"
		edit := fmt.Sprintf("%s / %s (%d", dur(percentile(r.edits, 50)), dur(percentile(r.edits, 95)), len(r.edits))
		if r.editsPending > 0 {
			edit += fmt.Sprintf(", %d not within the timeout", r.editsPending)
		}
		edit += ")"
		fmt.Printf("| %d | %s | %.0f MiB | %.3f | %s | %s | %.1f | %s | %s | %d |\n",
			r.jobs, running, float64(r.peakRSSKiB)/1024, r.cpuPerJobMin, byResult(r.reconciles), byMethod(r.temporalCalls), r.writesPerMin, lag, edit, r.errorLines)
	}
	for _, r := range results {
		fmt.Printf("\n%d jobs: window %s; progress queries of the sampled workflows p50 %s, p95 %s, %d failed; jobs deleted in %s (%d left); manager restarts %d\n",
			r.jobs, r.window.Round(time.Second), dur(percentile(r.queryLatency, 50)), dur(percentile(r.queryLatency, 95)), r.queryErrors,
			r.deletedIn.Round(100*time.Millisecond), r.remaining, r.restarts)
		if r.lateStarted {
			fmt.Printf("  one more job created while %d ran: Running after %s\n", r.jobs, dur(r.lateStart))
		} else {
			fmt.Printf("  one more job created while %d ran: not Running after %s\n", r.jobs, dur(r.lateStart))
		}
		fmt.Printf("  batchjob controller over the window: reconcile %s on average, %s waiting in the workqueue; queue depth at its end by priority: %s\n",
			dur(r.meanReconcile), dur(r.meanQueueWait), depths(r.queueDepth))
		if len(r.temporalCalls) > 0 {
			failed, failures := failedCalls(r.temporalFailures)
			fmt.Printf("  manager's Temporal calls per job-minute over the window besides the controller's (\"worker etc.\"): %s; failed: %s (%s)\n",
				otherCalls(r.temporalCalls), rate(failed), failures)
		} else {
			fmt.Println("  the manager exported no temporal_batch_temporal_requests_total: Temporal calls not counted")
		}
		if len(r.topErrors) > 0 {
			fmt.Println("  top reconcile errors:")
			for _, m := range r.topErrors {
				fmt.Println("    " + m)
			}
		}
	}
}

func byResult(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	total := 0.0
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := []string{fmt.Sprintf("%.1f", total)}
	for _, k := range keys {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, m[k]))
		}
	}
	return parts[0] + " (" + strings.Join(parts[1:], ", ") + ")"
}

func depths(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %.0f", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// quietLogger drops the SDK's logs, which would bury the progress lines.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

var _ log.Logger = quietLogger{}
