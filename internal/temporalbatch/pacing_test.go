package temporalbatch

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var pacingStart = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func TestEffectiveParallelism(t *testing.T) {
	ramp := func(from, step int, every time.Duration) *RampUp {
		return &RampUp{From: from, Step: step, Every: every}
	}
	at := func(d time.Duration) time.Time { return pacingStart.Add(d) }
	tests := []struct {
		name     string
		desired  DesiredState
		now      time.Time
		want     int
		wantNext time.Time
	}{
		{
			name:    "suspended runs nothing",
			desired: DesiredState{Parallelism: 8, Suspend: true, RampUp: ramp(1, 1, time.Minute)},
			now:     at(time.Hour),
			want:    0,
		},
		{
			name:    "parallelism 0 runs nothing",
			desired: DesiredState{Parallelism: 0},
			now:     at(0),
			want:    0,
		},
		{
			name:    "no ramp-up is the parallelism at once",
			desired: DesiredState{Parallelism: 8},
			now:     at(0),
			want:    8,
		},
		{
			name:    "ramp-up without a period does not limit",
			desired: DesiredState{Parallelism: 8, RampUp: ramp(1, 1, 0)},
			now:     at(0),
			want:    8,
		},
		{
			name:    "ramp-up starting at the parallelism does not limit",
			desired: DesiredState{Parallelism: 4, RampUp: ramp(4, 1, time.Minute)},
			now:     at(0),
			want:    4,
		},
		{
			name:     "ramp-up starts at from",
			desired:  DesiredState{Parallelism: 8, RampUp: ramp(2, 1, time.Minute)},
			now:      at(0),
			want:     2,
			wantNext: at(time.Minute),
		},
		{
			name:     "ramp-up grows by step every period",
			desired:  DesiredState{Parallelism: 8, RampUp: ramp(1, 2, time.Minute)},
			now:      at(2*time.Minute + 30*time.Second),
			want:     5,
			wantNext: at(3 * time.Minute),
		},
		{
			name:     "ramp-up exactly at a step boundary",
			desired:  DesiredState{Parallelism: 8, RampUp: ramp(1, 1, time.Minute)},
			now:      at(3 * time.Minute),
			want:     4,
			wantNext: at(4 * time.Minute),
		},
		{
			name:    "a step overshooting the parallelism is capped",
			desired: DesiredState{Parallelism: 8, RampUp: ramp(1, 3, time.Minute)},
			now:     at(3 * time.Minute),
			want:    8,
		},
		{
			name:     "the last partial step still limits",
			desired:  DesiredState{Parallelism: 8, RampUp: ramp(1, 3, time.Minute)},
			now:      at(2*time.Minute + 59*time.Second),
			want:     7,
			wantNext: at(3 * time.Minute),
		},
		{
			name:    "ramp-up completed",
			desired: DesiredState{Parallelism: 8, RampUp: ramp(1, 1, time.Minute)},
			now:     at(7 * time.Minute),
			want:    8,
		},
		{
			name:     "a step of 0 counts as 1",
			desired:  DesiredState{Parallelism: 8, RampUp: ramp(1, 0, time.Minute)},
			now:      at(2 * time.Minute),
			want:     3,
			wantNext: at(3 * time.Minute),
		},
		{
			name:     "a clock before the ramp start holds at from",
			desired:  DesiredState{Parallelism: 8, RampUp: ramp(2, 1, time.Minute)},
			now:      at(-time.Hour),
			want:     2,
			wantNext: at(time.Minute),
		},
		{
			name:    "a very long run does not overflow",
			desired: DesiredState{Parallelism: 10000, RampUp: ramp(1, 1, time.Nanosecond)},
			now:     pacingStart.Add(math.MaxInt64),
			want:    10000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := effectiveParallelism(tt.desired, pacingStart, tt.now)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.wantNext, next)
		})
	}
}

