// Command demo runs a synthetic BatchJob end to end on this machine and shows
// its progress live: a local control plane (etcd, kube-apiserver), a Temporal
// dev server, the real manager binary, and worker processes that the local
// Deployment runner starts as the operator scales the worker Deployment.
// Midway it raises the job's parallelism, as a user would with kubectl. It
// ends with a short report, stops everything and exits 0 when the job is
// Complete, 1 when it failed, 2 on timeout or error.
//
// `make demo` builds what it needs and runs it. Usage:
//
//	go run ./hack/demo [-items 50000] [-item-delay 2ms] [-raise-to 12] [-timeout 10m]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

const samplePath = "config/samples/batch_v1alpha1_batchjob_synthetic.yaml"

// config is the demo job's size and pace.
type config struct {
	items       int64
	pageSize    int32
	itemDelay   time.Duration
	parallelism int32
	raiseTo     int32
	raiseAt     float64
	rampFrom    int32
	rampStep    int32
	rampEvery   time.Duration
	pagesPerPod int32
}

func main() {
	os.Exit(run())
}

func run() int {
	var cfg config
	var timeout time.Duration
	var stateDir string
	flag.Int64Var(&cfg.items, "items", 50000, "items in the synthetic data set")
	pageSize := flag.Int("page-size", 200, "items per page")
	flag.DurationVar(&cfg.itemDelay, "item-delay", 2*time.Millisecond, "simulated work per item")
	parallelism := flag.Int("parallelism", 8, "pages in flight at the start")
	raiseTo := flag.Int("raise-to", 12, "parallelism to raise to midway; 0 keeps it")
	flag.Float64Var(&cfg.raiseAt, "raise-at", 0.4, "share of the items done when the parallelism is raised")
	flag.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.StringVar(&stateDir, "state-dir", "", "state and logs (default .local/demo of the repository); wiped at the start")
	flag.Parse()
	cfg.pageSize, cfg.parallelism, cfg.raiseTo = int32(*pageSize), int32(*parallelism), int32(*raiseTo)
	cfg.rampFrom, cfg.rampStep, cfg.rampEvery, cfg.pagesPerPod = min(2, cfg.parallelism), 2, 3*time.Second, 4

	root, err := localenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	if stateDir == "" {
		stateDir = filepath.Join(root, ".local", "demo")
	}

	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(sigCtx, timeout)
	defer cancel()
	began := time.Now()

	fmt.Printf("Temporal Batch demo: %s synthetic items on a local control plane, Temporal dev server and operator\n", count(cfg.items))
	env, err := localenv.Start(ctx, localenv.Options{
		RepoRoot: root,
		StateDir: stateDir,
		Fresh:    true,
		Logf:     func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) },
	})
	if err != nil {
		return fail(sigCtx, ctx, timeout, fmt.Errorf("start the local environment: %w", err))
	}
	code := demo(ctx, env, root, cfg)
	switch {
	case sigCtx.Err() != nil:
		fmt.Println("Interrupted.")
		code = 130
	case ctx.Err() != nil:
		fmt.Printf("demo timed out after %s: the job did not finish. Logs: %s\n", timeout, env.LogDir)
		code = 2
	}
	stopSignals()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	fmt.Println("Shutting down")
	stopped := time.Now()
	if err := env.StopUnlessHurried(sigs, func() { fmt.Println("Killing the worker processes and the manager") }); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		code = max(code, 2)
	}
	fmt.Printf("Stopped everything in %.1fs; the demo took %.0fs in all.\n", time.Since(stopped).Seconds(), time.Since(began).Seconds())
	return code
}

func fail(sigCtx, ctx context.Context, timeout time.Duration, err error) int {
	switch {
	case sigCtx.Err() != nil:
		fmt.Println("Interrupted.")
		return 130
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		fmt.Fprintf(os.Stderr, "demo timed out after %s: %v\n", timeout, err)
	default:
		fmt.Fprintln(os.Stderr, "demo:", err)
	}
	return 2
}

