// Command bench measures the BatchOrchestrator's page throughput against a
// baseline without orchestration, all on one Temporal dev server in one run.
//
// The baseline is a plain workflow that keeps parallelism page activities in
// flight until the pages have completed. The orchestrator runs the same pages
// as a job, in one of three shapes:
//
//   - classic: one chain, each page enqueues the one after it (lookahead 1);
//   - lookahead: one chain whose frontier page enqueues up to parallelism
//     successors in one signal (lookahead = parallelism);
//   - cursors: -cursors independent chains over disjoint ranges of the
//     pages, each with lookahead 1.
//
// The page processor computes its successors' cursors by offset arithmetic,
// so every shape runs exactly the pages asked, and every run is checked for
// that. The pages do no work unless the cell's page time is set; then every
// page of every variant waits that long (after enqueuing its successors).
//
// The matrix is every -parallelism with every -page-time: a cell. Each cell
// measures the baseline and the chosen -variants, alternating, for -rounds
// rounds, and reports the medians: pages per second and its ratio to the
// baseline, wall time, history events per page (over every run of a workflow
// that continued as new), the mean number of pages in flight, the workflow
// runs and the largest state a run carried to the next (the JSON of the
// continue-as-new input's state, or of the result's next state for the last
// run), read from the histories.
//
// -state-size runs a single long job instead (100,000 no-op pages by default)
// and prints the state each run carried, to show that it does not grow with
// the number of pages.
//
// Usage:
//
//	go run ./hack/bench [-parallelism 8,50] [-page-time 0,100ms] [-variants classic,lookahead,cursors] [-pages 0] [-rounds 3] [-markdown] [-events]
//	go run ./hack/bench -state-size [-pages 100000] [-state-parallelism 50] [-state-lookahead 100]
//	go run ./hack/bench -fairness [-fairness-slots 10] [-fairness-big 50] [-fairness-small 5] [-rounds 3]
//
// -fairness runs two jobs on one shared task queue served by one worker,
// without and with one fairness key per job (fairness.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// Default pages per measured run. The classic chain runs about 10 pages/s on
// the dev server whatever the parallelism and the page time, so it sets the
// matrix's running time: with 3 rounds it alone takes 450 s of the default
// matrix, which shorter runs put at about a quarter of an hour in all on two
// busy cores.
const (
	defaultNoopPages  = 500
	defaultTimedPages = 250
	defaultStatePages = 100_000
)

type config struct {
	parallelism []int
	pageTimes   []time.Duration
	variants    []string
	// pages per measured run; 0 picks the default for the cell or the mode.
	pages, rounds, warmupPages, chains int
	markdown, breakdown                bool
	timeout                            time.Duration
	timeoutSet                         bool
	dynamicConfig                      []string

	stateSize                        bool
	stateParallelism, stateLookahead int

	fairnessMode                              bool
	fairnessSlots, fairnessBig, fairnessSmall int
}

// pagesFor is the pages of a measured run with pages of pageTime.
func (cfg config) pagesFor(pageTime time.Duration) int {
	switch {
	case cfg.pages > 0:
		return cfg.pages
	case cfg.stateSize:
		return defaultStatePages
	case pageTime == 0:
		return defaultNoopPages
	}
	return defaultTimedPages
}

