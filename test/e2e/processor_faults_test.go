package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.temporal.io/api/workflowservice/v1"
	temporalclient "go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

var _ = Describe("Faults of the processor and of Temporal's setup", func() {
	It("fails the job with ChainBroken when the frontier page produces a cursor over 4096 bytes, after exactly the pages before it", func() {
		ns := newNamespace("oversized-cursor")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// Page 4 (items 400..499) is asked for one successor, "500", which
		// the processor pads past the limit.
		job := syntheticJob(ns, "overgrown", examples.SyntheticArgs{TotalItems: 1000, Ledger: ledger, OversizedCursorFrom: 500})
		job.Spec.Processor.Lookahead = ptr(int32(1))
		create(job)

		failed := waitFailed(job, 2*time.Minute)
		c := metaCondition(failed, batchv1alpha1.ConditionFailed)
		Expect(c.Reason).To(Equal(batchv1alpha1.ReasonChainBroken))
		Expect(c.Message).To(ContainSubstring(`page 4 failed for good before enqueuing the next page`))
		Expect(c.Message).NotTo(ContainSubstring(`"400"`), "cursors can hold keys of the data: the message leaves them out")
		Expect(conditionTrue(failed, batchv1alpha1.ConditionComplete)).To(BeFalse())
		st := failed.Status
		Expect(st.Pages.Completed).To(BeEquivalentTo(4), "status.pages.completed")
		Expect(st.Pages.Failed).To(BeEquivalentTo(1), "status.pages.failed")
		Expect(st.Pages.InFlight).To(BeZero(), "status.pages.inFlight")
		Expect(st.Items.Processed).To(BeEquivalentTo(400), "status.items.processed")
		Expect(st.Failures).NotTo(BeNil())
		Expect(st.Failures.ByType).To(HaveKeyWithValue(processor.ErrorTypeCursorTooLarge, BeEquivalentTo(1)))
		Expect(st.Failures.Recent).To(ContainElement(SatisfyAll(
			HaveField("Page", BeEquivalentTo(4)),
			HaveField("Type", processor.ErrorTypeCursorTooLarge),
			HaveField("Message", ContainSubstring(fmt.Sprintf("%d bytes", processor.MaxCursorBytes+1))),
		)), "status.failures.recent")

		By("checking the ledger: pages 0-3 once each, nothing from page 4 on")
		expectExactly(readLedger(ledger), 400, 100)
		Eventually(workerProcesses).WithArguments(job).Should(BeEmpty())
	})

	It("retries a page whose first attempt panics and completes with every item", func() {
		ns := newNamespace("panic")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		panicking := []int64{3, 11}
		job := syntheticJob(ns, "panicky", examples.SyntheticArgs{TotalItems: 2000, ItemDelay: "1ms", Ledger: ledger, PanicPages: panicking})
		create(job)

		done := waitComplete(job, 2*time.Minute)
		expectSucceeded(done, 2000, 0, 20)
		lines := readLedger(ledger)
		expectEveryItem(lines, 2000, 100)
		for _, page := range panicking {
			var attempts []int32
			for _, l := range lines {
				if l.page == page {
					attempts = append(attempts, l.attempt)
				}
			}
			Expect(attempts).To(HaveLen(100), "ledger lines of page %d", page)
			Expect(attempts).To(HaveEach(BeEquivalentTo(2)), "page %d: the panicking attempt 1 must have processed nothing", page)
		}

		By("checking in the workflow history that the second attempt followed the panic")
		started := pageAttempts(done.Status.Workflow.ID, done.Status.Workflow.RunID)
		for _, page := range panicking {
			a, ok := started[page]
			Expect(ok).To(BeTrue(), "no completed attempt of page %d in the history", page)
			Expect(a.GetAttempt()).To(BeEquivalentTo(2), "page %d", page)
			Expect(a.GetLastFailure().GetMessage()).To(ContainSubstring("panicPages"), "page %d: the attempt before failed with %v", page, a.GetLastFailure())
		}
	})

	It("shows NamespaceNotFound with how to create it, and runs the job once the namespace exists", func(ctx SpecContext) {
		ns := newNamespace("no-temporal-ns")
		temporalNS := fmt.Sprintf("e2e-missing-%d", time.Now().UnixNano())
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")

		By("replacing the manager with one pointed at a Temporal namespace that does not exist")
		env.StopManager()
		DeferCleanup(env.StartManager)
		m, err := env.StartExtraManager(ctx, "--temporal-namespace", temporalNS)
		Expect(err).NotTo(HaveOccurred())
		// Stopped after the job is deleted, so that it removes the finalizer.
		DeferCleanup(m.Stop)

		job := syntheticJob(ns, "homeless", examples.SyntheticArgs{TotalItems: 1000, Ledger: ledger})
		create(job)
		Eventually(func(g Gomega) {
			c := metaCondition(get(job), batchv1alpha1.ConditionReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(batchv1alpha1.ReasonNamespaceNotFound))
			g.Expect(c.Message).To(ContainSubstring(temporalNS))
			g.Expect(c.Message).To(ContainSubstring("temporal operator namespace create " + temporalNS))
		}).WithTimeout(time.Minute).Should(Succeed())
		Expect(ledgerLen(ledger)).To(BeZero())

		By("creating the namespace")
		created := time.Now()
		registerNamespace(ctx, temporalNS)
		done := waitComplete(job, 3*time.Minute)
		GinkgoWriter.Printf("the job completed %.1fs after the namespace was created\n", time.Since(created).Seconds())
		expectSucceeded(done, 1000, 0, 10)
		Expect(metaCondition(done, batchv1alpha1.ConditionReady).Reason).NotTo(Equal(batchv1alpha1.ReasonNamespaceNotFound))
		expectExactly(readLedger(ledger), 1000, 100)

		By("checking that the workflow ran in that namespace")
		c, err := temporalclient.DialContext(ctx, temporalclient.Options{HostPort: env.TemporalAddress, Namespace: temporalNS})
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		_, err = c.DescribeWorkflowExecution(ctx, done.Status.Workflow.ID, done.Status.Workflow.RunID)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(6*time.Minute))
})

// waitFailed waits for the job's Failed condition and returns the job; a
// Complete condition ends the wait at once.
func waitFailed(job *batchv1alpha1.BatchJob, timeout time.Duration) *batchv1alpha1.BatchJob {
	GinkgoHelper()
	var failed *batchv1alpha1.BatchJob
	Eventually(func(g Gomega) {
		cur, err := fetch(job)
		g.Expect(err).NotTo(HaveOccurred())
		if conditionTrue(cur, batchv1alpha1.ConditionComplete) {
			StopTrying(fmt.Sprintf("the job completed (phase %s) where it should have failed", cur.Status.Phase)).Now()
		}
		g.Expect(conditionTrue(cur, batchv1alpha1.ConditionFailed)).To(BeTrue(),
			"phase %s, %d pages completed, %d in flight", cur.Status.Phase, cur.Status.Pages.Completed, cur.Status.Pages.InFlight)
		failed = cur
	}).WithTimeout(timeout).WithPolling(500 * time.Millisecond).Should(Succeed())
	Expect(failed.Status.Phase).To(Equal(batchv1alpha1.PhaseFailed))
	return failed
}

// expectExactly checks that the ledger holds the items 0..n-1 each exactly
// once, from the page that holds it, and nothing else.
func expectExactly(lines []ledgerLine, n, pageSize int64) {
	GinkgoHelper()
	count := map[int64]int{}
	var problems []string
	for _, l := range lines {
		if l.item < 0 || l.item >= n || l.page != l.item/pageSize {
			problems = append(problems, fmt.Sprintf("item %d from page %d attempt %d", l.item, l.page, l.attempt))
		}
		count[l.item]++
	}
	for item, c := range count {
		if c > 1 {
			problems = append(problems, fmt.Sprintf("item %d %d times", item, c))
		}
	}
	Expect(problems).To(BeEmpty(), "unexpected ledger lines")
	Expect(lines).To(HaveLen(int(n)), "ledger lines")
}

// registerNamespace creates a Temporal namespace, as `temporal operator
// namespace create` does.
func registerNamespace(ctx context.Context, name string) {
	GinkgoHelper()
	nc, err := temporalclient.NewNamespaceClient(temporalclient.Options{HostPort: env.TemporalAddress})
	Expect(err).NotTo(HaveOccurred())
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	Expect(nc.Register(rctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        name,
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})).To(Succeed())
}
