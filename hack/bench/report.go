package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// measurement is one run of a variant.
type measurement struct {
	pages  int
	wall   time.Duration
	events eventCount
}

func (m measurement) pagesPerSecond() float64 { return float64(m.pages) / m.wall.Seconds() }

func (m measurement) eventsPerPage() float64 { return float64(m.events.total) / float64(m.pages) }

// meanInFlight is the time-average number of pages scheduled and not yet
// closed (Little's law: the summed page latencies over the wall time).
func (m measurement) meanInFlight() float64 { return m.events.pageTime.Seconds() / m.wall.Seconds() }

func (m measurement) String() string {
	s := fmt.Sprintf("%d pages in %s: %.1f pages/s, %.2f events/page, %.2f pages in flight, %d run(s)",
		m.pages, m.wall.Round(time.Millisecond), m.pagesPerSecond(), m.eventsPerPage(), m.meanInFlight(), len(m.events.runs))
	if m.events.maxStateBytes() >= 0 {
		s += ", carried state " + m.stateBytesPerRun() + " B"
	}
	return s
}

// stateBytesPerRun lists the state each run carried, in run order.
func (m measurement) stateBytesPerRun() string {
	parts := make([]string, len(m.events.runs))
	for i, r := range m.events.runs {
		parts[i] = formatBytes(r.stateBytes)
	}
	return strings.Join(parts, " ")
}

// row is a variant's median over the measured rounds of a cell.
type row struct {
	name          string
	pagesPerSec   float64
	wall          time.Duration
	eventsPerPage float64
	inFlight      float64
	runs          float64
	// maxStateBytes is the median over rounds of the largest state a run
	// carried; -1 for the baseline.
	maxStateBytes float64
	// typical is the round whose throughput is the median (the lower middle
	// for an even number of rounds), for the per-type breakdown and the
	// per-run state sizes.
	typical measurement
}

func summarize(name string, ms []measurement) row {
	pps := make([]float64, len(ms))
	walls := make([]float64, len(ms))
	epp := make([]float64, len(ms))
	inFlight := make([]float64, len(ms))
	runs := make([]float64, len(ms))
	state := make([]float64, len(ms))
	for i, m := range ms {
		pps[i], walls[i], epp[i] = m.pagesPerSecond(), m.wall.Seconds(), m.eventsPerPage()
		inFlight[i], runs[i], state[i] = m.meanInFlight(), float64(len(m.events.runs)), float64(m.events.maxStateBytes())
	}
	byPPS := slices.Clone(ms)
	slices.SortFunc(byPPS, func(a, b measurement) int { return cmpFloat(a.pagesPerSecond(), b.pagesPerSecond()) })
	return row{
		name:          name,
		pagesPerSec:   median(pps),
		wall:          time.Duration(median(walls) * float64(time.Second)),
		eventsPerPage: median(epp),
		inFlight:      median(inFlight),
		runs:          median(runs),
		maxStateBytes: median(state),
		typical:       byPPS[(len(byPPS)-1)/2],
	}
}

// cellResult is a cell's rows, the baseline first.
type cellResult struct {
	cell   cell
	rounds int
	rows   []row
}

func (c cellResult) ratio(r row) float64 { return r.pagesPerSec / c.rows[0].pagesPerSec }

func (c cellResult) print(w io.Writer, breakdown bool) {
	fmt.Fprintf(w, "\n%s, %d round(s) (medians)\n", c.cell, c.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tpages/s\tratio\twall\tevents/page\tin flight\truns\tmax state B\t")
	for _, r := range c.rows {
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%s\t%.2f\t%.2f\t%s\t%s\t\n", r.name, r.pagesPerSec, c.ratio(r), r.wall.Round(time.Millisecond),
			r.eventsPerPage, r.inFlight, formatRuns(r.runs), formatBytes(int(r.maxStateBytes)))
	}
	tw.Flush()
	fmt.Fprintln(w, "carried state per run, bytes (median round):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range c.rows[1:] {
		fmt.Fprintf(tw, "  %s\t%s\n", r.name, r.typical.stateBytesPerRun())
	}
	tw.Flush()
	if breakdown {
		printBreakdown(w, c.rows)
	}
}

// printBreakdown prints history events per page by type, a column per variant.
func printBreakdown(w io.Writer, rows []row) {
	fmt.Fprintln(w, "history events per page by type (median round):")
	types := map[enumspb.EventType]bool{}
	for _, r := range rows {
		for t := range r.typical.events.byType {
			types[t] = true
		}
	}
	var sorted []enumspb.EventType
	for t := range types {
		sorted = append(sorted, t)
	}
	slices.Sort(sorted)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{"event type"}
	for _, r := range rows {
		header = append(header, r.name)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, t := range sorted {
		cells := []string{strings.TrimPrefix(t.String(), "EVENT_TYPE_")}
		for _, r := range rows {
			cells = append(cells, fmt.Sprintf("%.3f", float64(r.typical.events.byType[t])/float64(r.typical.pages)))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

// printMarkdown prints every cell as rows of one table, and the state each
// run carried as a second.
func printMarkdown(w io.Writer, cfg config, results []cellResult) {
	fmt.Fprintf(w, "\nmarkdown (medians of %d round(s)):\n\n", cfg.rounds)
	fmt.Fprintln(w, "| parallelism | pages | page time | variant | pages/s | ratio to baseline | wall time | history events/page | mean pages in flight | workflow runs | max carried state (bytes) |")
	fmt.Fprintln(w, "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range results {
		for _, r := range c.rows {
			name := r.name
			if r.name == c.rows[0].name {
				name = "*" + name + "*"
			}
			fmt.Fprintf(w, "| %d | %d | %s | %s | %.1f | %.2f | %s | %.2f | %.2f | %s | %s |\n",
				c.cell.parallelism, c.cell.pages, pageTimeLabel(c.cell.pageTime), name, r.pagesPerSec, c.ratio(r),
				r.wall.Round(time.Millisecond), r.eventsPerPage, r.inFlight, formatRuns(r.runs), formatBytes(int(r.maxStateBytes)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| parallelism | page time | variant | carried state per run (bytes, median round) |")
	fmt.Fprintln(w, "| ---: | --- | --- | --- |")
	for _, c := range results {
		for _, r := range c.rows[1:] {
			fmt.Fprintf(w, "| %d | %s | %s | %s |\n", c.cell.parallelism, pageTimeLabel(c.cell.pageTime), r.name, r.typical.stateBytesPerRun())
		}
	}
}

func pageTimeLabel(d time.Duration) string {
	if d == 0 {
		return "no-op pages"
	}
	return d.String() + " pages"
}

func formatBytes(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func formatRuns(runs float64) string {
	if runs == float64(int(runs)) {
		return strconv.Itoa(int(runs))
	}
	return strconv.FormatFloat(runs, 'f', 1, 64)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
