package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// The fairness mode: two jobs share one page task queue served by one worker
// with few activity slots, a large one at a high parallelism and a small one
// at a low one, started together. Without fairness keys the queue dispatches
// in order of arrival, and the large job's backlog holds the slots; with one
// key per job (spec.fairness) the server shares dispatch between the keys.
// Both rounds run on one dev server whose task queue fairness is enabled
// (matching.enableFairness), so the only difference is the keys.

const fairnessPageTime = 100 * time.Millisecond

type fairnessJob struct {
	name                string
	parallelism, pages  int
	started, finished   time.Time
	slotSamples, inBoth float64
}

// fairnessRound is one round: the two jobs' shares of the slots while both
// ran, and their completion times.
type fairnessRound struct {
	keys       bool
	big, small fairnessJob
}

func (b *bench) fairness(ctx context.Context, stdout io.Writer) error {
	var rounds []fairnessRound
	for r := range b.cfg.rounds {
		for _, keys := range []bool{false, true} {
			round, err := b.fairnessRound(ctx, fmt.Sprintf("r%d-%v", r, keys), keys)
			if err != nil {
				return err
			}
			fmt.Fprintf(b.log, "round %d, fairness keys %v: small job done in %s, big job in %s; slots while both ran: big %.1f, small %.1f\n",
				r+1, keys, round.small.finished.Sub(round.small.started).Round(10*time.Millisecond), round.big.finished.Sub(round.big.started).Round(10*time.Millisecond),
				round.big.share(), round.small.share())
			rounds = append(rounds, round)
		}
	}
	printFairness(stdout, b.cfg, rounds)
	return nil
}

func (j fairnessJob) share() float64 {
	if j.inBoth == 0 {
		return 0
	}
	return j.slotSamples / j.inBoth
}

// fairnessRound runs the two jobs on a queue of their own, one worker with
// -fairness-slots slots, sampling the pages each runs every 10 ms.
func (b *bench) fairnessRound(ctx context.Context, label string, keys bool) (fairnessRound, error) {
	queue := "bench-fairness-" + label
	counts := &runningPages{byJob: map[string]int{}}
	w := worker.New(b.c, queue, worker.Options{MaxConcurrentActivityExecutionSize: b.cfg.fairnessSlots})
	processor.Register(w, offsetProcessor, func(ctx context.Context, page *processor.Page) (processor.Result, error) {
		counts.add(page.Job.WorkflowID, 1)
		defer counts.add(page.Job.WorkflowID, -1)
		return b.work.offsets(ctx, page)
	})
	if err := w.Start(); err != nil {
		return fairnessRound{}, err
	}
	defer w.Stop()

	round := fairnessRound{
		keys:  keys,
		big:   fairnessJob{name: "big", parallelism: b.cfg.fairnessBig, pages: 12 * b.cfg.fairnessBig},
		small: fairnessJob{name: "small", parallelism: b.cfg.fairnessSmall, pages: 12 * b.cfg.fairnessSmall},
	}
	ids := map[string]string{}
	for _, j := range []*fairnessJob{&round.big, &round.small} {
		id := temporalbatch.WorkflowID("bench", "fairness-"+label+"-"+j.name, "0")
		ids[j.name] = id
		spec := processorSpec(j.pages, fairnessPageTime)
		spec.FirstCursor, spec.Lookahead = "0", j.parallelism
		in := temporalbatch.Input{
			Job:       processor.JobRef{Namespace: "bench", Name: j.name, WorkflowID: id},
			TaskQueue: queue,
			Processor: spec,
			Retry:     retryPolicy(),
			Desired:   temporalbatch.DesiredState{Generation: 1, Parallelism: j.parallelism},
		}
		if keys {
			in.Priority = temporalbatch.Priority{FairnessKey: j.name}
		}
		j.started = time.Now()
		if _, err := b.orchestrators.Start(ctx, in); err != nil {
			return round, err
		}
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	var errs [2]error
	for i, j := range []*fairnessJob{&round.big, &round.small} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res temporalbatch.Result
			errs[i] = b.c.GetWorkflow(ctx, ids[j.name], "").Get(ctx, &res)
			j.finished = time.Now()
			if missing, _ := b.work.settle(ids[j.name], j.pages); errs[i] == nil && missing > 0 {
				errs[i] = fmt.Errorf("%s job: %d of %d pages never processed", j.name, missing, j.pages)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		case <-tick.C:
			// Shares count only while both jobs run.
			if round.small.finished.IsZero() && round.big.finished.IsZero() {
				big, small := counts.get(ids["big"]), counts.get(ids["small"])
				round.big.slotSamples += float64(big)
				round.small.slotSamples += float64(small)
				round.big.inBoth++
				round.small.inBoth++
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			return round, err
		}
	}
	return round, nil
}

type runningPages struct {
	mu    sync.Mutex
	byJob map[string]int
}

func (r *runningPages) add(id string, n int) {
	r.mu.Lock()
	r.byJob[id] += n
	r.mu.Unlock()
}

func (r *runningPages) get(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byJob[id]
}

func printFairness(w io.Writer, cfg config, rounds []fairnessRound) {
	med := func(keys bool, f func(fairnessRound) float64) float64 {
		var v []float64
		for _, r := range rounds {
			if r.keys == keys {
				v = append(v, f(r))
			}
		}
		return median(v)
	}
	smallDone := func(r fairnessRound) float64 { return r.small.finished.Sub(r.small.started).Seconds() }
	bigDone := func(r fairnessRound) float64 { return r.big.finished.Sub(r.big.started).Seconds() }
	fmt.Fprintf(w, "\nOne task queue, one worker with %d slots; pages of %s; a big job (parallelism %d, %d pages) and a small one (parallelism %d, %d pages) started together; medians of %d rounds\n\n",
		cfg.fairnessSlots, fairnessPageTime, cfg.fairnessBig, 12*cfg.fairnessBig, cfg.fairnessSmall, 12*cfg.fairnessSmall, cfg.rounds)
	fmt.Fprintln(w, "| fairness keys | big job's slots | small job's slots | small job done | big job done |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for _, keys := range []bool{false, true} {
		label := "none (order of arrival)"
		if keys {
			label = "one per job"
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.2f s | %.2f s |\n", label,
			med(keys, func(r fairnessRound) float64 { return r.big.share() }),
			med(keys, func(r fairnessRound) float64 { return r.small.share() }),
			med(keys, smallDone), med(keys, bigDone))
	}
	without, with := med(false, smallDone), med(true, smallDone)
	if with > 0 {
		fmt.Fprintf(w, "\nthe small job finished %.2fx faster with fairness keys\n", without/with)
	}
}
