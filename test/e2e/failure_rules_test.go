package e2e

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
)

var _ = Describe("Failure rules", func() {
	It("ignore a corrupt page and fail the job at the first Unauthorized page, with FailureTarget and Failed as a batch/v1 Job says them", func() {
		ns := newNamespace("failure-rules")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "ruled", examples.SyntheticArgs{
			TotalItems: 3000,
			ItemDelay:  "2ms",
			Ledger:     ledger,
			FailPages: map[string]examples.PageFailure{
				"3":  {Type: "Corrupt"},
				"12": {Type: "Unauthorized"},
			},
		})
		job.Spec.Retry.NonRetryableErrorTypes = []string{"Corrupt", "Unauthorized"}
		job.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{
			Rules: []batchv1alpha1.FailureRuleSpec{
				{Action: batchv1alpha1.FailureActionIgnore, OnErrorTypes: []string{"Corrupt"}, OnMessageContains: "page 3 "},
				{Action: batchv1alpha1.FailureActionFailJob, OnErrorTypes: []string{"Unauthorized"}},
			},
		}
		create(job)

		failed := waitFailed(job, 3*time.Minute)
		for _, typ := range []string{batchv1alpha1.ConditionFailed, batchv1alpha1.ConditionFailureTarget} {
			c := metaCondition(failed, typ)
			Expect(c.Status).To(Equal(metav1.ConditionTrue), typ)
			Expect(c.Reason).To(Equal(batchv1alpha1.ReasonFailurePolicyRule), typ)
			Expect(c.Message).To(ContainSubstring("page 12 failed with Unauthorized, which failurePolicy.rules[1] fails the job for"), typ)
		}
		Expect(conditionTrue(failed, batchv1alpha1.ConditionComplete)).To(BeFalse())
		Expect(conditionTrue(failed, batchv1alpha1.ConditionSuccessCriteriaMet)).To(BeFalse())
		st := failed.Status
		Expect(st.Pages.Ignored).To(BeEquivalentTo(1), "status.pages.ignored: page 3")
		Expect(st.Pages.Failed).To(BeNumerically(">=", 1), "status.pages.failed: page 12, kept for a re-drive")
		Expect(st.Pages.Completed).To(BeNumerically("<", 30), "the job stopped without running the rest")
		Expect(st.Items.Failed).To(BeEquivalentTo(100), "status.items.failed: page 3's items")
		Expect(st.Failures.ByType).To(HaveKeyWithValue("Corrupt", BeEquivalentTo(1)))
		Expect(st.Failures.ByType).To(HaveKeyWithValue("Unauthorized", BeEquivalentTo(1)))
		for _, l := range readLedger(ledger) {
			Expect(l.page).NotTo(BeElementOf(int64(3), int64(12)), "the failing pages processed no item")
		}
		Eventually(workerProcesses).WithArguments(job).Should(BeEmpty())
	})
})
