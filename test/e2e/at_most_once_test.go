package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

var _ = Describe("At-most-once delivery", func() {
	It("drains the workers a scale-down stops: their pages finish, every item once", func() {
		ns := newNamespace("atmostonce-scale-down")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 16 pages of 3 s each (30 items of 100 ms), 6 at a time in 3 worker
		// processes; a page whose worker stopped it would fail the job.
		job := syntheticJob(ns, "drained", examples.SyntheticArgs{TotalItems: 480, ItemDelay: "100ms", Ledger: ledger})
		job.Spec.Processor.PageSize = 30
		job.Spec.Processor.Delivery = batchv1alpha1.DeliveryAtMostOnce
		job.Spec.Processor.Timeout = &metav1.Duration{Duration: 30 * time.Second}
		job.Spec.Parallelism = ptr(int32(6))
		// The grace periods are the operator's: the worker's the page
		// timeout, the pod's 10 s longer.
		pod := &job.Spec.Worker.Template.Spec
		pod.TerminationGracePeriodSeconds = nil
		pod.Containers[0].Env = nil
		create(job)

		key := types.NamespacedName{Namespace: ns, Name: job.Name + "-workers"}
		var d appsv1.Deployment
		Eventually(func() error { return k8s.Get(background, key, &d) }).Should(Succeed())
		Expect(d.Spec.Template.Spec.TerminationGracePeriodSeconds).To(HaveValue(BeEquivalentTo(40)), "the pod's grace period")
		Expect(d.Spec.Template.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: processor.EnvGracePeriod, Value: "30s"}), "the worker's grace period")
		Eventually(status(job, func(st batchv1alpha1.BatchJobStatus) *batchv1alpha1.WorkflowRef { return st.Workflow })).ShouldNot(BeNil())
		id := get(job).Status.Workflow.ID

		By("lowering the parallelism to 2 while the worker processes it stops run pages")
		// The runner stops the replicas of the highest indexes. A page that
		// started less than a second before the edit has 2 s left when
		// the SIGTERM comes (the manager and the runner take well under a
		// second to pass the edit on).
		var doomed []int
		var draining map[int64]int
		var fresh []int64
		Eventually(func(g Gomega) {
			pids := env.Runner.Processes(key)
			g.Expect(pids).To(HaveLen(3))
			g.Expect(pids).NotTo(ContainElement(0))
			doomed = pids[1:]
			pending, err := pendingPages(id)
			g.Expect(err).NotTo(HaveOccurred())
			draining, fresh = map[int64]int{}, nil
			busy := map[int]bool{}
			for _, p := range pending {
				if p.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
					continue
				}
				for _, pid := range doomed {
					if strings.HasPrefix(p.GetLastWorkerIdentity(), strconv.Itoa(pid)+"@") {
						page := pageOf(p.GetActivityId())
						draining[page] = pid
						busy[pid] = true
						if time.Since(p.GetLastStartedTime().AsTime()) < time.Second {
							fresh = append(fresh, page)
						}
					}
				}
			}
			g.Expect(busy).To(HaveLen(len(doomed)), "every worker process to stop runs a page")
			g.Expect(fresh).NotTo(BeEmpty(), "a page just started on a worker process to stop")
		}).WithTimeout(time.Minute).WithPolling(50 * time.Millisecond).Should(Succeed())
		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr(int32(2)) })
		lowered := time.Now()
		GinkgoWriter.Printf("parallelism lowered while worker processes %v ran pages %v (%v started under 1 s before)\n", doomed, pagesOf(draining), fresh)

		By("waiting for the stopped worker processes to finish their pages and exit by themselves")
		Eventually(func(g Gomega) {
			for _, pid := range doomed {
				g.Expect(localenv.ProcessAlive(pid)).To(BeFalse(), "worker process %d", pid)
			}
		}).WithTimeout(time.Minute).Should(Succeed())
		drained := time.Since(lowered)
		Expect(runnerProcesses(job)).To(HaveLen(1))
		for i := 1; i <= len(doomed); i++ {
			log := filepath.Join(env.StateDir, "pods", fmt.Sprintf("%s.%s-%d.log", ns, key.Name, i))
			// The runner notes the exit once it has reaped the process.
			Eventually(tail).WithArguments(log, 1).Should(HaveSuffix("stopped (exit status 0)"), "replica %d was killed rather than drained: %s", i, log)
		}
		GinkgoWriter.Printf("the stopped worker processes exited %.1fs after the edit\n", drained.Seconds())

		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 480, 0, 16)
		expectExactly(readLedger(ledger), 480, 30)

		By("checking in the workflow history that the stopped workers completed their pages")
		started := pageAttempts(id, done.Status.Workflow.RunID)
		for page, pid := range draining {
			a, ok := started[page]
			Expect(ok).To(BeTrue(), "no completed attempt of page %d in the history", page)
			Expect(a.GetAttempt()).To(BeEquivalentTo(1), "page %d", page)
			Expect(a.GetIdentity()).To(HavePrefix(strconv.Itoa(pid)+"@"), "page %d was completed by another worker than the one stopped while running it", page)
		}
	})

	It("fails a page whose worker process is killed mid-page with its outcome unknown; a plain re-drive does not run it again", func() {
		ns := newNamespace("atmostonce-kill")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 32 pages of 2 s each (40 items of 50 ms), 4 at a time in one
		// worker process; the first page that fails for good fails the job.
		job := syntheticJob(ns, "unrepeated", examples.SyntheticArgs{TotalItems: 1280, ItemDelay: "50ms", Ledger: ledger})
		job.Spec.Processor.PageSize = 40
		job.Spec.Processor.Delivery = batchv1alpha1.DeliveryAtMostOnce
		job.Spec.Processor.HeartbeatTimeout = &metav1.Duration{Duration: 5 * time.Second}
		job.Spec.Worker.PagesPerPod = 4
		job.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromInt32(0))}
		create(job)
		Eventually(workerProcesses).WithArguments(job).Should(HaveLen(1))
		Eventually(status(job, pagesCompleted)).Should(BeNumerically(">=", 2))
		id := get(job).Status.Workflow.ID

		By("killing the worker process while it is in the middle of a page")
		// A page that started between 0.3 and 1.2 s ago has processed some
		// of its items and has at least 0.8 s of its 2 s left.
		pid, killed, running := killMidPage(job, id)
		GinkgoWriter.Printf("killed worker process %d running pages %v, in the middle of pages %v\n", pid, running, killed)

		failed := waitFailed(job, 3*time.Minute)
		c := metaCondition(failed, batchv1alpha1.ConditionFailed)
		Expect(c.Reason).To(Equal(batchv1alpha1.ReasonPagesFailed))
		Expect(c.Message).To(ContainSubstring("--include-unknown"), "the message says how to re-drive the pages whose outcome is unknown")
		Expect(conditionTrue(failed, batchv1alpha1.ConditionComplete)).To(BeFalse())
		// The first killed page whose heartbeat times out fails the job;
		// the pages still in flight then are cancelled. Under AtMostOnce
		// every one of them may have processed some of its items.
		Expect(failed.Status.Pages.Failed).To(BeNumerically(">=", 1), "status.pages.failed")
		Expect(failed.Status.Pages.Unknown).To(Equal(failed.Status.Pages.Failed), "status.pages.unknown: every failed page's outcome is unknown")
		var timedOut []int64
		for _, f := range failed.Status.Failures.Recent {
			if f.Type == "TimeoutHeartbeat" {
				timedOut = append(timedOut, f.Page)
			}
		}
		Expect(timedOut).NotTo(BeEmpty(), "status.failures.recent has no heartbeat timeout")
		Expect(running).To(ContainElements(timedOut), "status.failures.recent names a page the killed process did not run")
		Eventually(workerProcesses).WithArguments(job).Should(BeEmpty())

		By("checking the ledger: no item twice, nothing from the killed pages")
		// The synthetic processor writes a page's lines when it ends: a
		// killed attempt leaves none, and one that ran again would.
		lines := readLedger(ledger)
		expectAtMostOnce(lines, 1280, 40)
		perPage := map[int64]int{}
		for _, l := range lines {
			perPage[l.page]++
		}
		for _, page := range append(killed, timedOut...) {
			Expect(perPage[page]).To(BeZero(), "ledger lines of killed page %d: it ran again", page)
		}
		Expect(int64(len(lines))).To(BeNumerically(">=", failed.Status.Items.Processed), "the ledger lacks items status counts")

		By("re-driving without --include-unknown")
		update(job, func(j *batchv1alpha1.BatchJob) {
			if j.Annotations == nil {
				j.Annotations = map[string]string{}
			}
			j.Annotations[batchv1alpha1.AnnotationRedrive] = "plain"
		})
		// The pages that never started run; those of unknown outcome stay
		// failed, and so does the job.
		var again *batchv1alpha1.BatchJob
		Eventually(func(g Gomega) {
			again = get(job)
			g.Expect(again.Status.LastRedrive).To(Equal("plain"))
			g.Expect(conditionTrue(again, batchv1alpha1.ConditionFailed)).To(BeTrue(), "phase %s, %d pages completed", again.Status.Phase, again.Status.Pages.Completed)
			g.Expect(again.Status.Pages.Completed + again.Status.Pages.Failed).To(BeEquivalentTo(32))
		}).WithTimeout(3 * time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
		st := again.Status
		Expect(metaCondition(again, batchv1alpha1.ConditionFailed).Reason).To(Equal(batchv1alpha1.ReasonPagesFailed))
		Expect(conditionTrue(again, batchv1alpha1.ConditionComplete)).To(BeFalse())
		Expect(st.Pages.Unknown).To(Equal(failed.Status.Pages.Unknown), "status.pages.unknown changed: a page of unknown outcome ran again")
		Expect(st.Pages.Failed).To(Equal(st.Pages.Unknown))
		Expect(st.Pages.Completed).To(BeNumerically(">", failed.Status.Pages.Completed), "the re-drive ran nothing")
		Expect(st.Items.Processed).To(Equal(40*st.Pages.Completed), "status.items.processed")
		Eventually(workerProcesses).WithArguments(job).Should(BeEmpty())

		By("checking the ledger again: still no item twice, nothing from the killed pages, every completed page in full")
		lines = readLedger(ledger)
		expectAtMostOnce(lines, 1280, 40)
		perPage = map[int64]int{}
		for _, l := range lines {
			perPage[l.page]++
		}
		for _, page := range append(killed, timedOut...) {
			Expect(perPage[page]).To(BeZero(), "ledger lines of killed page %d: the re-drive ran it again", page)
		}
		full := 0
		for _, n := range perPage {
			if n == 40 {
				full++
			}
		}
		// A page cancelled in flight may have finished its items before it
		// heard of the cancellation: its outcome is unknown, not nothing.
		Expect(full).To(BeNumerically(">=", st.Pages.Completed), "pages with every item in the ledger")
		Expect(full).To(BeNumerically("<=", st.Pages.Completed+st.Pages.Unknown), "pages with every item in the ledger")
	})
})

