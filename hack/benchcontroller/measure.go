package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

const (
	namespace  = "default"
	taskQueue  = "benchcontroller"
	benchLabel = "benchcontroller"
)

// result is what one N measured.
type result struct {
	jobs int
	// running: jobs that reached Running, and when the last did after the
	// first create call.
	running      int
	allRunningIn time.Duration
	window       time.Duration
	peakRSSKiB   int64
	cpuPerJobMin float64
	// reconciles by result per job-minute, from the manager's metrics.
	reconciles map[string]float64
	// temporalCalls by gRPC method and temporalFailures by "method code",
	// per job-minute, from the manager's metrics.
	temporalCalls    map[string]float64
	temporalFailures map[string]float64
	// meanReconcile and meanQueueWait are over the window; queueDepth by
	// priority at its end.
	meanReconcile time.Duration
	meanQueueWait time.Duration
	queueDepth    map[string]float64
	writesPerMin  float64
	lags          []time.Duration
	lagsPending   int
	queryLatency  []time.Duration
	queryErrors   int
	edits         []time.Duration
	editsPending  int
	errorLines    int
	topErrors     []string
	deletedIn     time.Duration
	remaining     int
	// lateStart is how long one more job, created while the N run, took to
	// show Running; lateStarted is false when it did not within the
	// running timeout.
	lateStart   time.Duration
	lateStarted bool
	restarts    int
}

