// Command benchcontroller measures the controller with many running
// BatchJobs: on the local environment of `make demo` and `make dev` (etcd and
// kube-apiserver through envtest, a Temporal dev server, the real
// bin/manager), it creates N jobs at once without spec.worker, all on one
// task queue served by one worker in this process (the bundled processors),
// and reports per N how long until all were Running, the manager's peak RSS
// and CPU, reconciles and BatchJob writes per job-minute, how far status
// lags behind the workflows, and how long a spec.parallelism edit takes to
// show in status. Then it deletes the jobs and stops the environment.
//
// `make bench-controller` builds what it needs and runs it. Usage:
//
//	go run ./hack/benchcontroller [-jobs 100,500,1000] [-measure 2m] [-parallelism 1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

// config is one run's workload and measurement.
type config struct {
	jobs           []int
	parallelism    int32
	pageSize       int32
	itemDelay      time.Duration
	items          int64
	measure        time.Duration
	sample         int
	edits          int
	runningTimeout time.Duration
	editTimeout    time.Duration
	pollInterval   time.Duration
	stateDir       string
	managerArgs    string
	markdown       bool
}

func main() {
	os.Exit(run())
}

func run() int {
	// envtest logs through controller-runtime, which would otherwise print a
	// stack trace about a missing logger when the second N starts.
	ctrllog.SetLogger(logr.Discard())
	var cfg config
	jobs := flag.String("jobs", "100", "comma-separated numbers of jobs, one measurement each, e.g. 100,500,1000")
	parallelism := flag.Int("parallelism", 1, "spec.parallelism of every job (an edit raises it by 1)")
	pageSize := flag.Int("page-size", 10, "items per page")
	flag.DurationVar(&cfg.itemDelay, "item-delay", 100*time.Millisecond, "simulated work per item (a page takes page-size × item-delay)")
	flag.Int64Var(&cfg.items, "items", 1_000_000, "items per job: enough that no job ends during the measurement")
	flag.DurationVar(&cfg.measure, "measure", 2*time.Minute, "measurement window once all jobs run")
	flag.IntVar(&cfg.sample, "sample", 10, "jobs whose status lag is sampled every second")
	flag.IntVar(&cfg.edits, "edits", 10, "jobs whose spec.parallelism is edited after the window")
	flag.DurationVar(&cfg.runningTimeout, "running-timeout", 5*time.Minute, "give up waiting for all jobs to be Running after this long")
	flag.DurationVar(&cfg.editTimeout, "edit-timeout", 2*time.Minute, "give up waiting for an edit to show in status after this long")
	flag.DurationVar(&cfg.pollInterval, "poll-interval", 0, "the manager's --poll-interval (default: the local environment's, 1s)")
	flag.StringVar(&cfg.managerArgs, "manager-args", "", "extra flags of the manager, space-separated, e.g. --progress-reports=false")
	flag.StringVar(&cfg.stateDir, "state-dir", "", "state and logs (default .local/benchcontroller of the repository); wiped for every N")
	flag.BoolVar(&cfg.markdown, "markdown", true, "print the results as a Markdown table")
	flag.Parse()
	cfg.parallelism, cfg.pageSize = int32(*parallelism), int32(*pageSize)
	for _, f := range strings.Split(*jobs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "benchcontroller: -jobs: %q is not a positive number\n", f)
			return 2
		}
		cfg.jobs = append(cfg.jobs, n)
	}
	root, err := localenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcontroller:", err)
		return 2
	}
	if cfg.stateDir == "" {
		cfg.stateDir = filepath.Join(root, ".local", "benchcontroller")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("Controller benchmark: %v jobs, parallelism %d, pages of %d items × %s, window %s, %d jobs sampled for lag, %d edited\n",
		cfg.jobs, cfg.parallelism, cfg.pageSize, cfg.itemDelay, cfg.measure, cfg.sample, cfg.edits)
	began := time.Now()
	var results []result
	code := 0
	for _, n := range cfg.jobs {
		res, err := measureN(ctx, root, cfg, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchcontroller: %d jobs: %v\n", n, err)
			code = 1
			if errors.Is(ctx.Err(), context.Canceled) {
				break
			}
			continue
		}
		results = append(results, res)
		printResults(results)
	}
	fmt.Printf("\nTook %s in all.\n", time.Since(began).Round(time.Second))
	return code
}
