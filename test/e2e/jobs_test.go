package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	workflowpb "go.temporal.io/api/workflow/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
)

var _ = Describe("A synthetic job", func() {
	It("processes 20,000 items: every item in the ledger, exact counters", func() {
		ns := newNamespace("twenty-thousand")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "items", examples.SyntheticArgs{TotalItems: 20000, Ledger: ledger})
		job.Spec.Processor.PageSize = 200
		job.Spec.Parallelism = ptr(int32(8))
		job.Spec.Worker.PagesPerPod = 4
		create(job)

		By("running two worker processes for 8 pages in flight, 4 each")
		Eventually(workerProcesses).WithArguments(job).Should(HaveLen(2))

		done := waitComplete(job, 4*time.Minute)
		expectSucceeded(done, 20000, 0, 100)
		Expect(done.Status.Parallelism.MaxAchieved).To(BeNumerically("<=", 8))
		expectEveryItem(readLedger(ledger), 20000, 200)

		By("scaling the workers of the finished job to 0")
		Eventually(workerProcesses).WithArguments(job).Should(BeEmpty())
	})

	It("keeps the pages in flight within the parallelism, and scales the worker processes with it", func() {
		ns := newNamespace("scale")
		// 200 pages of about a second each.
		job := syntheticJob(ns, "scaled", examples.SyntheticArgs{TotalItems: 10000, ItemDelay: "20ms"})
		job.Spec.Processor.PageSize = 50
		job.Spec.Parallelism = ptr(int32(2))
		create(job)

		// limit is the most pages that may be in flight now: raised before the
		// spec asks for more, lowered once the workflow reports that it took
		// the lower parallelism and drained to it. A sample is held to the
		// higher limit of the start and the end of its reads.
		var limit atomic.Int64
		limit.Store(2)
		var maxSeen atomic.Int64
		watch := sample(150*time.Millisecond, func(s *sampler) {
			lim := limit.Load()
			cur, err := fetch(job)
			if err != nil {
				return
			}
			var pending []*workflowpb.PendingActivityInfo
			if cur.Status.Workflow != nil {
				if pending, err = pendingPages(cur.Status.Workflow.ID); err != nil {
					return
				}
			}
			lim = max(lim, limit.Load())
			if n := cur.Status.Pages.InFlight; n > lim {
				s.fail("status.pages.inFlight %d > parallelism %d", n, lim)
			}
			if n := int64(len(pending)); n > lim {
				s.fail("Temporal shows %d page activities pending > parallelism %d", n, lim)
			} else if n > maxSeen.Load() {
				maxSeen.Store(n)
			}
		})
		maxAchieved := status(job, func(st batchv1alpha1.BatchJobStatus) int32 { return st.Parallelism.MaxAchieved })

		By("parallelism 2: one worker process, 2 pages in flight")
		Eventually(workerProcesses).WithArguments(job).Should(HaveLen(1))
		Eventually(maxAchieved).Should(BeEquivalentTo(2))
		Expect(runnerProcesses(job)).To(Equal(workerProcesses(job)))

		By("raising the parallelism to 6: three worker processes")
		limit.Store(6)
		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr(int32(6)) })
		Eventually(workerProcesses).WithArguments(job).WithTimeout(time.Minute).Should(HaveLen(3))
		Eventually(maxAchieved).WithTimeout(time.Minute).Should(BeEquivalentTo(6))
		Expect(runnerProcesses(job)).To(Equal(workerProcesses(job)))

		By("lowering it to 2: back to one worker process")
		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr(int32(2)) })
		Eventually(func(g Gomega) {
			st := get(job).Status
			g.Expect(st.Parallelism.Effective).To(BeEquivalentTo(2))
			g.Expect(st.Pages.InFlight).To(BeNumerically("<=", 2))
		}).WithTimeout(time.Minute).Should(Succeed())
		limit.Store(2)
		Eventually(workerProcesses).WithArguments(job).WithTimeout(time.Minute).Should(HaveLen(1))
		Expect(runnerProcesses(job)).To(Equal(workerProcesses(job)))
		Expect(get(job).Status.Pages.Completed).To(BeNumerically("<", 200), "the job finished before the spec could scale it down and check it")

		By("finishing at parallelism 8")
		limit.Store(8)
		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr(int32(8)) })
		done := waitComplete(job, 4*time.Minute)
		expectSucceeded(done, 10000, 0, 200)
		Expect(done.Status.Parallelism.MaxAchieved).To(BeNumerically("<=", 8))

		samples, problems := watch.stop()
		Expect(problems).To(BeEmpty())
		Expect(samples).To(BeNumerically(">", 50))
		Expect(maxSeen.Load()).To(BeNumerically(">=", 6), "Temporal never showed the raised parallelism's pages in flight")
	})

	It("suspends: no new pages, worker processes go to 0 once drained; resume finishes the job", func() {
		ns := newNamespace("suspend")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 120 pages of about half a second each.
		job := syntheticJob(ns, "pausable", examples.SyntheticArgs{TotalItems: 12000, ItemDelay: "5ms", Ledger: ledger})
		create(job)
		Eventually(workerProcesses).WithArguments(job).Should(HaveLen(2))
		Eventually(status(job, pagesCompleted)).Should(BeNumerically(">=", 10))

		By("suspending the job")
		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = true })
		Eventually(func(g Gomega) {
			cur := get(job)
			g.Expect(conditionTrue(cur, batchv1alpha1.ConditionSuspended)).To(BeTrue())
			g.Expect(cur.Status.Parallelism.Effective).To(BeZero())
		}).Should(Succeed())
		id := get(job).Status.Workflow.ID
		// The workflow took the suspension: from now on the pages Temporal
		// holds can only be those it held already.
		before, err := pendingPages(id)
		Expect(err).NotTo(HaveOccurred())
		var allowed []string
		for _, p := range before {
			allowed = append(allowed, p.GetActivityId())
		}
		watch := sample(200*time.Millisecond, func(s *sampler) {
			pending, err := pendingPages(id)
			if err != nil {
				return
			}
			for _, p := range pending {
				if !slices.Contains(allowed, p.GetActivityId()) {
					s.fail("page %s started while suspended", p.GetActivityId())
				}
			}
		})

		By("draining the pages in flight, then stopping every worker process")
		Eventually(func(g Gomega) {
			cur := get(job)
			g.Expect(cur.Status.Phase).To(Equal(batchv1alpha1.PhaseSuspended))
			g.Expect(cur.Status.Pages.InFlight).To(BeZero())
			g.Expect(workerProcesses(job)).To(BeEmpty())
			g.Expect(runnerProcesses(job)).To(BeEmpty())
		}).WithTimeout(time.Minute).Should(Succeed())
		completed, lines := get(job).Status.Pages.Completed, ledgerLen(ledger)
		Expect(completed).To(BeNumerically("<", 120), "the job finished before it was suspended")
		Consistently(func(g Gomega) {
			g.Expect(get(job).Status.Pages.Completed).To(Equal(completed))
			g.Expect(ledgerLen(ledger)).To(Equal(lines))
			g.Expect(pendingPages(id)).To(BeEmpty())
			g.Expect(workerProcesses(job)).To(BeEmpty())
		}).WithTimeout(3 * time.Second).Should(Succeed())
		_, problems := watch.stop()
		Expect(problems).To(BeEmpty())

		By("resuming it")
		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = false })
		Eventually(workerProcesses).WithArguments(job).Should(HaveLen(2))
		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 12000, 0, 120)
		Expect(conditionTrue(done, batchv1alpha1.ConditionSuspended)).To(BeFalse())
		expectEveryItem(readLedger(ledger), 12000, 100)
	})
})