func measureN(ctx context.Context, root string, cfg config, n int) (res result, err error) {
	res.jobs = n
	fmt.Printf("\n== %d jobs ==\n", n)
	metricsPort, err := devserver.FreePort()
	if err != nil {
		return res, err
	}
	env, err := localenv.Start(ctx, localenv.Options{
		RepoRoot:     root,
		StateDir:     cfg.stateDir,
		Fresh:        true,
		PollInterval: cfg.pollInterval,
		ManagerArgs:  append([]string{"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort)}, strings.Fields(cfg.managerArgs)...),
		Logf:         func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) },
	})
	if err != nil {
		return res, fmt.Errorf("start the local environment: %w", err)
	}
	defer func() {
		fmt.Println("  stopping the environment")
		if stopErr := env.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	// The manager is ready before its controller has listed the BatchJobs:
	// jobs created in between come with that first list, which the
	// controller's priority queue serves last, and the benchmark would
	// measure a manager restart instead of an apply to a running manager.
	if err := waitControllerStarted(ctx, env.ManagerLog, time.Minute); err != nil {
		return res, err
	}

	// The client-side rate limiter would pace this program, not the manager.
	restCfg := rest.CopyConfig(env.Config)
	restCfg.QPS, restCfg.Burst = -1, 0
	kc, err := client.NewWithWatch(restCfg, client.Options{Scheme: localenv.Scheme()})
	if err != nil {
		return res, err
	}
	tc, err := tclient.Dial(tclient.Options{HostPort: env.TemporalAddress, Namespace: env.TemporalNamespace, Logger: quietLogger{}})
	if err != nil {
		return res, fmt.Errorf("dial Temporal: %w", err)
	}
	defer tc.Close()

	slots := min(n*int(cfg.parallelism+1), 4000)
	w := worker.New(tc, taskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: slots,
		MaxConcurrentActivityTaskPollers:   8,
	})
	examples.Register(w)
	if err := w.Start(); err != nil {
		return res, fmt.Errorf("start the worker: %w", err)
	}
	defer w.Stop()
	fmt.Printf("  worker on task queue %q with %d activity slots\n", taskQueue, slots)

	trackCtx, stopTracking := context.WithCancel(ctx)
	defer stopTracking()
	tr := newTracker()
	go tr.run(trackCtx, kc, namespace, map[string]string{benchLabel: "true"})

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%04d", i)
	}

	// Create every job at once, as one kubectl apply of N objects would.
	created := time.Now()
	if err := forEach(ctx, names, 16, func(name string) error {
		return kc.Create(ctx, benchJob(name, cfg))
	}); err != nil {
		return res, fmt.Errorf("create the jobs: %w", err)
	}
	fmt.Printf("  created %d jobs in %s\n", n, time.Since(created).Round(time.Millisecond))
	waitCtx, cancelWait := context.WithTimeout(ctx, cfg.runningTimeout)
	lastReport := time.Now()
	for {
		running, last := tr.running()
		if running == n {
			res.allRunningIn = last.Sub(created)
			break
		}
		if time.Since(lastReport) >= 15*time.Second {
			fmt.Printf("  %d of %d Running after %s\n", running, n, time.Since(created).Round(time.Second))
			lastReport = time.Now()
		}
		if !sleep(waitCtx, 200*time.Millisecond) {
			res.allRunningIn = time.Since(created)
			break
		}
	}
	cancelWait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.running, _ = tr.running()
	fmt.Printf("  %d of %d Running %s after the first create call\n", res.running, n, res.allRunningIn.Round(time.Millisecond))

	// The window: manager CPU, reconciles, Temporal calls and BatchJob
	// writes, and the sampled jobs' workflow progress against their status.
	pid := env.ManagerPid()
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return res, err
	}
	met0, _ := scrapeController(ctx, metricsURL)
	tb := temporalbatch.NewClient(tc, "")
	// Lag and edits are measured on jobs that run: an edit of a job the
	// controller has not started yet would measure its start instead.
	runningNames := tr.runningNames()
	sampled := runningNames[:min(cfg.sample, len(runningNames))]
	edited := runningNames[min(cfg.sample, len(runningNames)):]
	if len(edited) < cfg.edits {
		edited = runningNames
	}
	edited = edited[:min(cfg.edits, len(edited))]
	tr.countWrites(true)
	start := time.Now()
	fmt.Printf("  measuring for %s\n", cfg.measure)
	wf, latencies, qerrs := sampleProgress(ctx, tb, tr, sampled, cfg.measure)
	res.window = time.Since(start)
	tr.countWrites(false)
	writes := tr.writes()
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return res, err
	}
	if env.ManagerPid() != pid {
		return res, fmt.Errorf("the manager restarted during the window (log: %s)", env.ManagerLog)
	}
	met1, metErr := scrapeController(ctx, metricsURL)
	if metErr != nil {
		fmt.Printf("  no controller metrics: %v\n", metErr)
	}
	running, _ := tr.running()
	res.cpuPerJobMin = perJobMinute(cpu1-cpu0, running, res.window)
	res.writesPerMin = perJobMinute(float64(writes), running, res.window)
	res.reconciles = perJobMinuteDeltas(met0.reconciles, met1.reconciles, running, res.window)
	res.temporalCalls = perJobMinuteDeltas(met0.temporalCalls, met1.temporalCalls, running, res.window)
	res.temporalFailures = perJobMinuteDeltas(met0.temporalFailures, met1.temporalFailures, running, res.window)
	if n := met1.reconcileCount - met0.reconcileCount; n > 0 {
		res.meanReconcile = time.Duration((met1.reconcileSeconds - met0.reconcileSeconds) / n * float64(time.Second))
	}
	if n := met1.queueCount - met0.queueCount; n > 0 {
		res.meanQueueWait = time.Duration((met1.queueSeconds - met0.queueSeconds) / n * float64(time.Second))
	}
	res.queueDepth = met1.depth
	for _, name := range sampled {
		lags, pending := statusLags(wf[name], tr.completedSince(name, start))
		res.lags = append(res.lags, lags...)
		res.lagsPending += pending
	}
	res.queryLatency, res.queryErrors = latencies, qerrs

	fmt.Printf("  editing spec.parallelism of %d running jobs\n", len(edited))
	res.edits, res.editsPending = editParallelism(ctx, kc, tr, edited, cfg)
	fmt.Println("  creating one more job while the others run")
	res.lateStart, res.lateStarted = startOneMore(ctx, kc, tr, cfg)
	if res.peakRSSKiB, err = peakRSS(pid); err != nil {
		return res, err
	}
	res.restarts = env.ManagerRestarts()

	fmt.Println("  deleting the jobs")
	deleted := time.Now()
	if err := kc.DeleteAllOf(ctx, &batchv1alpha1.BatchJob{}, client.InNamespace(namespace), client.MatchingLabels{benchLabel: "true"}); err != nil {
		return res, fmt.Errorf("delete the jobs: %w", err)
	}
	delCtx, cancelDel := context.WithTimeout(ctx, 3*time.Minute)
	for tr.present() > 0 && sleep(delCtx, 200*time.Millisecond) {
	}
	cancelDel()
	res.deletedIn, res.remaining = time.Since(deleted), tr.present()
	fmt.Printf("  deleted in %s, %d left\n", res.deletedIn.Round(time.Millisecond), res.remaining)

	if raw, err := os.ReadFile(env.ManagerLog); err == nil {
		var byMsg map[string]int
		res.errorLines, byMsg = reconcileErrors(string(raw))
		res.topErrors = topMessages(byMsg, 5)
	}
	return res, nil
}

