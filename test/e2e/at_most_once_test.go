package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
			Expect(tail(log, 1)).To(HaveSuffix("stopped (exit status 0)"), "replica %d was killed rather than drained: %s", i, log)
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
})

// pagesOf lists the pages of a page-to-process map, in order.
func pagesOf(m map[int64]int) []int64 {
	pages := make([]int64, 0, len(m))
	for p := range m {
		pages = append(pages, p)
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i] < pages[j] })
	return pages
}