var _ = Describe("Failures", func() {
	It("show item failures in status.failures, and a page that fails twice recovers", func() {
		ns := newNamespace("flaky")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "flaky", examples.SyntheticArgs{
			TotalItems: 3000,
			Ledger:     ledger,
			FailItems:  map[string]string{"150": "InvalidRecord", "2222": "InvalidRecord"},
			FailPages:  map[string]examples.PageFailure{"4": {Type: "Flaky", Attempts: 2}},
		})
		create(job)

		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 2998, 2, 30)
		Expect(done.Status.Failures).NotTo(BeNil())
		Expect(done.Status.Failures.ByType).To(Equal(map[string]int64{"InvalidRecord": 2}))
		var recent []string
		for _, f := range done.Status.Failures.Recent {
			recent = append(recent, fmt.Sprintf("page %d item %s %s", f.Page, f.Item, f.Type))
		}
		Expect(recent).To(ConsistOf("page 1 item 150 InvalidRecord", "page 22 item 2222 InvalidRecord"))

		lines := readLedger(ledger)
		expectEveryItem(lines, 3000, 100, 150, 2222)
		var page4 []int32
		for _, l := range lines {
			if l.page == 4 {
				page4 = append(page4, l.attempt)
			}
		}
		Expect(page4).To(HaveLen(100))
		Expect(page4).To(HaveEach(BeEquivalentTo(3)), "page 4 should have succeeded on its third attempt")
	})

	It("fail the job with PagesFailed beyond maxFailedPages; a re-drive after the fix finishes it", func() {
		ns := newNamespace("redrive")
		dir := GinkgoT().TempDir()
		ledger, broken := filepath.Join(dir, "ledger"), filepath.Join(dir, "page-7-is-broken")
		Expect(os.WriteFile(broken, nil, 0o644)).To(Succeed())
		job := syntheticJob(ns, "broken", examples.SyntheticArgs{
			TotalItems:      3000,
			Ledger:          ledger,
			FailPages:       map[string]examples.PageFailure{"7": {Type: "BadData"}},
			FailWhileExists: broken,
		})
		job.Spec.Retry.NonRetryableErrorTypes = []string{"BadData"}
		job.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromInt32(0))}
		create(job)

		By("failing page 7 for good")
		var failed *batchv1alpha1.BatchJob
		Eventually(func(g Gomega) {
			failed = get(job)
			g.Expect(failed.Status.Phase).To(Equal(batchv1alpha1.PhaseFailed))
		}).WithTimeout(3 * time.Minute).Should(Succeed())
		c := metaCondition(failed, batchv1alpha1.ConditionFailed)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(batchv1alpha1.ReasonPagesFailed))
		Expect(c.Message).To(ContainSubstring("maxFailedPages"))
		Expect(conditionTrue(failed, batchv1alpha1.ConditionComplete)).To(BeFalse())
		Expect(failed.Status.Pages.Failed).To(BeEquivalentTo(1))
		Expect(failed.Status.Failures.ByType).To(HaveKeyWithValue("BadData", BeEquivalentTo(1)))
		Expect(failed.Status.Failures.FailedAttempts).To(BeEquivalentTo(1))
		Expect(failed.Status.Failures.Recent).To(ContainElement(WithTransform(
			func(f batchv1alpha1.FailureRecord) string { return fmt.Sprintf("page %d %s", f.Page, f.Type) },
			Equal("page 7 BadData"))))
		Expect(failed.Status.Items.Processed).To(BeNumerically("<", 3000))
		Eventually(workerProcesses).WithArguments(job).Should(BeEmpty())

		By("fixing the cause and re-driving")
		Expect(os.Remove(broken)).To(Succeed())
		update(job, func(j *batchv1alpha1.BatchJob) {
			if j.Annotations == nil {
				j.Annotations = map[string]string{}
			}
			j.Annotations[batchv1alpha1.AnnotationRedrive] = "page-7-fixed"
		})
		Eventually(func(g Gomega) {
			cur := get(job)
			g.Expect(cur.Status.LastRedrive).To(Equal("page-7-fixed"))
			g.Expect(conditionTrue(cur, batchv1alpha1.ConditionFailed)).To(BeFalse())
		}).Should(Succeed())
		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 3000, 0, 30)
		expectEveryItem(readLedger(ledger), 3000, 100)
	})
})