// benchJob is one job of the benchmark: the synthetic processor on the shared
// task queue, no spec.worker, pages of pageSize × itemDelay.
func benchJob(name string, cfg config) *batchv1alpha1.BatchJob {
	args, _ := json.Marshal(map[string]any{"totalItems": cfg.items, "itemDelay": cfg.itemDelay.String()})
	p := cfg.parallelism
	return &batchv1alpha1.BatchJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{benchLabel: "true"}},
		Spec: batchv1alpha1.BatchJobSpec{
			TaskQueue: taskQueue,
			Processor: batchv1alpha1.ProcessorSpec{
				Name:     examples.NameSynthetic,
				PageSize: cfg.pageSize,
				Args:     &apiextensionsv1.JSON{Raw: args},
			},
			Parallelism: &p,
			// Deleting the jobs at the end should not wait for pages.
			CancellationPolicy: batchv1alpha1.CancellationTerminate,
		},
	}
}

// sampleProgress queries the sampled jobs' workflows every second for the
// window and returns each job's page counts as the workflow reported them
// (at the time the answer arrived), the query latencies and the failed
// queries.
func sampleProgress(ctx context.Context, tb *temporalbatch.Client, tr *tracker, names []string, window time.Duration) (map[string][]countAt, []time.Duration, int) {
	var mu sync.Mutex
	out := map[string][]countAt{}
	var latencies []time.Duration
	errs := 0
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var wg sync.WaitGroup
	for {
		for _, name := range names {
			job := tr.job(name)
			if job == nil || job.Status.Workflow == nil {
				continue
			}
			wg.Add(1)
			go func(name, id string) {
				defer wg.Done()
				qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
				defer qcancel()
				sent := time.Now()
				p, err := tb.Progress(qctx, id)
				at := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					return
				}
				latencies = append(latencies, at.Sub(sent))
				out[name] = append(out[name], countAt{At: at, Count: p.Pages.Completed})
			}(name, job.Status.Workflow.ID)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return out, latencies, errs
		case <-tick.C:
		}
	}
}

