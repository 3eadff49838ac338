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
