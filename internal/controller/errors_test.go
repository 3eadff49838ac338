package controller_test

import (
	"context"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

var _ = Describe("Error paths", func() {
	It("keeps the workflow of a job whose worker Deployment cannot be created, says why, and cancels it on delete", func() {
		ctx := context.Background()
		ns := newNamespace("blocked")
		job := withWorker(syntheticJob(ns, "blocked", map[string]any{"totalItems": 100000, "itemDelay": "5ms"}), 2)
		// A Deployment of the workers' name that is not the job's.
		squatter := foreignDeployment(ns, job.Name+"-workers")
		Expect(k8s.Create(ctx, squatter)).To(Succeed())
		Expect(k8s.Create(ctx, job)).To(Succeed())

		Eventually(get, 30*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionReady, metav1.ConditionFalse, batchv1alpha1.ReasonWorkersUnavailable))
		cur := get(job)
		Expect(cur.Status.Workflow).NotTo(BeNil(), "the started workflow is recorded though the Deployment failed")
		Expect(condition(cur, batchv1alpha1.ConditionReady).Message).To(ContainSubstring(ns + "/" + job.Name + "-workers"))
		Expect(condition(cur, batchv1alpha1.ConditionReady).Message).To(ContainSubstring("not owned by this BatchJob"))
		id := cur.Status.Workflow.ID

		Expect(k8s.Delete(ctx, cur)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{}))
		}, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
		Eventually(workflowStatus, 30*time.Second, 200*time.Millisecond).WithArguments(id).Should(Equal(enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED))
	})

	It("fails a running job whose workflow history is gone with WorkflowNotFound, and a re-drive says its state is lost", func() {
		ctx := context.Background()
		ns := newNamespace("gone")
		job := syntheticJob(ns, "forgotten", map[string]any{"totalItems": 100000, "itemDelay": "5ms"})
		job.Spec.Parallelism = ptr(int32(1))
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(func() int64 { return get(job).Status.Pages.Completed }, 30*time.Second, 200*time.Millisecond).Should(BeNumerically(">", 0))
		id := get(job).Status.Workflow.ID

		// What a namespace's retention does to a workflow's history, or a
		// server whose data was wiped. (The dev server deletes a running
		// workflow at once; a closed one only later.)
		_, err := tc.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
			Namespace: "default", WorkflowExecution: &common.WorkflowExecution{WorkflowId: id},
		})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() bool {
			_, err := tc.DescribeWorkflowExecution(ctx, id, "")
			var nf *serviceerror.NotFound
			return errors.As(err, &nf)
		}, 30*time.Second, 200*time.Millisecond).Should(BeTrue())

		Eventually(get, 30*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionFailed, metav1.ConditionTrue, batchv1alpha1.ReasonWorkflowNotFound))
		cur := get(job)
		Expect(cur.Status.Phase).To(Equal(batchv1alpha1.PhaseFailed))
		Expect(condition(cur, batchv1alpha1.ConditionFailed).Message).To(ContainSubstring("the job's state is lost; create a new BatchJob"))
		Expect(condition(cur, batchv1alpha1.ConditionReady).Reason).To(Equal(batchv1alpha1.ReasonWorkflowNotFound))
		Eventually(eventReasons, 10*time.Second, 200*time.Millisecond).WithArguments(cur).Should(ContainElement("Failed"))

		update(job, func(j *batchv1alpha1.BatchJob) {
			if j.Annotations == nil {
				j.Annotations = map[string]string{}
			}
			j.Annotations[batchv1alpha1.AnnotationRedrive] = "after-retention"
		})
		Eventually(func() string { return condition(get(job), batchv1alpha1.ConditionFailed).Message }, 20*time.Second, 200*time.Millisecond).
			Should(ContainSubstring(`re-drive "after-retention" cannot run`))
		cur = get(job)
		Expect(cur.Status.Phase).To(Equal(batchv1alpha1.PhaseFailed))
		Expect(condition(cur, batchv1alpha1.ConditionFailed).Reason).To(Equal(batchv1alpha1.ReasonWorkflowNotFound))
		Expect(condition(cur, batchv1alpha1.ConditionFailed).Message).To(ContainSubstring("the job's state is lost; create a new BatchJob"))

		// Deleting it finds nothing to cancel and lets it go.
		Expect(k8s.Delete(ctx, cur)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{}))
		}, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
	})
})
