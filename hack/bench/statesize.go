package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// stateSize runs one long job of no-op pages with -state-lookahead at
// -state-parallelism and prints the state each of its runs carried to the
// next, read from the continue-as-new events: it stays bounded by the
// parallelism and the lookahead, whatever the number of pages.
func (b *bench) stateSize(ctx context.Context, stdout io.Writer) error {
	c := cell{parallelism: b.cfg.stateParallelism, pages: b.cfg.pagesFor(0)}
	return b.withPageWorkers(c.parallelism, func() error {
		if b.cfg.timeoutSet {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, b.cfg.timeout)
			defer cancel()
		}
		id := "bench-state-size-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		workflowID := temporalbatch.WorkflowID("bench", id, "0")
		fmt.Fprintf(b.log, "state size: %d no-op pages, lookahead %d, parallelism %d\n", c.pages, b.cfg.stateLookahead, c.parallelism)
		stopProgress := b.reportProgress(ctx, workflowID, c.pages)
		began := time.Now()
		_, runID, err := b.runOrchestrator(ctx, c, id, c.pages, func(spec *temporalbatch.ProcessorSpec) {
			spec.FirstCursor, spec.Lookahead = "0", b.cfg.stateLookahead
		})
		m := measurement{pages: c.pages, wall: time.Since(began)}
		stopProgress()
		if err != nil {
			return err
		}
		if m.events, err = countEvents(ctx, b.c, workflowID, runID, true); err != nil {
			return fmt.Errorf("count history events of %s: %w", workflowID, err)
		}
		printStateSize(stdout, b.cfg, c, m)
		return nil
	})
}

// reportProgress logs the job's progress every 30 s until stopped: a long
// job is otherwise silent for many minutes.
func (b *bench) reportProgress(ctx context.Context, workflowID string, pages int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		began := time.Now()
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p, err := b.orchestrators.Progress(ctx, workflowID)
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintf(b.log, "progress: %v\n", err)
				}
				continue
			}
			elapsed := time.Since(began)
			fmt.Fprintf(b.log, "%s: %d of %d pages, %.1f pages/s, run %d\n", elapsed.Round(time.Second), p.Pages.Completed, pages,
				float64(p.Pages.Completed)/elapsed.Seconds(), p.Runs)
		}
	}()
	return func() { cancel(); <-done }
}

func printStateSize(w io.Writer, cfg config, c cell, m measurement) {
	fmt.Fprintf(w, "state size: %d no-op pages, lookahead %d, parallelism %d\n", c.pages, cfg.stateLookahead, c.parallelism)
	fmt.Fprintf(w, "%.1f pages/s, %d runs, %.2f events/page, %.2f pages in flight, wall %s, largest carried state %s B\n",
		m.pagesPerSecond(), len(m.events.runs), m.eventsPerPage(), m.meanInFlight(),
		m.wall.Round(time.Second), formatBytes(m.events.maxStateBytes()))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tevents\tpages\tpages so far\tcarried state B\t")
	done := 0
	for i, r := range m.events.runs {
		done += r.pages
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t\n", i+1, r.events, r.pages, done, formatBytes(r.stateBytes))
	}
	tw.Flush()
	if cfg.markdown {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| run | history events | pages | pages so far | carried state (bytes) |")
		fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
		done = 0
		for i, r := range m.events.runs {
			done += r.pages
			fmt.Fprintf(w, "| %d | %d | %d | %d | %s |\n", i+1, r.events, r.pages, done, formatBytes(r.stateBytes))
		}
	}
}
