package main

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// countAt is a page count seen at a moment: by the workflow (its progress
// query answered) or in the job's status (a watch event arrived).
type countAt struct {
	At    time.Time
	Count int64
}

// percentile returns the p-th percentile (0..100) of ds by the nearest-rank
// method; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// statusLags returns, for every count the workflow reported that it had not
// reported before, how long after the report the status first showed that
// count or more: 0 when the status already showed it. unresolved counts the
// reports the status never caught up with. Both series are in time order.
func statusLags(workflow, status []countAt) (lags []time.Duration, unresolved int) {
	var highest int64 = -1
	for _, w := range workflow {
		if w.Count <= highest {
			continue
		}
		highest = w.Count
		found := false
		for _, s := range status {
			if s.Count >= w.Count {
				lags = append(lags, max(s.At.Sub(w.At), 0))
				found = true
				break
			}
		}
		if !found {
			unresolved++
		}
	}
	return lags, unresolved
}

// perJobMinute is a total over jobs × minutes of the window.
func perJobMinute(total float64, jobs int, window time.Duration) float64 {
	if jobs == 0 || window <= 0 {
		return 0
	}
	return total / (float64(jobs) * window.Minutes())
}

// perJobMinuteDeltas is, for every key of after, its growth since before
// per job and minute of the window: counters scraped at the window's start
// and end. A key absent from before started at 0.
func perJobMinuteDeltas(before, after map[string]float64, jobs int, window time.Duration) map[string]float64 {
	out := make(map[string]float64, len(after))
	for k, v := range after {
		out[k] = perJobMinute(v-before[k], jobs, window)
	}
	return out
}

// controllerCalls are the Temporal methods the controller calls, in the
// order the table lists them, with their short names; the manager's other
// calls are its orchestrator worker's (polls, task responses) and the
// client's own (GetSystemInfo, health checks).
var controllerCalls = []struct{ method, short string }{
	{"QueryWorkflow", "Query"},
	{"DescribeWorkflowExecution", "Describe"},
	{"SignalWorkflowExecution", "Signal"},
	{"StartWorkflowExecution", "Start"},
}

// byMethod is the Temporal calls column: the total, then the controller's
// methods and the rest summed as "worker etc.", the ones that are not 0;
// "-" when the manager exported no call counts.
func byMethod(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	total, rest := 0.0, 0.0
	for k, v := range m {
		total += v
		if !isControllerCall(k) {
			rest += v
		}
	}
	var parts []string
	for _, c := range controllerCalls {
		if v := m[c.method]; v > 0 {
			parts = append(parts, c.short+" "+rate(v))
		}
	}
	if rest > 0 {
		parts = append(parts, "worker etc. "+rate(rest))
	}
	if len(parts) == 0 {
		return rate(total)
	}
	return rate(total) + " (" + strings.Join(parts, ", ") + ")"
}

// otherCalls lists the calls byMethod sums as "worker etc." by method, the
// most frequent first: "PollWorkflowTaskQueue 2.1, RespondWorkflowTaskCompleted 2.0".
func otherCalls(m map[string]float64) string {
	var keys []string
	for k, v := range m {
		if v > 0 && !isControllerCall(k) {
			keys = append(keys, k)
		}
	}
	return descending(m, keys)
}

func isControllerCall(method string) bool {
	for _, c := range controllerCalls {
		if c.method == method {
			return true
		}
	}
	return false
}

// failedCalls sums the failed calls and lists them by "method code", the
// most frequent first.
func failedCalls(m map[string]float64) (total float64, list string) {
	var keys []string
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
			total += v
		}
	}
	return total, descending(m, keys)
}

// descending lists keys of m as "key value", the largest value first; "none"
// for no keys.
func descending(m map[string]float64, keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + rate(m[k])
	}
	return strings.Join(parts, ", ")
}

// rate formats a per-job-minute rate: one decimal, two below 1 so that a
// method called every few minutes does not read as 0.0.
func rate(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

var (
	errField   = regexp.MustCompile(`\berr(?:or)?="((?:[^"\\]|\\.)*)"`)
	workflowID = regexp.MustCompile(`batchjob/[A-Za-z0-9._/-]+`)
	objectName = regexp.MustCompile(`bench-\d+`)
	numbers    = regexp.MustCompile(`\d+(\.\d+)?(ms|s|µs)?`)
)

// reconcileErrors counts the manager log's "Reconciler error" lines and
// groups them by their error message, with workflow IDs, job names and
// numbers blanked so that the same cause falls into one group.
func reconcileErrors(log string) (total int, byMessage map[string]int) {
	byMessage = map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "Reconciler error") {
			continue
		}
		total++
		msg := "(no error field)"
		if m := errField.FindStringSubmatch(line); m != nil {
			msg = m[1]
		}
		msg = workflowID.ReplaceAllString(msg, "batchjob/…")
		msg = objectName.ReplaceAllString(msg, "bench-…")
		msg = numbers.ReplaceAllString(msg, "N")
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		byMessage[msg]++
	}
	return total, byMessage
}

// topMessages returns the n most frequent messages as "count× message".
func topMessages(byMessage map[string]int, n int) []string {
	msgs := make([]string, 0, len(byMessage))
	for m := range byMessage {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool {
		if byMessage[msgs[i]] != byMessage[msgs[j]] {
			return byMessage[msgs[i]] > byMessage[msgs[j]]
		}
		return msgs[i] < msgs[j]
	})
	if len(msgs) > n {
		msgs = msgs[:n]
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = fmt.Sprintf("%d× %s", byMessage[m], m)
	}
	return out
}