// demo applies the job, shows its progress and reports; it returns the exit
// code. The caller stops the environment.
func demo(ctx context.Context, env *localenv.Env, root string, cfg config) int {
	job, source, err := demoJob(root, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	kubectl := fmt.Sprintf("%s --kubeconfig %s", rel(root, env.Kubectl), rel(root, env.Kubeconfig))
	fmt.Printf("While it runs, in another terminal: %s get batchjobs -w\n", kubectl)
	if err := env.Client.Create(ctx, job); err != nil {
		fmt.Fprintln(os.Stderr, "demo: apply the BatchJob:", err)
		return 2
	}
	applied := time.Now()
	fmt.Printf("Applied BatchJob %s/%s (%s): %s items in pages of %d, parallelism %d ramping up from %d by %d every %s, %d pages per worker process\n",
		job.Namespace, job.Name, source, count(cfg.items), cfg.pageSize, cfg.parallelism, cfg.rampFrom, cfg.rampStep, cfg.rampEvery, cfg.pagesPerPod)

	key := client.ObjectKeyFromObject(job)
	scale := fmt.Sprintf("kubectl batch scale %s --parallelism %d", job.Name, cfg.raiseTo)
	if cfg.raiseTo > cfg.parallelism {
		fmt.Printf("At %.0f%% of the items the demo raises the parallelism to %d, as `%s` would; the operator scales the workers to match.\n", 100*cfg.raiseAt, cfg.raiseTo, scale)
	}
	fmt.Printf("Live progress: kubectl batch watch %s\n\n", job.Name)

	// The plugin's watch view shows the run; meanwhile the demo steers the
	// job and keeps its notes for after the view closes.
	notes := make(chan string, 4)
	steerCtx, stopSteering := context.WithCancel(ctx)
	defer stopSteering()
	go steer(steerCtx, env, key, cfg, notes)

	watch := exec.CommandContext(ctx, filepath.Join(root, "bin", "kubectl-batch"),
		"--kubeconfig", env.Kubeconfig, "-n", job.Namespace, "watch", job.Name)
	watch.Stdout, watch.Stderr = os.Stdout, os.Stderr
	watchErr := watch.Run()
	stopSteering()
	close(notes)
	fmt.Println()
	for n := range notes {
		fmt.Println(n)
	}

	var cur batchv1alpha1.BatchJob
	if err := env.Client.Get(ctx, key, &cur); err != nil {
		fmt.Fprintln(os.Stderr, "demo: read the job:", err)
		return 2
	}
	if cur.Status.ObservedGeneration == 0 {
		fmt.Printf("The operator never wrote the job's status. Its last error (%s):\n  %s\n", rel(root, env.ManagerLog), lastError(env.ManagerLog))
	}
	switch {
	case meta.IsStatusConditionTrue(cur.Status.Conditions, batchv1alpha1.ConditionComplete):
		report(&cur, cfg, time.Since(applied))
		waitWorkersGone(ctx, env)
		return 0
	case cur.Status.Phase == batchv1alpha1.PhaseFailed:
		report(&cur, cfg, time.Since(applied))
		return 1
	}
	fmt.Fprintln(os.Stderr, "demo: the watch ended before the job finished:", watchErr)
	return 2
}

// steer raises the parallelism once the job is far enough along.
func steer(ctx context.Context, env *localenv.Env, key client.ObjectKey, cfg config, notes chan<- string) {
	if cfg.raiseTo <= cfg.parallelism {
		return
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var cur batchv1alpha1.BatchJob
		if err := env.Client.Get(ctx, key, &cur); err != nil {
			continue
		}
		done := float64(cur.Status.Items.Processed+cur.Status.Items.Failed) / float64(max(cfg.items, 1))
		if done < cfg.raiseAt {
			continue
		}
		patch := fmt.Sprintf(`{"spec":{"parallelism":%d}}`, cfg.raiseTo)
		if err := env.Client.Patch(ctx, &cur, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			notes <- fmt.Sprintf("Could not raise the parallelism: %v", err)
		} else {
			notes <- fmt.Sprintf("At %.0f%% the demo raised spec.parallelism from %d to %d.", 100*done, cfg.parallelism, cfg.raiseTo)
		}
		return
	}
}

// demoJob is the repository's synthetic sample with the demo's size and
// pace, or an equivalent job when the sample is missing or runs something
// else.
func demoJob(root string, cfg config) (*batchv1alpha1.BatchJob, string, error) {
	job, source := sampleJob(filepath.Join(root, samplePath)), samplePath
	if job == nil {
		job, source = inlineJob(), "built in"
	}
	if job.Namespace == "" {
		job.Namespace = "default"
	}
	args := map[string]any{}
	if job.Spec.Processor.Args != nil {
		if err := json.Unmarshal(job.Spec.Processor.Args.Raw, &args); err != nil {
			return nil, "", fmt.Errorf("%s: spec.processor.args: %w", source, err)
		}
	}
	args["totalItems"] = cfg.items
	args["itemDelay"] = cfg.itemDelay.String()
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, "", err
	}
	job.Spec.Processor.Args = &apiextensionsv1.JSON{Raw: raw}
	job.Spec.Processor.PageSize = cfg.pageSize
	job.Spec.Parallelism = &cfg.parallelism
	job.Spec.RampUp = &batchv1alpha1.RampUpSpec{From: cfg.rampFrom, Step: cfg.rampStep, Every: metav1.Duration{Duration: cfg.rampEvery}}
	job.Spec.Worker.PagesPerPod = cfg.pagesPerPod
	return job, source, nil
}

