package e2e

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
)

var _ = Describe("Throughput", func() {
	It("fills every slot with fast pages when the frontier enqueues several pages at once (lookahead)", func() {
		ns := newNamespace("lookahead")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 200 pages that take a few milliseconds: a chain that enqueues one
		// page at a time keeps about one page in flight.
		job := syntheticJob(ns, "fast-pages", examples.SyntheticArgs{TotalItems: 20000, Ledger: ledger})
		job.Spec.Parallelism = ptr(int32(8))
		job.Spec.Processor.Lookahead = ptr(int32(16))
		job.Spec.Worker.PagesPerPod = 4
		create(job)

		done := waitComplete(job, 4*time.Minute)
		expectSucceeded(done, 20000, 0, 200)
		Expect(done.Status.Parallelism.MaxAchieved).To(Equal(int32(8)), "pages in flight reached the parallelism")
		Expect(done.Status.Chains).NotTo(BeNil())
		Expect(*done.Status.Chains).To(Equal(batchv1alpha1.ChainStatus{Total: 1, Done: 1, Lookahead: 16}))
		expectEveryItem(readLedger(ledger), 20000, 100)
	})

	It("runs one chain per cursor over disjoint parts of the data (cursors)", func() {
		ns := newNamespace("cursors")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "four-chains", examples.SyntheticArgs{TotalItems: 8000, ItemDelay: "1ms", Ledger: ledger})
		job.Spec.Parallelism = ptr(int32(8))
		job.Spec.Processor.Lookahead = ptr(int32(1))
		job.Spec.Processor.Cursors = examples.SplitSynthetic(8000, 4)
		job.Spec.Worker.PagesPerPod = 4
		create(job)

		By("reporting the chains while they run")
		Eventually(status(job, func(st batchv1alpha1.BatchJobStatus) int32 {
			if st.Chains == nil {
				return 0
			}
			return st.Chains.Total
		})).WithTimeout(time.Minute).Should(Equal(int32(4)))

		done := waitComplete(job, 4*time.Minute)
		expectSucceeded(done, 8000, 0, 80)
		Expect(*done.Status.Chains).To(Equal(batchv1alpha1.ChainStatus{Total: 4, Done: 4, Lookahead: 1}))
		Expect(done.Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring("4 chains"))))
		expectEveryItem(readLedger(ledger), 8000, 0)
	})
})
