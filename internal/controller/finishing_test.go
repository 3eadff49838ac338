package controller_test

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/worker"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// sighting is what a poll of the job saw, and whether its workflow had
// closed by the time the poll looked.
type sighting struct {
	phase     batchv1alpha1.BatchJobPhase
	reason    string
	complete  bool
	closedNow bool
}

// watchCompletion polls the job until it finishes and records, for every
// status with Complete=True, whether the workflow had closed by then.
func watchCompletion(job *batchv1alpha1.BatchJob, timeout time.Duration) []sighting {
	var seen []sighting
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		cur := get(job)
		s := sighting{phase: cur.Status.Phase}
		if c := meta.FindStatusCondition(cur.Status.Conditions, batchv1alpha1.ConditionProgressing); c != nil {
			s.reason = c.Reason
		}
		if c := meta.FindStatusCondition(cur.Status.Conditions, batchv1alpha1.ConditionComplete); c != nil && c.Status == metav1.ConditionTrue {
			s.complete = true
			s.closedNow = workflowStatus(cur.Status.Workflow.ID) != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		}
		seen = append(seen, s)
		if cur.Status.Phase == batchv1alpha1.PhaseSucceeded || cur.Status.Phase == batchv1alpha1.PhaseFailed {
			return seen
		}
		time.Sleep(100 * time.Millisecond)
	}
	Fail("the job did not finish within " + timeout.String())
	return nil
}

func reasonsSeen(seen []sighting) []string {
	var out []string
	for _, s := range seen {
		if len(out) == 0 || out[len(out)-1] != s.reason {
			out = append(out, s.reason)
		}
	}
	return out
}

var _ = Describe("A job's end", func() {
	ctx := context.Background()

	It("is Complete only once the workflow closed, while a slow failure handler still works", func() {
		ns := newNamespace("slow-handler")
		queue := "slow-handler-" + ns
		var mu sync.Mutex
		var delivered []processor.FailureReport
		w := worker.New(tc, queue, worker.Options{MaxConcurrentActivityExecutionSize: 8})
		examples.Register(w)
		processor.RegisterFailureHandler(w, "SlowHandler", func(ctx context.Context, b processor.FailureBatch) error {
			time.Sleep(3 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			delivered = append(delivered, b.Failures...)
			return nil
		})
		Expect(w.Start()).To(Succeed())
		DeferCleanup(w.Stop)

		job := syntheticJob(ns, "slow", map[string]any{"totalItems": 300, "failItems": map[string]string{"250": "BadPrice"}})
		job.Spec.TaskQueue = queue
		job.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{Handler: "SlowHandler"}
		Expect(k8s.Create(ctx, job)).To(Succeed())

		seen := watchCompletion(job, time.Minute)
		for _, s := range seen {
			if s.complete {
				Expect(s.closedNow).To(BeTrue(), "Complete=True while the workflow ran: %+v", seen)
			}
		}
		Expect(reasonsSeen(seen)).To(ContainElement(batchv1alpha1.ReasonFinishing), "the wait for the handler shows")
		done := get(job)
		Expect(done.Status.Phase).To(Equal(batchv1alpha1.PhaseSucceeded))
		Expect(done.Status.CompletionTime).NotTo(BeNil())
		Expect(done.Status.Failures.HandlerDropped).To(BeZero())
		mu.Lock()
		Expect(delivered).To(HaveLen(1))
		mu.Unlock()
	})

	It("closes after spec.failurePolicy.handlerTimeout when no worker runs the failure handler, and says so", func() {
		ns := newNamespace("no-handler")
		job := syntheticJob(ns, "unhandled", map[string]any{"totalItems": 300, "failItems": map[string]string{"5": "BadPrice", "250": "BadPrice"}})
		job.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{Handler: "NobodyServesThis", HandlerTimeout: &metav1.Duration{Duration: 3 * time.Second}}
		Expect(k8s.Create(ctx, job)).To(Succeed())

		seen := watchCompletion(job, time.Minute)
		for _, s := range seen {
			if s.complete {
				Expect(s.closedNow).To(BeTrue(), "Complete=True while the workflow ran: %+v", seen)
			}
		}
		done := get(job)
		Expect(done.Status.Phase).To(Equal(batchv1alpha1.PhaseSucceeded))
		Expect(done.Status.CompletionTime).NotTo(BeNil())
		Expect(done.Status.Failures.HandlerDropped).To(BeEquivalentTo(2))
		Expect(condition(done, batchv1alpha1.ConditionComplete).Message).To(ContainSubstring("2 failures were not accepted by the failure handler within spec.failurePolicy.handlerTimeout"))
		Eventually(eventReasons, 10*time.Second).WithArguments(job).Should(ContainElement("FailureHandlerTimedOut"))
	})
})