// editParallelism raises spec.parallelism of the jobs by one, all at once,
// and returns how long each took until status.parallelism.desired showed it
// with status.observedGeneration at the new generation.
func editParallelism(ctx context.Context, kc client.Client, tr *tracker, names []string, cfg config) ([]time.Duration, int) {
	want := cfg.parallelism + 1
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"parallelism":%d}}`, want)))
	var mu sync.Mutex
	var took []time.Duration
	pending := 0
	_ = forEach(ctx, names, len(names), func(name string) error {
		job := &batchv1alpha1.BatchJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
		began := time.Now()
		if err := kc.Patch(ctx, job, patch); err != nil {
			mu.Lock()
			pending++
			mu.Unlock()
			return nil
		}
		gen := job.Generation
		wctx, cancel := context.WithTimeout(ctx, cfg.editTimeout)
		defer cancel()
		for {
			if cur := tr.job(name); cur != nil && cur.Status.Parallelism.Desired == want && cur.Status.ObservedGeneration >= gen {
				mu.Lock()
				took = append(took, time.Since(began))
				mu.Unlock()
				return nil
			}
			if !sleep(wctx, 20*time.Millisecond) {
				mu.Lock()
				pending++
				mu.Unlock()
				return nil
			}
		}
	})
	return took, pending
}

// startOneMore creates one more job and returns how long it took to show
// Running: what a user applying a job to a busy manager waits.
func startOneMore(ctx context.Context, kc client.Client, tr *tracker, cfg config) (time.Duration, bool) {
	const name = "bench-late"
	began := time.Now()
	if err := kc.Create(ctx, benchJob(name, cfg)); err != nil {
		fmt.Printf("  create %s: %v\n", name, err)
		return 0, false
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.runningTimeout)
	defer cancel()
	for {
		if cur := tr.job(name); cur != nil && cur.Status.Phase == batchv1alpha1.PhaseRunning {
			return time.Since(began), true
		}
		if !sleep(wctx, 20*time.Millisecond) {
			return time.Since(began), false
		}
	}
}

// forEach runs fn for every name, at most parallel at once, and returns the
// first error.
func forEach(ctx context.Context, names []string, parallel int, fn func(string) error) error {
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(name string) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(name); err != nil {
				once.Do(func() { first = fmt.Errorf("%s: %w", name, err) })
			}
		}(name)
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// waitControllerStarted waits until the manager's log says the batchjob
// controller started its workers.
func waitControllerStarted(ctx context.Context, managerLog string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if raw, err := os.ReadFile(managerLog); err == nil && controllerStarted(string(raw)) {
			return nil
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("the batchjob controller did not start its workers within %s (log: %s)", timeout, managerLog)
		}
	}
}

func controllerStarted(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="Starting workers"`) && strings.Contains(line, "controller=batchjob") {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// cpuSeconds is a process's user and system CPU time, from /proc/<pid>/stat
// (clock ticks of 1/100 s, Linux's USER_HZ).
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime 14 and stime 15.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	return (utime + stime) / 100, nil
}

// peakRSS is a process's VmHWM in KiB.
func peakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// controllerMetrics are the manager's metrics that explain the batchjob
// controller's pace: reconciles by result, time spent reconciling and waiting
// in the workqueue, the queue's depth by priority, and the manager's Temporal
// calls (controller and orchestrator worker) by method and failed ones by
// "method code".
type controllerMetrics struct {
	reconciles       map[string]float64
	reconcileSeconds float64
	reconcileCount   float64
	queueSeconds     float64
	queueCount       float64
	depth            map[string]float64
	temporalCalls    map[string]float64
	temporalFailures map[string]float64
}

// scrapeController reads the manager's metrics endpoint.
func scrapeController(ctx context.Context, url string) (controllerMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return controllerMetrics{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return controllerMetrics{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return controllerMetrics{}, err
	}
	return parseControllerMetrics(string(body)), nil
}

// parseControllerMetrics picks the batchjob controller's series and the
// manager's Temporal call counters out of a Prometheus text exposition.
func parseControllerMetrics(text string) controllerMetrics {
	m := controllerMetrics{reconciles: map[string]float64{}, depth: map[string]float64{},
		temporalCalls: map[string]float64{}, temporalFailures: map[string]float64{}}
	for _, line := range strings.Split(text, "\n") {
		j := strings.LastIndexByte(line, ' ')
		if j < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			continue
		}
		name := line[:max(strings.IndexByte(line, '{'), 0)]
		switch name {
		case "temporal_batch_temporal_requests_total":
			m.temporalCalls[label(line, "method")] += v
			continue
		case "temporal_batch_temporal_request_failures_total":
			m.temporalFailures[label(line, "method")+" "+label(line, "code")] += v
			continue
		}
		if !strings.Contains(line, `controller="batchjob"`) {
			continue
		}
		switch name {
		case "controller_runtime_reconcile_total":
			m.reconciles[label(line, "result")] += v
		case "controller_runtime_reconcile_time_seconds_sum":
			m.reconcileSeconds += v
		case "controller_runtime_reconcile_time_seconds_count":
			m.reconcileCount += v
		case "workqueue_queue_duration_seconds_sum":
			m.queueSeconds += v
		case "workqueue_queue_duration_seconds_count":
			m.queueCount += v
		case "workqueue_depth":
			m.depth[label(line, "priority")] += v
		}
	}
	return m
}

// label is a label's value in a Prometheus sample line, "" if absent.
func label(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	return rest[:max(strings.IndexByte(rest, '"'), 0)]
}
