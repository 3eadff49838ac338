package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

var _ = Describe("The worker contract", func() {
	It("is served by the TypeScript worker as by the Go one: a failed page, an item failure, lookahead and a re-drive give the same status, every item once", func() {
		root, err := localenv.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		main := filepath.Join(root, "workers", "typescript", "dist", "main.js")
		Expect(main).To(BeAnExistingFile(), "build the TypeScript worker first: make typescript-worker (make test does)")
		_, err = exec.LookPath("node")
		Expect(err).NotTo(HaveOccurred(), "node (20 or later) must be on PATH")

		// The same job for both workers: 30 pages of 50 items, item 150
		// fails, page 7 fails for good until its bug is fixed (the file
		// goes), lookahead follows the parallelism.
		type run struct {
			name   string
			job    *batchv1alpha1.BatchJob
			ledger string
			bug    string
		}
		newRun := func(name string, command []string) *run {
			ns := newNamespace("contract-" + name)
			dir := GinkgoT().TempDir()
			r := &run{name: name, ledger: filepath.Join(dir, "ledger"), bug: filepath.Join(dir, "bug")}
			Expect(os.WriteFile(r.bug, nil, 0o644)).To(Succeed())
			r.job = syntheticJob(ns, "contract", examples.SyntheticArgs{
				TotalItems: 1500, ItemDelay: "5ms", Ledger: r.ledger,
				FailItems:       map[string]string{"150": "InvalidRecord"},
				FailPages:       map[string]examples.PageFailure{"7": {Type: "Corrupt", Attempts: 0}},
				FailWhileExists: r.bug,
			})
			r.job.Spec.Processor.PageSize = 50
			r.job.Spec.Retry.NonRetryableErrorTypes = []string{"Corrupt"}
			c := &r.job.Spec.Worker.Template.Spec.Containers[0]
			c.Command = command
			return r
		}
		runs := []*run{
			newRun("go", []string{"example-worker"}),
			newRun("typescript", []string{"node", main}),
		}
		for _, r := range runs {
			create(r.job)
		}

		By("waiting for both jobs to fail for their failed page")
		failed := map[string]*batchv1alpha1.BatchJob{}
		for _, r := range runs {
			failed[r.name] = waitFailed(r.job, 3*time.Minute)
			c := metaCondition(failed[r.name], batchv1alpha1.ConditionFailed)
			Expect(c.Reason).To(Equal(batchv1alpha1.ReasonPagesFailed), r.name)
			st := failed[r.name].Status
			Expect(st.Pages.Failed).To(BeEquivalentTo(1), r.name)
			Expect(st.Chains).NotTo(BeNil(), r.name)
			Expect(st.Chains.Lookahead).To(BeNumerically(">", 1), "%s: frontier pages are asked for several successors", r.name)
		}
		expectSameCounters(failed["go"].Status, failed["typescript"].Status)

		By("fixing the bug and re-driving both")
		for _, r := range runs {
			Expect(os.Remove(r.bug)).To(Succeed())
			update(r.job, func(j *batchv1alpha1.BatchJob) {
				if j.Annotations == nil {
					j.Annotations = map[string]string{}
				}
				j.Annotations[batchv1alpha1.AnnotationRedrive] = "fixed"
			})
		}
		done := map[string]*batchv1alpha1.BatchJob{}
		for _, r := range runs {
			Eventually(status(r.job, func(st batchv1alpha1.BatchJobStatus) string { return st.LastRedrive })).Should(Equal("fixed"), r.name)
			done[r.name] = waitComplete(r.job, 3*time.Minute)
			expectSucceeded(done[r.name], 1499, 1, 30)
			Expect(done[r.name].Status.Failures.ByType).To(Equal(map[string]int64{"Corrupt": 1, "InvalidRecord": 1}), r.name)
			Expect(done[r.name].Status.Signals).To(BeNil(), "%s: no signal ignored", r.name)
			expectEveryItem(readLedger(r.ledger), 1500, 50, 150)
			Expect(readLedger(r.ledger)).To(HaveLen(1499), "%s: every processed item once", r.name)
		}
		expectSameCounters(done["go"].Status, done["typescript"].Status)
	})
})

// expectSameCounters: two runs of the same job report the same progress.
func expectSameCounters(goStatus, tsStatus batchv1alpha1.BatchJobStatus) {
	GinkgoHelper()
	Expect(tsStatus.Phase).To(Equal(goStatus.Phase))
	Expect(tsStatus.Pages.Completed).To(Equal(goStatus.Pages.Completed), "pages.completed")
	Expect(tsStatus.Pages.Failed).To(Equal(goStatus.Pages.Failed), "pages.failed")
	Expect(tsStatus.Items).To(Equal(goStatus.Items), "items")
	Expect(tsStatus.Chains.Total).To(Equal(goStatus.Chains.Total), "chains.total")
	Expect(tsStatus.Failures.ByType).To(Equal(goStatus.Failures.ByType), "failures.byType")
	Expect(tsStatus.Failures.FailedAttempts).To(Equal(goStatus.Failures.FailedAttempts), "failures.failedAttempts")
}
