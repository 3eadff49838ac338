package controller

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

func TestPlanJitter(t *testing.T) {
	running := progressFixture()
	suspended := progressFixture(func(pr *temporalbatch.Progress) {
		pr.State = temporalbatch.StateSuspended
		pr.Parallelism.Effective, pr.Pages.InFlight = 0, 0
	})
	succeeded := progressFixture(ended(temporalbatch.StateSucceeded, temporalbatch.ReasonCompleted, "", 0))
	tests := []struct {
		name   string
		obs    observation
		jitter float64
		want   time.Duration
	}{
		{"running, no jitter", observation{job: reported(planJobFixture(), running), progress: &running}, 0, 5 * time.Second},
		{"running, shortest", observation{job: reported(planJobFixture(), running), progress: &running}, -1, 4 * time.Second},
		{"running, longer", observation{job: reported(planJobFixture(), running), progress: &running}, 0.5, 5500 * time.Millisecond},
		{"suspended and idle, shortest", observation{
			job:      reported(planJobFixture(func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = true }), suspended),
			progress: &suspended,
		}, -1, 96 * time.Second},
		{"starting", observation{job: planJobFixture()}, -0.5, 900 * time.Millisecond},
		{"finished: nothing to poll", observation{job: reported(planJobFixture(), succeeded), progress: &succeeded}, -1, 0},
		{"TTL is a deadline, not a poll: exact", observation{
			job: reported(planJobFixture(withTTL(600)), running), progress: &succeeded,
		}, -1, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := tt.obs
			obs.now, obs.jitter = planNow, tt.jitter
			require.Equal(t, tt.want, planJob(obs, planIntervals).requeueAfter)
		})
	}
}

// Jobs created together draw their intervals apart: the spread of the next
// poll covers most of ±20 % and never leaves it.
func TestPlanJitterSpreads(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pr := progressFixture()
	lo, hi := time.Hour, time.Duration(0)
	for range 500 {
		obs := observation{job: reported(planJobFixture(), pr), progress: &pr, now: planNow, jitter: 2*r.Float64() - 1}
		d := planJob(obs, planIntervals).requeueAfter
		lo, hi = min(lo, d), max(hi, d)
	}
	require.GreaterOrEqual(t, lo, 4*time.Second)
	require.Less(t, hi, 6*time.Second)
	require.Greater(t, hi-lo, 1800*time.Millisecond, "the intervals of 500 jobs should spread over most of 2 s")
}
