package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

// Jobs

var namespaces atomic.Int32

// newNamespace creates a namespace of the spec's own.
func newNamespace(prefix string) string {
	GinkgoHelper()
	name := fmt.Sprintf("%s-%d", prefix, namespaces.Add(1))
	Expect(k8s.Create(background, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// syntheticJob is a job of the synthetic processor.
func syntheticJob(ns, name string, args examples.SyntheticArgs) *batchv1alpha1.BatchJob {
	GinkgoHelper()
	raw, err := json.Marshal(args)
	Expect(err).NotTo(HaveOccurred())
	return newJob(ns, name, examples.NameSynthetic, raw)
}

// newJob is a job whose pages run in example-worker processes that the
// operator's worker Deployment asks for: 100 items a page, 4 pages in flight,
// 2 per process, and retries quick enough for a test.
func newJob(ns, name, processor string, args []byte) *batchv1alpha1.BatchJob {
	return &batchv1alpha1.BatchJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1alpha1.BatchJobSpec{
			TaskQueue: ns + "-" + name,
			Processor: batchv1alpha1.ProcessorSpec{
				Name:     processor,
				PageSize: 100,
				Args:     &apiextensionsv1.JSON{Raw: args},
			},
			Parallelism: ptr(int32(4)),
			Retry: batchv1alpha1.RetrySpec{
				InitialInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
				MaximumInterval: &metav1.Duration{Duration: 2 * time.Second},
			},
			Worker: &batchv1alpha1.WorkerSpec{
				PagesPerPod: 2,
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(15)),
					Containers: []corev1.Container{{
						Name:    "worker",
						Image:   "ghcr.io/temporal-batch/example-worker:latest",
						Command: []string{"example-worker"},
						// Pages in flight get this long after SIGTERM, inside
						// the pod's grace period.
						Env: []corev1.EnvVar{{Name: "TEMPORAL_BATCH_GRACE_PERIOD", Value: "10s"}},
					}},
				}},
			},
		},
	}
}

// create creates the job and, when the spec ends, shows it if the spec
// failed and deletes it, so that no job of a failed spec runs on.
func create(job *batchv1alpha1.BatchJob) {
	GinkgoHelper()
	Expect(k8s.Create(background, job)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			describeJob(job)
		}
		err := k8s.Delete(ctx, job)
		if apierrors.IsNotFound(err) {
			return
		}
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{}))
		}).WithTimeout(time.Minute).Should(BeTrue(), "job %s/%s was not deleted", job.Namespace, job.Name)
	}, NodeTimeout(90*time.Second))
}

func fetch(job *batchv1alpha1.BatchJob) (*batchv1alpha1.BatchJob, error) {
	var cur batchv1alpha1.BatchJob
	err := k8s.Get(background, client.ObjectKeyFromObject(job), &cur)
	return &cur, err
}

func get(job *batchv1alpha1.BatchJob) *batchv1alpha1.BatchJob {
	GinkgoHelper()
	cur, err := fetch(job)
	Expect(err).NotTo(HaveOccurred())
	return cur
}

// status returns a function for Eventually that reads one value of the job's status.
func status[T any](job *batchv1alpha1.BatchJob, field func(batchv1alpha1.BatchJobStatus) T) func() (T, error) {
	return func() (T, error) {
		cur, err := fetch(job)
		if err != nil {
			var zero T
			return zero, err
		}
		return field(cur.Status), nil
	}
}

func pagesCompleted(st batchv1alpha1.BatchJobStatus) int64 { return st.Pages.Completed }
func pagesInFlight(st batchv1alpha1.BatchJobStatus) int64  { return st.Pages.InFlight }