var _ = Describe("The sqlite-migration sample", func() {
	It("migrates every row exactly once with several worker processes", func() {
		ns := newNamespace("sqlite")
		db := filepath.Join(GinkgoT().TempDir(), "products.db")
		out, err := exec.Command(workerBin, "seed-sqlite", "--database", db, "--rows", "5000", "--price-cents", "1000").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))

		args, err := json.Marshal(examples.SQLiteMigrationArgs{Database: db, Percent: 3})
		Expect(err).NotTo(HaveOccurred())
		job := newJob(ns, "migrate", examples.NameSQLiteMigration, args)
		job.Spec.Processor.PageSize = 250
		job.Spec.Worker.PagesPerPod = 1
		var most atomic.Int64
		watch := sample(100*time.Millisecond, func(*sampler) {
			if n := int64(len(workerProcesses(job))); n > most.Load() {
				most.Store(n)
			}
		})
		create(job)

		done := waitComplete(job, 3*time.Minute)
		// 20 full pages, then the empty page that finds the end of the table.
		expectSucceeded(done, 5000, 0, 21)
		watch.stop()
		Expect(most.Load()).To(BeEquivalentTo(4), "worker processes at most")

		conn, err := examples.OpenDatabase(db)
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		var rows, migrated, lowest, highest int64
		Expect(conn.QueryRow(`SELECT COUNT(*), SUM(migrated), MIN(price_cents), MAX(price_cents) FROM products`).
			Scan(&rows, &migrated, &lowest, &highest)).To(Succeed())
		Expect(rows).To(BeEquivalentTo(5000))
		Expect(migrated).To(BeEquivalentTo(5000), "rows migrated")
		// 1000 cents + 3%, once: twice would be 1061.
		Expect([]int64{lowest, highest}).To(Equal([]int64{1030, 1030}), "lowest and highest price")
	})
})

func metaCondition(job *batchv1alpha1.BatchJob, typ string) metav1.Condition {
	for _, c := range job.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}