// sampleJob reads the synthetic sample; nil unless it runs the synthetic
// processor with example-worker.
func sampleJob(path string) *batchv1alpha1.BatchJob {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var job batchv1alpha1.BatchJob
	if err := yaml.UnmarshalStrict(raw, &job); err != nil {
		return nil
	}
	w := job.Spec.Worker
	if job.Spec.Processor.Name != "synthetic" || w == nil || len(w.Template.Spec.Containers) == 0 {
		return nil
	}
	cmd := w.Template.Spec.Containers[0].Command
	if len(cmd) == 0 || filepath.Base(cmd[0]) != "example-worker" {
		return nil
	}
	return &job
}

func inlineJob() *batchv1alpha1.BatchJob {
	return &batchv1alpha1.BatchJob{
		ObjectMeta: metav1.ObjectMeta{Name: "synthetic", Namespace: "default"},
		Spec: batchv1alpha1.BatchJobSpec{
			TaskQueue: "synthetic",
			Processor: batchv1alpha1.ProcessorSpec{
				Name: "synthetic",
				Args: &apiextensionsv1.JSON{Raw: []byte(`{"failItems": {"4242": "InvalidRecord"}}`)},
			},
			Retry:         batchv1alpha1.RetrySpec{NonRetryableErrorTypes: []string{"InvalidRecord"}},
			FailurePolicy: &batchv1alpha1.FailurePolicySpec{Handler: "RecordFailures"},
			Worker: &batchv1alpha1.WorkerSpec{
				Template: exampleWorkerTemplate(),
			},
		},
	}
}

func exampleWorkerTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": "example-worker"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:    "worker",
			Image:   "ghcr.io/temporal-batch/example-worker:latest",
			Command: []string{"example-worker"},
		}}},
	}
}

// report prints the outcome of the job.
func report(job *batchv1alpha1.BatchJob, cfg config, elapsed time.Duration) {
	st := job.Status
	outcome := "Complete"
	if c := meta.FindStatusCondition(st.Conditions, batchv1alpha1.ConditionFailed); c != nil && c.Status == metav1.ConditionTrue {
		outcome = fmt.Sprintf("Failed (%s: %s)", c.Reason, c.Message)
	}
	secs := elapsed.Seconds()
	fmt.Println()
	fmt.Printf("BatchJob %s/%s: %s\n", job.Namespace, job.Name, outcome)
	fmt.Printf("  items        %s processed, %s failed, of %s\n", count(st.Items.Processed), count(st.Items.Failed), count(cfg.items))
	fmt.Printf("  pages        %s completed, %d failed, %d stuck\n", count(st.Pages.Completed), st.Pages.Failed, st.Pages.Stuck)
	fmt.Printf("  elapsed      %.1fs from apply to %s\n", secs, strings.Fields(outcome)[0])
	fmt.Printf("  throughput   %s items/s, %.1f pages/s\n", count(int64(float64(st.Items.Processed)/secs+0.5)), float64(st.Pages.Completed)/secs)
	fmt.Printf("  parallelism  %d at most in flight (asked: %d, then %d)\n", st.Parallelism.MaxAchieved, cfg.parallelism, max(cfg.raiseTo, cfg.parallelism))
	fmt.Printf("  failures     %s\n", failuresByType(st.Failures))
}

func failuresByType(f *batchv1alpha1.FailureStatus) string {
	if f == nil || len(f.ByType) == 0 {
		return "none"
	}
	types := make([]string, 0, len(f.ByType))
	for t := range f.ByType {
		types = append(types, t)
	}
	sort.Strings(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s: %d", t, f.ByType[t])
	}
	return strings.Join(parts, ", ")
}

// waitWorkersGone shows the operator scaling the finished job's workers to
// zero; it gives up quietly after a while, as shutdown stops them anyway.
func waitWorkersGone(ctx context.Context, env *localenv.Env) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	began := time.Now()
	for env.Runner.Running() > 0 {
		select {
		case <-ctx.Done():
			fmt.Printf("  workers      %d worker processes still running\n", env.Runner.Running())
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("  workers      scaled to 0 by the operator, processes gone %.1fs after the report\n", time.Since(began).Seconds())
}

// lastError is the last error line of a log, shortened.
func lastError(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	last := "none"
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "level=ERROR") {
			last = line
		}
	}
	if len(last) > 400 {
		last = last[:400] + "..."
	}
	return last
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