func main() {
	cfg := config{
		parallelism: []int{8, 50},
		pageTimes:   []time.Duration{0, 100 * time.Millisecond},
		variants:    orchestrationNames(),
	}
	flag.Var((*intList)(&cfg.parallelism), "parallelism", "comma-separated pages in flight of each cell, also the activity slots of its page workers")
	flag.Var((*durationList)(&cfg.pageTimes), "page-time", "comma-separated time each page spends processing after it enqueued its successors, one cell each (0 = no-op pages)")
	flag.Var((*nameList)(&cfg.variants), "variants", "comma-separated orchestrator variants to measure against the baseline: "+strings.Join(orchestrationNames(), ", "))
	flag.IntVar(&cfg.pages, "pages", 0, fmt.Sprintf("pages per measured run; 0 = %d per run of no-op pages and %d per run of timed pages (-page-time > 0), "+
		"which keeps the default matrix to about 15 min on 2 cores; %d with -state-size (about 25 min at the 66 pages/s measured on 2 cores)", defaultNoopPages, defaultTimedPages, defaultStatePages))
	flag.IntVar(&cfg.rounds, "rounds", 3, "measured runs of each variant in each cell; the median is reported")
	flag.IntVar(&cfg.warmupPages, "warmup-pages", 100, "pages of the unmeasured warm-up run of each variant, once per parallelism")
	flag.IntVar(&cfg.chains, "cursors", 8, "chains (processor.cursors) of the cursors variant")
	flag.BoolVar(&cfg.markdown, "markdown", false, "also print the results as markdown tables")
	flag.BoolVar(&cfg.breakdown, "events", false, "also print history events per page by event type (median round of each variant)")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "limit for a single run (with -state-size: none unless set)")
	flag.Func("dynamic-config", "dev server dynamic config value `KEY=JSON`; repeatable", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=JSON")
		}
		cfg.dynamicConfig = append(cfg.dynamicConfig, v)
		return nil
	})
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the bench process (its workers and the orchestrator) to this file")
	flag.BoolVar(&cfg.stateSize, "state-size", false, "run one long job of no-op pages instead of the matrix and print the state each run carried to the next")
	flag.IntVar(&cfg.stateParallelism, "state-parallelism", 50, "parallelism of the -state-size job")
	flag.IntVar(&cfg.stateLookahead, "state-lookahead", 100, "lookahead of the -state-size job")
	flag.BoolVar(&cfg.fairnessMode, "fairness", false, "run two jobs on one shared task queue instead of the matrix, without and with fairness keys, on a dev server with task queue fairness enabled, and print each job's share of the slots")
	flag.IntVar(&cfg.fairnessSlots, "fairness-slots", 10, "activity slots of the -fairness worker")
	flag.IntVar(&cfg.fairnessBig, "fairness-big", 50, "parallelism of the -fairness big job (12 pages per unit)")
	flag.IntVar(&cfg.fairnessSmall, "fairness-small", 5, "parallelism of the -fairness small job (12 pages per unit)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	flag.Visit(func(f *flag.Flag) { cfg.timeoutSet = cfg.timeoutSet || f.Name == "timeout" })
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (cfg config) validate() error {
	var errs []error
	if cfg.pages < 0 || cfg.rounds < 1 || cfg.warmupPages < 1 {
		errs = append(errs, errors.New("-pages must be at least 0, -rounds and -warmup-pages at least 1"))
	}
	if cfg.fairnessMode {
		if cfg.fairnessSlots < 1 || cfg.fairnessBig < 1 || cfg.fairnessSmall < 1 {
			errs = append(errs, errors.New("-fairness-slots, -fairness-big and -fairness-small must be at least 1"))
		}
		return errors.Join(errs...)
	}
	if cfg.stateSize {
		if cfg.stateParallelism < 1 || cfg.stateLookahead < 1 || cfg.stateLookahead > temporalbatch.MaxLookahead {
			errs = append(errs, fmt.Errorf("-state-parallelism must be at least 1 and -state-lookahead 1..%d", temporalbatch.MaxLookahead))
		}
		return errors.Join(errs...)
	}
	if len(cfg.parallelism) == 0 || len(cfg.pageTimes) == 0 || len(cfg.variants) == 0 {
		errs = append(errs, errors.New("-parallelism, -page-time and -variants need at least one value each"))
	}
	for _, p := range cfg.parallelism {
		if p < 1 || p > temporalbatch.MaxLookahead {
			errs = append(errs, fmt.Errorf("-parallelism %d: use 1..%d (the lookahead variant's lookahead is the parallelism)", p, temporalbatch.MaxLookahead))
		}
	}
	for _, t := range cfg.pageTimes {
		if t < 0 || t >= heartbeatTimeout {
			errs = append(errs, fmt.Errorf("-page-time %s: use at least 0 and less than the pages' heartbeat timeout (%s)", t, heartbeatTimeout))
		}
	}
	for _, v := range cfg.variants {
		if _, ok := orchestrationNamed(v); !ok {
			errs = append(errs, fmt.Errorf("-variants: unknown variant %q, use %s", v, strings.Join(orchestrationNames(), ", ")))
		}
	}
	if slices.Contains(cfg.variants, "cursors") {
		if cfg.chains < 1 || cfg.chains > temporalbatch.MaxChains {
			errs = append(errs, fmt.Errorf("-cursors %d: use 1..%d", cfg.chains, temporalbatch.MaxChains))
		}
		smallest := cfg.warmupPages
		for _, t := range cfg.pageTimes {
			smallest = min(smallest, cfg.pagesFor(t))
		}
		if smallest < cfg.chains {
			errs = append(errs, fmt.Errorf("the cursors variant splits every run into %d chains: give -pages and -warmup-pages at least that many", cfg.chains))
		}
	}
	return errors.Join(errs...)
}

// run owns every resource it starts and stops them all before it returns,
// whatever the outcome: workers first, then the client, then the dev server.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "starting the Temporal dev server")
	dynamic := cfg.dynamicConfig
	if cfg.fairnessMode {
		dynamic = append(dynamic, "matching.enableFairness=true")
	}
	srv, err := devserver.Start(ctx, devserver.Options{DynamicConfig: dynamic})
	if err != nil {
		return err
	}
	defer srv.Stop()
	c, err := srv.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	workflows, err := startWorkflowWorkers(c)
	for _, w := range workflows {
		defer w.Stop()
	}
	if err != nil {
		return err
	}

	b := &bench{
		c:             c,
		orchestrators: temporalbatch.NewClient(c, orchestratorWorkflowQueue),
		cfg:           cfg,
		work:          newPageWork(),
		log:           stderr,
	}
	if cfg.stateSize {
		return b.stateSize(ctx, stdout)
	}
	if cfg.fairnessMode {
		return b.fairness(ctx, stdout)
	}
	return b.matrix(ctx, stdout)
}

// intList is a comma-separated list of integers flag.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	var out []int
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// durationList is a comma-separated list of durations flag.
type durationList []time.Duration

func (l *durationList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

func (l *durationList) Set(s string) error {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// nameList is a comma-separated list of names flag.
type nameList []string

func (l *nameList) String() string { return strings.Join(*l, ",") }

func (l *nameList) Set(s string) error {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	*l = out
	return nil
}
