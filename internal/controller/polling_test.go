package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

var _ = Describe("Polling", func() {
	It("reads a running job about once per poll interval, though its status changes all the time", func() {
		ctx := context.Background()
		// A manager of its own with a poll interval far longer than the time
		// between page completions: every poll then writes status, and a
		// status write that triggered a pass would show as many passes per
		// interval.
		const poll = 2 * time.Second
		mgrRun.stop()
		opts := managerOptions(temporal.Address)
		opts.Intervals.Running = poll
		run := startManager(opts)
		defer func() {
			run.stop()
			mgrRun = startManager(managerOptions(temporal.Address))
		}()

		ns := newNamespace("polling")
		// Pages of about 0.3 s, two at a time: several pages complete
		// between two polls.
		job := syntheticJob(ns, "busy", map[string]any{"totalItems": 1000000, "itemDelay": "3ms"})
		job.Spec.Parallelism = ptr(int32(2))
		job.Spec.CancellationPolicy = batchv1alpha1.CancellationTerminate
		Expect(k8s.Create(ctx, job)).To(Succeed())
		defer func() { Expect(k8s.Delete(ctx, job)).To(Succeed()) }()
		Eventually(func() int64 { return get(job).Status.Pages.Completed }, 30*time.Second, 200*time.Millisecond).Should(BeNumerically(">", 0))

		start, before := time.Now(), reconcilesOf(job)
		completedBefore := get(job).Status.Pages.Completed
		// Jitter shortens an interval by at most a fifth; two passes of slack
		// for a spec or metadata event.
		excess := func() float64 {
			allowed := time.Since(start).Seconds()/(poll.Seconds()*0.8) + 2
			return reconcilesOf(job) - before - allowed
		}
		Consistently(excess, 24*time.Second, 500*time.Millisecond).Should(BeNumerically("<=", 0), "more passes than polls: status writes trigger passes")
		passes := reconcilesOf(job) - before
		GinkgoWriter.Printf("%.0f passes in 24 s at a poll interval of %s\n", passes, poll)
		Expect(passes).To(BeNumerically(">=", 24/(poll.Seconds()*1.2)-2), "running jobs are no longer polled")
		// The status kept changing all along, so the count above was exposed
		// to self-triggered passes.
		Expect(get(job).Status.Pages.Completed - completedBefore).To(BeNumerically(">", 2*passes))
	})

	It("sees a workflow terminated behind the job's back, though the poll is one query", func() {
		ctx := context.Background()
		ns := newNamespace("terminated")
		job := syntheticJob(ns, "cut", map[string]any{"totalItems": 100000, "itemDelay": "5ms"})
		job.Spec.Parallelism = ptr(int32(1))
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(func() int64 { return get(job).Status.Pages.Completed }, 30*time.Second, 200*time.Millisecond).Should(BeNumerically(">", 0))

		Expect(tc.TerminateWorkflow(ctx, get(job).Status.Workflow.ID, "", "operator pulled the plug")).To(Succeed())
		Eventually(get, 20*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionFailed, metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowFailed))
		Expect(condition(get(job), batchv1alpha1.ConditionFailed).Message).To(ContainSubstring("ended without a result"))
		Expect(get(job).Status.CompletionTime).NotTo(BeNil())
	})
})

// reconcilesOf reads the manager's reconcile counter of a job.
func reconcilesOf(job *batchv1alpha1.BatchJob) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "temporal_batch_job_reconciles_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == job.Namespace && labels["name"] == job.Name {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