// update changes the spec, retrying on conflict as kubectl edit would.
func update(job *batchv1alpha1.BatchJob, mutate func(*batchv1alpha1.BatchJob)) {
	GinkgoHelper()
	Eventually(func() error {
		cur, err := fetch(job)
		if err != nil {
			return err
		}
		mutate(cur)
		return k8s.Update(background, cur)
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func conditionTrue(job *batchv1alpha1.BatchJob, typ string) bool {
	return meta.IsStatusConditionTrue(job.Status.Conditions, typ)
}

// waitComplete waits for the job's Complete condition and returns the job; a
// Failed condition ends the wait at once.
func waitComplete(job *batchv1alpha1.BatchJob, timeout time.Duration) *batchv1alpha1.BatchJob {
	GinkgoHelper()
	var done *batchv1alpha1.BatchJob
	Eventually(func(g Gomega) {
		cur, err := fetch(job)
		g.Expect(err).NotTo(HaveOccurred())
		if c := meta.FindStatusCondition(cur.Status.Conditions, batchv1alpha1.ConditionFailed); c != nil && c.Status == metav1.ConditionTrue {
			StopTrying(fmt.Sprintf("the job failed: %s: %s", c.Reason, c.Message)).Now()
		}
		g.Expect(conditionTrue(cur, batchv1alpha1.ConditionComplete)).To(BeTrue(),
			"phase %s, %d pages completed, %d in flight", cur.Status.Phase, cur.Status.Pages.Completed, cur.Status.Pages.InFlight)
		done = cur
	}).WithTimeout(timeout).WithPolling(500 * time.Millisecond).Should(Succeed())
	return done
}

// expectSucceeded checks the counters of a completed job.
func expectSucceeded(done *batchv1alpha1.BatchJob, itemsProcessed, itemsFailed, pages int64) {
	GinkgoHelper()
	st := done.Status
	Expect(st.Phase).To(Equal(batchv1alpha1.PhaseSucceeded))
	Expect(st.Items.Processed).To(Equal(itemsProcessed), "status.items.processed")
	Expect(st.Items.Failed).To(Equal(itemsFailed), "status.items.failed")
	Expect(st.Pages.Completed).To(Equal(pages), "status.pages.completed")
	Expect(st.Pages.Failed).To(BeZero(), "status.pages.failed")
	Expect(st.Pages.Stuck).To(BeZero(), "status.pages.stuck")
	Expect(st.Pages.InFlight).To(BeZero(), "status.pages.inFlight")
	Expect(st.CompletionTime).NotTo(BeNil())
	Expect(st.ObservedGeneration).To(Equal(done.Generation))
}

// describeJob writes the job's status and the end of its workers' logs, for
// a failed spec.
func describeJob(job *batchv1alpha1.BatchJob) {
	cur, err := fetch(job)
	if err != nil {
		GinkgoWriter.Printf("job %s/%s: %v\n", job.Namespace, job.Name, err)
	} else {
		raw, _ := yaml.Marshal(cur.Status)
		GinkgoWriter.Printf("job %s/%s status:\n%s\n", job.Namespace, job.Name, raw)
	}
	logs, _ := filepath.Glob(filepath.Join(env.StateDir, "pods", fmt.Sprintf("%s.%s-workers-*.log", job.Namespace, job.Name)))
	for _, log := range logs {
		GinkgoWriter.Printf("--- %s (end)\n%s\n", log, tail(log, 15))
	}
	GinkgoWriter.Printf("--- %s (end)\n%s\n", env.ManagerLog, tail(env.ManagerLog, 30))
}

func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// The ledger: the synthetic processor appends "<item> <page> <attempt>" for
// every item a page attempt processed.

type ledgerLine struct {
	item, page int64
	attempt    int32
}

func readLedger(path string) []ledgerLine {
	GinkgoHelper()
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	var lines []ledgerLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l ledgerLine
		_, err := fmt.Sscanf(sc.Text(), "%d %d %d", &l.item, &l.page, &l.attempt)
		Expect(err).NotTo(HaveOccurred(), "ledger line %q", sc.Text())
		lines = append(lines, l)
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	return lines
}

// ledgerLen counts the ledger's lines; 0 before the first page wrote any.
func ledgerLen(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(raw), "\n")
}

// expectEveryItem checks that every item 0..total-1 except the failed ones is
// in the ledger, from the page that holds it (page item/pageSize; pageSize 0
// for a job of several chains, whose page numbers say nothing of the items),
// and that an item appears twice only from two attempts of one page (an
// attempt that processed its items but whose completion was lost is run
// again: at-least-once delivery).
func expectEveryItem(lines []ledgerLine, total, pageSize int64, failed ...int64) {
	GinkgoHelper()
	seen := make(map[int64][]ledgerLine, total)
	var problems []string
	for _, l := range lines {
		if l.item < 0 || l.item >= total || (pageSize > 0 && l.page != l.item/pageSize) {
			problems = append(problems, fmt.Sprintf("item %d from page %d", l.item, l.page))
		}
		for _, s := range seen[l.item] {
			if s.page != l.page || s.attempt == l.attempt {
				problems = append(problems, fmt.Sprintf("item %d from page %d attempt %d and page %d attempt %d", l.item, s.page, s.attempt, l.page, l.attempt))
			}
		}
		seen[l.item] = append(seen[l.item], l)
	}
	isFailed := map[int64]bool{}
	for _, f := range failed {
		isFailed[f] = true
	}
	var missing []int64
	for item := range total {
		if _, ok := seen[item]; ok == isFailed[item] {
			missing = append(missing, item)
		}
	}
	Expect(problems).To(BeEmpty(), "unexpected ledger lines")
	Expect(missing).To(BeEmpty(), "items missing from the ledger, or failed items in it")
}

// Worker processes

// workerProcesses lists the live OS processes running the job's workers:
// example-worker processes whose environment names the job.
func workerProcesses(job *batchv1alpha1.BatchJob) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := "TEMPORAL_BATCH_JOB=" + job.Namespace + "/" + job.Name
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if filepath.Base(argv0) != "example-worker" || !localenv.ProcessAlive(pid) {
			continue
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(environ), "\x00") {
			if kv == want {
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids
}

// runnerProcesses lists the processes the local Deployment runner runs for
// the job's worker Deployment.
func runnerProcesses(job *batchv1alpha1.BatchJob) []int {
	var pids []int
	for _, pid := range env.Runner.Processes(types.NamespacedName{Namespace: job.Namespace, Name: job.Name + "-workers"}) {
		if pid != 0 {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func workerDeploymentGone(job *batchv1alpha1.BatchJob) bool {
	err := k8s.Get(background, client.ObjectKey{Namespace: job.Namespace, Name: job.Name + "-workers"}, &appsv1.Deployment{})
	return apierrors.IsNotFound(err)
}

// Temporal

func describeWorkflow(id string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	ctx, cancel := context.WithTimeout(background, 10*time.Second)
	defer cancel()
	return tc.DescribeWorkflowExecution(ctx, id, "")
}

// pendingPages are the page activities Temporal holds for the workflow:
// scheduled, running, or waiting for a retry.
func pendingPages(id string) ([]*workflowpb.PendingActivityInfo, error) {
	desc, err := describeWorkflow(id)
	if err != nil {
		return nil, err
	}
	return desc.GetPendingActivities(), nil
}

// pageOf is the page number of an orchestrator activity ID, page-<n>-<seq>.
func pageOf(activityID string) int64 {
	parts := strings.Split(activityID, "-")
	if len(parts) != 3 || parts[0] != "page" {
		return -1
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func workflowStatus(id string) (enumspb.WorkflowExecutionStatus, error) {
	desc, err := describeWorkflow(id)
	if err != nil {
		return 0, err
	}
	return desc.GetWorkflowExecutionInfo().GetStatus(), nil
}

// executions counts the runs of a workflow ID that Temporal's visibility lists.
func executions(id string) (int, error) {
	ctx, cancel := context.WithTimeout(background, 10*time.Second)
	defer cancel()
	resp, err := tc.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: env.TemporalNamespace, Query: fmt.Sprintf("WorkflowId = '%s'", id),
	})
	if err != nil {
		return 0, err
	}
	return len(resp.GetExecutions()), nil
}

// startedAttempt is the attempt that completed a page's activity, with the
// failure of the attempt before it, and when it started.
type startedAttempt struct {
	*historypb.ActivityTaskStartedEventAttributes
	at time.Time
}

// pageAttempts returns, from a run's history, the attempt that completed each
// page's activity.
func pageAttempts(id, runID string) map[int64]startedAttempt {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(background, time.Minute)
	defer cancel()
	scheduled := map[int64]int64{}
	started := map[int64]startedAttempt{}
	it := tc.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		Expect(err).NotTo(HaveOccurred())
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = pageOf(a.GetActivityId())
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			started[scheduled[a.GetScheduledEventId()]] = startedAttempt{a, ev.GetEventTime().AsTime()}
		}
	}
	return started
}

// Sampling

// sampler calls a function every interval in the background until stopped,
// for properties that must hold all along rather than eventually.
type sampler struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	samples  int
	problems []string
}

func sample(every time.Duration, check func(s *sampler)) *sampler {
	s := &sampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			check(s)
			s.mu.Lock()
			s.samples++
			s.mu.Unlock()
			select {
			case <-s.stopCh:
				return
			case <-t.C:
			}
		}
	}()
	DeferCleanup(s.stop)
	return s
}

func (s *sampler) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < 20 {
		s.problems = append(s.problems, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// stop stops the sampling and returns how many samples were taken and what
// went wrong.
func (s *sampler) stop() (int, []string) {
	s.stopOnce.Do(func() { close(s.stopCh) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.problems
}

func ptr[T any](v T) *T { return &v }