// killMidPage SIGKILLs the job's only worker process while Temporal shows
// it running a page's first attempt that started 0.3-1.2 s before, and
// returns the process, those pages, and every page it ran.
func killMidPage(job *batchv1alpha1.BatchJob, id string) (pid int, killed, running []int64) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		pids := workerProcesses(job)
		g.Expect(pids).To(HaveLen(1))
		pid = pids[0]
		pending, err := pendingPages(id)
		g.Expect(err).NotTo(HaveOccurred())
		killed, running = nil, nil
		for _, p := range pending {
			if p.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED || !strings.HasPrefix(p.GetLastWorkerIdentity(), strconv.Itoa(pid)+"@") {
				continue
			}
			running = append(running, pageOf(p.GetActivityId()))
			since := time.Since(p.GetLastStartedTime().AsTime())
			if p.GetAttempt() == 1 && since > 300*time.Millisecond && since < 1200*time.Millisecond {
				killed = append(killed, pageOf(p.GetActivityId()))
			}
		}
		g.Expect(killed).NotTo(BeEmpty())
	}).WithTimeout(time.Minute).WithPolling(50 * time.Millisecond).Should(Succeed())
	Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
	return pid, killed, running
}

// expectAtMostOnce checks that no item is in the ledger twice, and that each
// comes from the page that holds it.
func expectAtMostOnce(lines []ledgerLine, n, pageSize int64) {
	GinkgoHelper()
	count := map[int64]int{}
	var problems []string
	for _, l := range lines {
		if l.item < 0 || l.item >= n || l.page != l.item/pageSize {
			problems = append(problems, fmt.Sprintf("item %d from page %d attempt %d", l.item, l.page, l.attempt))
		}
		if count[l.item]++; count[l.item] == 2 {
			problems = append(problems, fmt.Sprintf("item %d twice", l.item))
		}
	}
	Expect(problems).To(BeEmpty(), "unexpected ledger lines")
}

// pagesOf lists the pages of a page-to-process map, in order.
func pagesOf(m map[int64]int) []int64 {
	pages := make([]int64, 0, len(m))
	for p := range m {
		pages = append(pages, p)
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i] < pages[j] })
	return pages
}
