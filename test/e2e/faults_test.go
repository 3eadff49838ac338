package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

var _ = Describe("Faults mid-run", func() {
	It("survives a SIGKILL of the manager: one workflow, exact counters", func() {
		ns := newNamespace("manager-kill")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 120 pages of about half a second each.
		job := syntheticJob(ns, "survivor", examples.SyntheticArgs{TotalItems: 12000, ItemDelay: "5ms", Ledger: ledger})
		create(job)
		Eventually(status(job, pagesCompleted)).Should(BeNumerically(">=", 10))
		before := get(job)
		Expect(before.Status.Pages.Completed).To(BeNumerically("<", 120))

		By("killing the manager")
		pid := env.ManagerPid()
		Expect(pid).NotTo(BeZero())
		restarts := env.ManagerRestarts()
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		killedAt := time.Now()
		Eventually(func(g Gomega) {
			g.Expect(localenv.ProcessAlive(pid)).To(BeFalse())
			g.Expect(env.ManagerPid()).NotTo(BeZero())
			g.Expect(env.ManagerPid()).NotTo(Equal(pid))
		}).WithTimeout(time.Minute).Should(Succeed())
		Expect(env.ManagerRestarts()).To(BeNumerically(">", restarts))
		GinkgoWriter.Printf("manager %d killed; pid %d runs %.1fs later\n", pid, env.ManagerPid(), time.Since(killedAt).Seconds())

		done := waitComplete(job, 4*time.Minute)
		expectSucceeded(done, 12000, 0, 120)
		expectEveryItem(readLedger(ledger), 12000, 100)

		By("checking that Temporal ran one workflow")
		wf := before.Status.Workflow
		Expect(done.Status.Workflow.RunID).To(Equal(wf.RunID), "status.workflow.runId changed")
		desc, err := describeWorkflow(wf.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()).To(Equal(wf.RunID), "the latest run of the workflow ID is another one")
		Expect(desc.GetWorkflowExecutionInfo().GetStatus()).To(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED))
		Eventually(executions).WithArguments(wf.ID).Should(Equal(1))
	})

	It("runs a page again after the heartbeat timeout when its worker process is killed mid-page", func() {
		ns := newNamespace("worker-kill")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 32 pages of 2 s each, 4 at a time in one worker process.
		job := syntheticJob(ns, "resilient", examples.SyntheticArgs{TotalItems: 1280, ItemDelay: "50ms", Ledger: ledger})
		job.Spec.Processor.PageSize = 40
		job.Spec.Processor.HeartbeatTimeout = &metav1.Duration{Duration: 5 * time.Second}
		job.Spec.Worker.PagesPerPod = 4
		create(job)
		Eventually(workerProcesses).WithArguments(job).Should(HaveLen(1))
		Eventually(status(job, pagesCompleted)).Should(BeNumerically(">=", 2))
		id := get(job).Status.Workflow.ID

		By("killing the worker process while it is in the middle of a page")
		// A page that started between 0.3 and 1.2 s ago has at least 0.8 s of
		// its 2 s left, so its attempt cannot finish before the kill.
		var pid int
		var killed []int64
		Eventually(func(g Gomega) {
			pids := workerProcesses(job)
			g.Expect(pids).To(HaveLen(1))
			pid = pids[0]
			pending, err := pendingPages(id)
			g.Expect(err).NotTo(HaveOccurred())
			killed = nil
			for _, p := range pending {
				since := time.Since(p.GetLastStartedTime().AsTime())
				if p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED && p.GetAttempt() == 1 &&
					strings.HasPrefix(p.GetLastWorkerIdentity(), strconv.Itoa(pid)+"@") &&
					since > 300*time.Millisecond && since < 1200*time.Millisecond {
					killed = append(killed, pageOf(p.GetActivityId()))
				}
			}
			g.Expect(killed).NotTo(BeEmpty())
		}).WithTimeout(time.Minute).WithPolling(50 * time.Millisecond).Should(Succeed())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		killedAt := time.Now()
		GinkgoWriter.Printf("killed worker process %d in the middle of pages %v\n", pid, killed)

		By("restarting the worker process")
		Eventually(func(g Gomega) {
			pids := workerProcesses(job)
			g.Expect(pids).To(HaveLen(1))
			g.Expect(pids[0]).NotTo(Equal(pid))
		}).Should(Succeed())

		done := waitComplete(job, 3*time.Minute)
		expectSucceeded(done, 1280, 0, 32)
		lines := readLedger(ledger)
		expectEveryItem(lines, 1280, 40)
		for _, page := range killed {
			var attempts []int32
			for _, l := range lines {
				if l.page == page {
					attempts = append(attempts, l.attempt)
				}
			}
			Expect(attempts).To(HaveLen(40), "ledger lines of page %d", page)
			Expect(attempts).To(HaveEach(BeEquivalentTo(2)), "page %d should have been processed by its second attempt only", page)
		}

		By("checking in the workflow history that the second attempt followed a heartbeat timeout")
		started := pageAttempts(id, done.Status.Workflow.RunID)
		for _, page := range killed {
			a, ok := started[page]
			Expect(ok).To(BeTrue(), "no completed attempt of page %d in the history", page)
			Expect(a.GetAttempt()).To(BeEquivalentTo(2), "page %d", page)
			Expect(a.GetLastFailure().GetTimeoutFailureInfo().GetTimeoutType()).To(Equal(enumspb.TIMEOUT_TYPE_HEARTBEAT),
				"page %d: the attempt before failed with %v", page, a.GetLastFailure())
			GinkgoWriter.Printf("page %d: attempt 2 started %.1fs after the kill\n", page, a.at.Sub(killedAt).Seconds())
		}
	})

	It("survives a restart of the Temporal server with exact counters", func() {
		ns := newNamespace("temporal-restart")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "outlasting", examples.SyntheticArgs{TotalItems: 12000, ItemDelay: "5ms", Ledger: ledger})
		// Completions the workers could not report while the server was down
		// are lost; their pages run again once their heartbeat times out.
		job.Spec.Processor.HeartbeatTimeout = &metav1.Duration{Duration: 10 * time.Second}
		create(job)
		Eventually(status(job, pagesCompleted)).Should(BeNumerically(">=", 10))
		before := get(job)
		Expect(before.Status.Pages.Completed).To(BeNumerically("<", 120))

		By("stopping the Temporal server")
		// Whatever happens below, the next specs need Temporal.
		DeferCleanup(env.StartTemporal)
		stopping := time.Now()
		env.StopTemporal()
		stopped := time.Now()
		Eventually(func(g Gomega) {
			c := metaCondition(get(job), batchv1alpha1.ConditionReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(batchv1alpha1.ReasonTemporalUnavailable))
		}).WithTimeout(time.Minute).Should(Succeed())
		GinkgoWriter.Printf("Temporal stopped in %.1fs; the job reported it unavailable %.1fs later\n",
			stopped.Sub(stopping).Seconds(), time.Since(stopped).Seconds())

		By("starting it again on the same address and database")
		Expect(env.StartTemporal(background)).To(Succeed())
		restarted := time.Now()
		done := waitComplete(job, 4*time.Minute)
		GinkgoWriter.Printf("the job completed %.1fs after the restart\n", time.Since(restarted).Seconds())
		expectSucceeded(done, 12000, 0, 120)
		Expect(done.Status.Workflow.RunID).To(Equal(before.Status.Workflow.RunID))
		expectEveryItem(readLedger(ledger), 12000, 100)
	})

	It("survives a restart of kube-apiserver: one workflow, exact counters, every item once", func() {
		ns := newNamespace("apiserver-restart")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		// 200 pages of about half a second each, 4 at a time: about 25 s.
		job := syntheticJob(ns, "unshaken", examples.SyntheticArgs{TotalItems: 20000, ItemDelay: "5ms", Ledger: ledger})
		create(job)
		Eventually(status(job, pagesCompleted)).Should(BeNumerically(">=", 10))
		before := get(job)
		Expect(before.Status.Pages.Completed).To(BeNumerically("<", 150))
		Expect(before.Status.Workflow).NotTo(BeNil())
		pids := workerProcesses(job)
		Expect(pids).To(HaveLen(2))

		By("stopping kube-apiserver")
		// Whatever happens below, the next specs need the API.
		DeferCleanup(env.StartAPIServer)
		stopping := time.Now()
		Expect(env.StopAPIServer()).To(Succeed())
		stopped := time.Now()
		Expect(k8s.Get(background, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{})).NotTo(Succeed(), "the API still answers")
		// The workers need Temporal only: their pages go on meanwhile.
		written := ledgerLen(ledger)
		Eventually(ledgerLen).WithArguments(ledger).Should(BeNumerically(">=", written+2000), "no page completed while kube-apiserver was down")
		Expect(workerProcesses(job)).To(Equal(pids), "the worker processes changed while kube-apiserver was down")
		GinkgoWriter.Printf("kube-apiserver stopped in %.1fs; %d items processed in the %.1fs it was down\n",
			stopped.Sub(stopping).Seconds(), ledgerLen(ledger)-written, time.Since(stopped).Seconds())

		By("starting it again on the same port, certificates and etcd")
		Expect(env.StartAPIServer()).To(Succeed())
		restarted := time.Now()
		done := waitComplete(job, 4*time.Minute)
		GinkgoWriter.Printf("kube-apiserver back in %.1fs; the job completed %.1fs later\n", restarted.Sub(stopped).Seconds(), time.Since(restarted).Seconds())
		expectSucceeded(done, 20000, 0, 200)
		expectExactly(readLedger(ledger), 20000, 100)

		By("checking that Temporal ran one workflow")
		wf := before.Status.Workflow
		Expect(done.Status.Workflow).To(Equal(wf), "status.workflow changed")
		desc, err := describeWorkflow(wf.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()).To(Equal(wf.RunID), "the latest run of the workflow ID is another one")
		Expect(desc.GetWorkflowExecutionInfo().GetStatus()).To(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED))
		Eventually(executions).WithArguments(wf.ID).Should(Equal(1))
	})

	It("cancels the workflow, stops the workers and removes the finalizer within 30 s of a delete", func() {
		ns := newNamespace("delete")
		job := syntheticJob(ns, "doomed", examples.SyntheticArgs{TotalItems: 100000, ItemDelay: "5ms"})
		create(job)
		Eventually(func(g Gomega) {
			g.Expect(get(job).Status.Pages.InFlight).To(BeNumerically(">", 0))
			g.Expect(workerProcesses(job)).To(HaveLen(2))
		}).Should(Succeed())
		id := get(job).Status.Workflow.ID
		pids := workerProcesses(job)
		Expect(get(job).Finalizers).To(ContainElement(batchv1alpha1.Finalizer))

		deleted := time.Now()
		Expect(k8s.Delete(background, job)).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8s.Get(background, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the job is still there (finalizer not removed): %v", err)
			g.Expect(workflowStatus(id)).To(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED))
			for _, pid := range pids {
				g.Expect(localenv.ProcessAlive(pid)).To(BeFalse(), "worker process %d", pid)
			}
			g.Expect(workerProcesses(job)).To(BeEmpty())
			g.Expect(workerDeploymentGone(job)).To(BeTrue(), "the worker Deployment is still there")
		}).WithTimeout(30 * time.Second).Should(Succeed())
		GinkgoWriter.Printf("job, workflow and %d worker processes gone %.1fs after the delete\n", len(pids), time.Since(deleted).Seconds())
	})
})
