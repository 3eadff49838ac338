package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

var _ = Describe("Code deploys", func() {
	It("fix a running batch: a new worker template rolls out with no page cut short and the stuck page succeeds on the new code, with no re-drive", func() {
		ns := newNamespace("code-deploy")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 20 pages of 1 s (50 items of 20 ms); page 5 fails on the buggy
		// code, which the template's SYNTHETIC_BUG marks (a stand-in for
		// an image).
		job := syntheticJob(ns, "deployed", examples.SyntheticArgs{
			TotalItems: 1000, ItemDelay: "20ms", Ledger: ledger,
			FailPages:    map[string]examples.PageFailure{"5": {Type: "Bug", Attempts: 0}},
			FailWhileEnv: "SYNTHETIC_BUG",
		})
		job.Spec.Processor.PageSize = 50
		job.Spec.Retry.MaximumAttempts = 2
		job.Spec.Retry.StuckPageRetryInterval = nil // the default, 5m: only the edit below makes it retry soon
		c := &job.Spec.Worker.Template.Spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: "SYNTHETIC_BUG", Value: "true"})
		create(job)

		By("waiting for page 5 to get stuck on the bug")
		Eventually(status(job, func(st batchv1alpha1.BatchJobStatus) int64 { return st.Pages.Stuck })).WithTimeout(2 * time.Minute).Should(BeEquivalentTo(1))
		before := get(job)
		old := runnerProcesses(job)
		Expect(old).NotTo(BeEmpty())

		By("deploying the fixed code and retrying stuck pages every 2s")
		update(job, func(j *batchv1alpha1.BatchJob) {
			c := &j.Spec.Worker.Template.Spec.Containers[0]
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SYNTHETIC_BUG" })
			j.Spec.Retry.StuckPageRetryInterval = &metav1.Duration{Duration: 2 * time.Second}
		})
		deployed := get(job).Generation
		Expect(deployed).To(BeNumerically(">", before.Generation))

		By("watching the rollout: every worker on the new template, the old ones drained")
		Eventually(status(job, func(st batchv1alpha1.BatchJobStatus) int64 {
			if st.Workers == nil {
				return 0
			}
			return st.Workers.TemplateGeneration
		})).WithTimeout(time.Minute).Should(Equal(deployed))
		Eventually(func(g Gomega) {
			for _, pid := range old {
				g.Expect(localenv.ProcessAlive(pid)).To(BeFalse(), "old worker process %d", pid)
			}
		}).WithTimeout(time.Minute).Should(Succeed())
		for i := range old {
			log := filepath.Join(env.StateDir, "pods", fmt.Sprintf("%s.%s-workers-%d.log", ns, job.Name, i))
			Eventually(tail).WithArguments(log, 1).Should(HaveSuffix("stopped (exit status 0)"), "an old worker was killed rather than drained: %s", log)
		}

		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 1000, 0, 20)
		Expect(done.Status.LastRedrive).To(BeEmpty(), "no re-drive")
		Expect(done.Status.ObservedGeneration).To(Equal(deployed))
		Expect(done.Status.Failures).NotTo(BeNil())
		Expect(done.Status.Failures.ByType).To(Equal(map[string]int64{"Bug": 1}), "page 5 failed with the bug only: no attempt timed out or was cancelled by the rollout")
		expectExactly(readLedger(ledger), 1000, 50)
	})
})
