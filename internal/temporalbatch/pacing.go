package temporalbatch

import (
	"math"
	"time"
)

// effectiveParallelism is min(parallelism, ramp-up level), 0 while suspended.
// It also returns when the ramp-up level next rises, or the zero time when it
// no longer limits.
func effectiveParallelism(d DesiredState, rampStart, now time.Time) (int, time.Time) {
	if d.Suspend || d.Parallelism <= 0 {
		return 0, time.Time{}
	}
	r := d.RampUp
	if r == nil || r.Every <= 0 || r.From >= d.Parallelism {
		return d.Parallelism, time.Time{}
	}
	step := max(r.Step, 1)
	elapsed := max(now.Sub(rampStart), 0)
	steps := int64(elapsed / r.Every)
	// Enough steps to reach parallelism; capping avoids overflow on long runs.
	needed := int64((d.Parallelism - r.From + step - 1) / step)
	if steps >= needed {
		return d.Parallelism, time.Time{}
	}
	level := max(r.From+int(steps)*step, 0)
	return min(level, d.Parallelism), rampStart.Add(time.Duration(steps+1) * r.Every)
}

// tokenBucket paces page starts. Its burst is one second's worth of tokens
// (at least one), so a high rate costs at most one timer a second.
type tokenBucket struct {
	tokens *float64
	at     *time.Time
}

func rateBurst(rate float64) float64 { return math.Max(1, rate) }

// refill adds the tokens earned since the last refill.
func (b tokenBucket) refill(rate float64, now time.Time) {
	if b.at.IsZero() {
		*b.tokens, *b.at = 1, now
		return
	}
	earned := now.Sub(*b.at).Seconds() * rate
	*b.tokens = math.Min(rateBurst(rate), *b.tokens+math.Max(earned, 0))
	*b.at = now
}

// take consumes a token if one is available.
func (b tokenBucket) take() bool {
	if *b.tokens >= 1 {
		*b.tokens--
		return true
	}
	return false
}

// wait is how long until the next token.
func (b tokenBucket) wait(rate float64) time.Duration {
	missing := 1 - *b.tokens
	if missing <= 0 {
		return 0
	}
	d := time.Duration(math.Ceil(missing / rate * float64(time.Second)))
	return max(d, time.Millisecond)
}

// itemsPerSecond is the rate over the recorded samples, a sliding window of
// recent page completions, or the average since start when too few exist.
func itemsPerSecond(samples []RateSample, start time.Time, processed int64, now time.Time) float64 {
	if len(samples) >= 2 {
		first, last := samples[0], samples[len(samples)-1]
		if secs := last.Time.Sub(first.Time).Seconds(); secs > 0 {
			return float64(last.Items-first.Items) / secs
		}
	}
	if secs := now.Sub(start).Seconds(); secs > 0 {
		return float64(processed) / secs
	}
	return 0
}

// Rate samples: at most one a second, the last rateWindow kept.
const rateWindow = 30

func addRateSample(samples []RateSample, now time.Time, items int64) []RateSample {
	if n := len(samples); n >= 2 && now.Sub(samples[n-2].Time) < time.Second {
		samples[n-1] = RateSample{Time: now, Items: items}
		return samples
	}
	samples = append(samples, RateSample{Time: now, Items: items})
	if len(samples) > rateWindow {
		samples = append(samples[:0], samples[len(samples)-rateWindow:]...)
	}
	return samples
}
