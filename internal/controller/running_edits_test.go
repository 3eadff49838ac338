package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/examples"
)

// workerDeployment reads the job's worker Deployment.
func workerDeployment(job *batchv1alpha1.BatchJob) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: job.Namespace, Name: job.Name + "-workers"}, &d)
	return &d, err
}

// setDeploymentStatus writes the worker Deployment's status as the
// Deployment controller would (envtest runs none): observed its latest
// spec, with replicas pods of which updated run the latest template.
func setDeploymentStatus(job *batchv1alpha1.BatchJob, replicas, updated, ready int32) {
	EventuallyWithOffset(1, func() error {
		d, err := workerDeployment(job)
		if err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: ready,
		}
		return k8s.Status().Update(context.Background(), d)
	}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
}

func workerStatus(job *batchv1alpha1.BatchJob) batchv1alpha1.WorkerStatus {
	if w := get(job).Status.Workers; w != nil {
		return *w
	}
	return batchv1alpha1.WorkerStatus{}
}

// deleteJob deletes a job and waits until it is gone.
func deleteJob(job *batchv1alpha1.BatchJob) {
	Expect(k8s.Delete(context.Background(), job)).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{}))
	}, 30*time.Second).Should(BeTrue(), "the finalizer was not removed")
}

var _ = Describe("Edits of a running job", func() {
	ctx := context.Background()

	It("rolls a new worker template out, shows the rollout in status, and holds a re-drive asked for after it", func() {
		ns := newNamespace("rollout")
		job := withWorker(syntheticJob(ns, "rolled", map[string]any{"totalItems": 1000000, "itemDelay": "5ms"}), 1)
		job.Spec.Parallelism = ptr(int32(2))
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(workers(job), 20*time.Second).Should(BeEquivalentTo(2))
		Eventually(func() int64 { return get(job).Status.Pages.InFlight }, 20*time.Second).Should(BeNumerically(">", 0))

		d, err := workerDeployment(job)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Spec.Strategy.RollingUpdate).NotTo(BeNil())
		Expect(*d.Spec.Strategy.RollingUpdate.MaxUnavailable).To(Equal(intstr.FromInt32(0)), "a rollout keeps a poller for every slot")
		setDeploymentStatus(job, 2, 2, 2)
		Eventually(workerStatus, 20*time.Second).WithArguments(job).Should(Equal(batchv1alpha1.WorkerStatus{
			Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, TemplateGeneration: 1,
		}))

		By("editing the worker image")
		update(job, func(j *batchv1alpha1.BatchJob) {
			j.Spec.Worker.Template.Spec.Containers[0].Image = "ghcr.io/temporal-batch/example-worker:fixed"
		})
		edited := get(job).Generation
		Expect(edited).To(BeNumerically(">", 1))
		Eventually(func() string {
			d, err := workerDeployment(job)
			if err != nil {
				return err.Error()
			}
			return d.Spec.Template.Spec.Containers[0].Image
		}, 20*time.Second).Should(Equal("ghcr.io/temporal-batch/example-worker:fixed"))
		Eventually(get, 20*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionProgressing, metav1.ConditionTrue, batchv1alpha1.ReasonWorkersRollingOut))
		Expect(workerStatus(job).TemplateGeneration).To(BeEquivalentTo(1), "no pod runs the new template yet")

		By("asking for a re-drive after the rollout")
		update(job, func(j *batchv1alpha1.BatchJob) {
			j.Annotations = map[string]string{batchv1alpha1.AnnotationRedrive: "after-fix", batchv1alpha1.AnnotationRedriveAfterRollout: "true"}
		})

		By("the Deployment replacing one pod of two")
		setDeploymentStatus(job, 3, 1, 3)
		Eventually(func() string { return condition(get(job), batchv1alpha1.ConditionProgressing).Message }, 20*time.Second).Should(And(
			ContainSubstring("1 of 3 workers run it, 3 ready"),
			ContainSubstring(`re-drive "after-fix" waits for the worker rollout`),
		))
		Consistently(func() string { return get(job).Status.LastRedrive }, 2*time.Second, 200*time.Millisecond).Should(BeEmpty())
		Expect(get(job).Status.ObservedGeneration).To(Equal(edited), "the edit itself is acted on")

		By("every pod running the new template")
		setDeploymentStatus(job, 2, 2, 2)
		Eventually(workerStatus, 20*time.Second).WithArguments(job).Should(Equal(batchv1alpha1.WorkerStatus{
			Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, TemplateGeneration: edited,
		}))
		Eventually(func() string { return get(job).Status.LastRedrive }, 20*time.Second).Should(Equal("after-fix"))
		Eventually(get, 20*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionProgressing, metav1.ConditionTrue, batchv1alpha1.ReasonRunning))

		deleteJob(job)
	})

	It("takes a loosened retry policy: a stuck page runs again at the new interval and the job completes", func() {
		ns := newNamespace("retry-edit")
		bug := filepath.Join(GinkgoT().TempDir(), "bug")
		Expect(os.WriteFile(bug, nil, 0o600)).To(Succeed())
		job := syntheticJob(ns, "loosened", map[string]any{
			"totalItems": 1000, "failWhileExists": bug,
			"failPages": map[string]examples.PageFailure{"3": {Type: "Bug"}},
		})
		job.Spec.Retry.MaximumAttempts = 1
		job.Spec.Retry.StuckPageRetryInterval = &metav1.Duration{Duration: time.Hour}
		Expect(k8s.Create(ctx, job)).To(Succeed())

		// Page 3 exhausted its one attempt; the rest drained; the stuck
		// page would wait an hour.
		Eventually(func() batchv1alpha1.PageStatus { return get(job).Status.Pages }, 30*time.Second).Should(And(
			HaveField("Stuck", BeEquivalentTo(1)), HaveField("InFlight", BeZero()), HaveField("Pending", BeZero()),
			HaveField("Completed", BeEquivalentTo(9)),
		))

		By("fixing the cause and retrying stuck pages every second")
		Expect(os.Remove(bug)).To(Succeed())
		update(job, func(j *batchv1alpha1.BatchJob) {
			j.Spec.Retry.StuckPageRetryInterval = &metav1.Duration{Duration: time.Second}
			j.Spec.Retry.MaximumAttempts = 5
		})
		edited := get(job).Generation
		Eventually(func() int64 { return get(job).Status.ObservedGeneration }, 20*time.Second).Should(Equal(edited), "the workflow acknowledged the edit")
		Eventually(get, 30*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
		st := get(job).Status
		Expect(st.Items.Processed).To(BeEquivalentTo(1000))
		Expect(st.Pages.Failed).To(BeZero(), "no re-drive was needed")
		Expect(st.LastRedrive).To(BeEmpty())
	})
})