func TestTokenBucket(t *testing.T) {
	type step struct {
		refillAt  time.Duration // since pacingStart; refills before take
		take      bool          // whether a token is expected
		wantWait  time.Duration // wait after the take
		wantLevel float64       // tokens after the take
	}
	tests := []struct {
		name  string
		rate  float64
		steps []step
	}{
		{
			name: "the first page starts at once, the next after 1/rate",
			rate: 2,
			steps: []step{
				{refillAt: 0, take: true, wantWait: 500 * time.Millisecond, wantLevel: 0},
				{refillAt: 250 * time.Millisecond, take: false, wantWait: 250 * time.Millisecond, wantLevel: 0.5},
				{refillAt: 500 * time.Millisecond, take: true, wantWait: 500 * time.Millisecond, wantLevel: 0},
			},
		},
		{
			name: "idle time earns at most one second of burst",
			rate: 5,
			steps: []step{
				{refillAt: 0, take: true, wantWait: 200 * time.Millisecond, wantLevel: 0},
				{refillAt: time.Hour, take: true, wantWait: 0, wantLevel: 4},
				{refillAt: time.Hour, take: true, wantWait: 0, wantLevel: 3},
				{refillAt: time.Hour, take: true, wantWait: 0, wantLevel: 2},
				{refillAt: time.Hour, take: true, wantWait: 0, wantLevel: 1},
				{refillAt: time.Hour, take: true, wantWait: 200 * time.Millisecond, wantLevel: 0},
				{refillAt: time.Hour, take: false, wantWait: 200 * time.Millisecond, wantLevel: 0},
			},
		},
		{
			name: "a rate below one a second bursts one page",
			rate: 0.5,
			steps: []step{
				{refillAt: 0, take: true, wantWait: 2 * time.Second, wantLevel: 0},
				{refillAt: time.Hour, take: true, wantWait: 2 * time.Second, wantLevel: 0},
				{refillAt: time.Hour + time.Second, take: false, wantWait: time.Second, wantLevel: 0.5},
			},
		},
		{
			name: "a clock going backwards earns nothing",
			rate: 1,
			steps: []step{
				{refillAt: time.Minute, take: true, wantWait: time.Second, wantLevel: 0},
				{refillAt: 0, take: false, wantWait: time.Second, wantLevel: 0},
			},
		},
		{
			name: "the wait is at least a millisecond",
			rate: 1e9,
			steps: []step{
				{refillAt: 0, take: true, wantWait: time.Millisecond, wantLevel: 0},
				{refillAt: 0, take: false, wantWait: time.Millisecond, wantLevel: 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tokens float64
			var at time.Time
			b := tokenBucket{tokens: &tokens, at: &at}
			for i, s := range tt.steps {
				b.refill(tt.rate, pacingStart.Add(s.refillAt))
				require.Equal(t, s.take, b.take(), "step %d: take", i)
				require.InDelta(t, s.wantLevel, tokens, 1e-9, "step %d: tokens", i)
				if s.wantWait == 0 {
					// Tokens left: the next page may start now.
					require.GreaterOrEqual(t, tokens, 1.0, "step %d", i)
					continue
				}
				require.InDelta(t, float64(s.wantWait), float64(b.wait(tt.rate)), float64(time.Microsecond), "step %d: wait", i)
			}
		})
	}
}

func TestRateOfItemsPerSecond(t *testing.T) {
	at := func(d time.Duration) time.Time { return pacingStart.Add(d) }
	tests := []struct {
		name      string
		samples   []RateSample
		processed int64
		now       time.Time
		want      float64
	}{
		{
			name:      "nothing yet",
			processed: 0,
			now:       at(0),
			want:      0,
		},
		{
			name:      "no time elapsed",
			processed: 100,
			now:       at(0),
			want:      0,
		},
		{
			name:      "one sample: the average since start",
			samples:   []RateSample{{Time: at(4 * time.Second), Items: 100}},
			processed: 100,
			now:       at(4 * time.Second),
			want:      25,
		},
		{
			name:      "the sliding window, not the average since start",
			samples:   []RateSample{{Time: at(time.Hour), Items: 1000}, {Time: at(time.Hour + 10*time.Second), Items: 1500}},
			processed: 1500,
			now:       at(time.Hour + 10*time.Second),
			want:      50,
		},
		{
			name:      "samples at the same instant fall back to the average",
			samples:   []RateSample{{Time: at(10 * time.Second), Items: 10}, {Time: at(10 * time.Second), Items: 30}},
			processed: 30,
			now:       at(10 * time.Second),
			want:      3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.want, itemsPerSecond(tt.samples, pacingStart, tt.processed, tt.now), 1e-9)
		})
	}
}

func TestAddRateSample(t *testing.T) {
	at := func(d time.Duration) time.Time { return pacingStart.Add(d) }
	tests := []struct {
		name    string
		samples []RateSample
		now     time.Time
		items   int64
		want    []RateSample
	}{
		{
			name:  "first sample",
			now:   at(0),
			items: 10,
			want:  []RateSample{{Time: at(0), Items: 10}},
		},
		{
			name:    "second sample is kept even when close",
			samples: []RateSample{{Time: at(0), Items: 10}},
			now:     at(100 * time.Millisecond),
			items:   20,
			want:    []RateSample{{Time: at(0), Items: 10}, {Time: at(100 * time.Millisecond), Items: 20}},
		},
		{
			name:    "within a second of the one before the last, the last moves",
			samples: []RateSample{{Time: at(0), Items: 10}, {Time: at(100 * time.Millisecond), Items: 20}},
			now:     at(900 * time.Millisecond),
			items:   30,
			want:    []RateSample{{Time: at(0), Items: 10}, {Time: at(900 * time.Millisecond), Items: 30}},
		},
		{
			name:    "a second after the one before the last, a sample is added",
			samples: []RateSample{{Time: at(0), Items: 10}, {Time: at(900 * time.Millisecond), Items: 30}},
			now:     at(time.Second),
			items:   40,
			want:    []RateSample{{Time: at(0), Items: 10}, {Time: at(900 * time.Millisecond), Items: 30}, {Time: at(time.Second), Items: 40}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, addRateSample(tt.samples, tt.now, tt.items))
		})
	}

	t.Run("the window keeps the newest samples", func(t *testing.T) {
		var samples []RateSample
		for i := range 3 * rateWindow {
			samples = addRateSample(samples, at(time.Duration(i)*time.Second), int64(i))
		}
		require.Len(t, samples, rateWindow)
		require.Equal(t, int64(2*rateWindow), samples[0].Items)
		require.Equal(t, int64(3*rateWindow-1), samples[rateWindow-1].Items)
		// A steady 1 item a second reads as 1 item a second.
		require.InDelta(t, 1.0, itemsPerSecond(samples, pacingStart, int64(3*rateWindow-1), at(time.Hour)), 1e-9)
	})
}
