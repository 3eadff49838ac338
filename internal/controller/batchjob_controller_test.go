package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/examples"
)

func syntheticJob(ns, name string, args map[string]any) *batchv1alpha1.BatchJob {
	raw, err := json.Marshal(args)
	Expect(err).NotTo(HaveOccurred())
	return &batchv1alpha1.BatchJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1alpha1.BatchJobSpec{
			TaskQueue: jobQueue,
			Processor: batchv1alpha1.ProcessorSpec{
				Name:     examples.NameSynthetic,
				PageSize: 100,
				Args:     &apiextensionsv1.JSON{Raw: raw},
			},
			Parallelism: ptr(int32(4)),
			Retry: batchv1alpha1.RetrySpec{
				InitialInterval: &metav1.Duration{Duration: 100 * time.Millisecond},
				MaximumInterval: &metav1.Duration{Duration: time.Second},
			},
		},
	}
}

func withWorker(job *batchv1alpha1.BatchJob, pagesPerPod int32) *batchv1alpha1.BatchJob {
	job.Spec.Worker = &batchv1alpha1.WorkerSpec{
		PagesPerPod: pagesPerPod,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "worker", Image: "ghcr.io/temporal-batch/example-worker:latest",
			Env: []corev1.EnvVar{{Name: "TEMPORAL_ADDRESS", Value: "overridden"}, {Name: "EXTRA", Value: "kept"}},
		}}}},
	}
	return job
}

func get(job *batchv1alpha1.BatchJob) *batchv1alpha1.BatchJob {
	var cur batchv1alpha1.BatchJob
	ExpectWithOffset(1, k8s.Get(context.Background(), client.ObjectKeyFromObject(job), &cur)).To(Succeed())
	return &cur
}

func condition(job *batchv1alpha1.BatchJob, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(job.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func haveCondition(typ string, status metav1.ConditionStatus, reason string) OmegaMatcher {
	return WithTransform(func(j *batchv1alpha1.BatchJob) string {
		c := condition(j, typ)
		return fmt.Sprintf("%s/%s", c.Status, c.Reason)
	}, Equal(fmt.Sprintf("%s/%s", status, reason)))
}

// update retries a spec change on conflict, as kubectl edit would.
func update(job *batchv1alpha1.BatchJob, mutate func(*batchv1alpha1.BatchJob)) {
	EventuallyWithOffset(1, func() error {
		cur := get(job)
		mutate(cur)
		return k8s.Update(context.Background(), cur)
	}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
}

func workers(job *batchv1alpha1.BatchJob) func() int32 {
	return func() int32 {
		var d appsv1.Deployment
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: job.Namespace, Name: job.Name + "-workers"}, &d); err != nil {
			return -1
		}
		return *d.Spec.Replicas
	}
}

func workflowStatus(id string) enumspb.WorkflowExecutionStatus {
	desc, err := tc.DescribeWorkflowExecution(context.Background(), id, "")
	Expect(err).NotTo(HaveOccurred())
	return desc.GetWorkflowExecutionInfo().GetStatus()
}

func eventReasons(job *batchv1alpha1.BatchJob) []string {
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(job.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == job.Name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

var _ = Describe("BatchJob", func() {
	ctx := context.Background()

	It("runs a synthetic job to Complete with exact counters", func() {
		ns := newNamespace("complete")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "inflate", map[string]any{"totalItems": 5000, "ledger": ledger, "failItems": map[string]string{"17": "BadPrice"}})
		Expect(k8s.Create(ctx, job)).To(Succeed())

		Eventually(func() *batchv1alpha1.WorkflowRef { return get(job).Status.Workflow }, 20*time.Second).ShouldNot(BeNil())
		Eventually(get, time.Minute, 200*time.Millisecond).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))

		done := get(job)
		Expect(done.Status.Phase).To(Equal(batchv1alpha1.PhaseSucceeded))
		Expect(done.Status.Pages.Completed).To(BeEquivalentTo(50))
		Expect(done.Status.Items.Processed).To(BeEquivalentTo(4999))
		Expect(done.Status.Items.Failed).To(BeEquivalentTo(1))
		Expect(done.Status.Failures.ByType).To(Equal(map[string]int64{"BadPrice": 1}))
		Expect(done.Status.Failures.Recent).To(HaveLen(1))
		Expect(done.Status.Failures.Recent[0].Item).To(Equal("17"))
		Expect(done.Status.Workflow.ID).To(Equal(fmt.Sprintf("batchjob/%s/inflate/%s", ns, done.UID)))
		Expect(done.Status.CompletionTime).NotTo(BeNil())
		Expect(done.Status.ObservedGeneration).To(Equal(done.Generation))
		Expect(done.Finalizers).To(ContainElement(batchv1alpha1.Finalizer))
		for _, typ := range []string{batchv1alpha1.ConditionComplete, batchv1alpha1.ConditionFailed, batchv1alpha1.ConditionSuspended, batchv1alpha1.ConditionProgressing, batchv1alpha1.ConditionReady} {
			Expect(condition(done, typ).ObservedGeneration).To(Equal(done.Generation), typ)
		}
		Expect(condition(done, batchv1alpha1.ConditionFailed).Status).To(Equal(metav1.ConditionFalse))
		Eventually(eventReasons, 10*time.Second).WithArguments(job).Should(ContainElements("Started", "Completed"))

		lines, err := os.ReadFile(ledger)
		Expect(err).NotTo(HaveOccurred())
		Expect(countLines(lines)).To(BeNumerically(">=", 4999))
	})

	It("takes parallelism edits, suspend and resume to the workflow and the worker Deployment", func() {
		ns := newNamespace("scale")
		job := withWorker(syntheticJob(ns, "scaled", map[string]any{"totalItems": 20000, "itemDelay": "2ms"}), 2)
		job.Spec.Parallelism = ptr(int32(2))
		Expect(k8s.Create(ctx, job)).To(Succeed())

		Eventually(workers(job), 20*time.Second).Should(BeEquivalentTo(1))
		var d appsv1.Deployment
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "scaled-workers"}, &d)).To(Succeed())
		env := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		Expect(env).To(HaveKeyWithValue("TEMPORAL_ADDRESS", temporal.Address))
		Expect(env).To(HaveKeyWithValue("TEMPORAL_TASK_QUEUE", jobQueue))
		Expect(env).To(HaveKeyWithValue("TEMPORAL_BATCH_PAGES_PER_POD", "2"))
		Expect(env).To(HaveKeyWithValue("TEMPORAL_BATCH_JOB", ns+"/scaled"))
		Expect(env).To(HaveKeyWithValue("EXTRA", "kept"))
		Expect(metav1.IsControlledBy(&d, get(job))).To(BeTrue())

		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Parallelism = ptr(int32(8)) })
		Eventually(func() int32 { return get(job).Status.Parallelism.Desired }, 20*time.Second).Should(BeEquivalentTo(8))
		Eventually(workers(job), 20*time.Second).Should(BeEquivalentTo(4))
		Eventually(func() int32 { return get(job).Status.Parallelism.MaxAchieved }, 20*time.Second).Should(BeNumerically(">", 2))

		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = true })
		Eventually(get, 20*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionSuspended, metav1.ConditionTrue, batchv1alpha1.ReasonSuspended))
		Eventually(func() int64 { return get(job).Status.Pages.InFlight }, 20*time.Second).Should(BeZero())
		Eventually(workers(job), 20*time.Second).Should(BeZero())
		paused := get(job).Status.Pages.Completed
		Consistently(func() int64 { return get(job).Status.Pages.Completed }, 2*time.Second, 200*time.Millisecond).Should(Equal(paused))
		Expect(get(job).Status.Phase).To(Equal(batchv1alpha1.PhaseSuspended))

		update(job, func(j *batchv1alpha1.BatchJob) { j.Spec.Suspend = false })
		Eventually(workers(job), 20*time.Second).Should(BeEquivalentTo(4))
		Eventually(get, 2*time.Minute, 300*time.Millisecond).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
		Expect(get(job).Status.Items.Processed).To(BeEquivalentTo(20000))
		Eventually(workers(job), 20*time.Second).Should(BeZero())
		Expect(eventReasons(job)).To(ContainElements("Suspended", "Resumed", "ParallelismChanged"))
	})

	DescribeTable("deleting a running job applies its cancellationPolicy",
		func(policy batchv1alpha1.CancellationPolicy, want enumspb.WorkflowExecutionStatus) {
			ns := newNamespace("delete")
			job := syntheticJob(ns, "doomed", map[string]any{"totalItems": 100000, "itemDelay": "5ms"})
			job.Spec.CancellationPolicy = policy
			job.Spec.Parallelism = ptr(int32(2))
			Expect(k8s.Create(ctx, job)).To(Succeed())
			Eventually(func() int64 { return get(job).Status.Pages.InFlight }, 20*time.Second).Should(BeNumerically(">", 0))
			id := get(job).Status.Workflow.ID

			Expect(k8s.Delete(ctx, job)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{}))
			}, 30*time.Second).Should(BeTrue(), "the finalizer was not removed")
			Eventually(workflowStatus, 30*time.Second).WithArguments(id).Should(Equal(want))
			if policy == batchv1alpha1.CancellationAbandon {
				Expect(tc.TerminateWorkflow(ctx, id, "", "test over")).To(Succeed())
			}
		},
		Entry("Cancel", batchv1alpha1.CancellationCancel, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED),
		Entry("Terminate", batchv1alpha1.CancellationTerminate, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED),
		Entry("Abandon", batchv1alpha1.CancellationAbandon, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING),
	)

	It("deletes a finished job after ttlSecondsAfterFinished", func() {
		ns := newNamespace("ttl")
		job := syntheticJob(ns, "shortlived", map[string]any{"totalItems": 300})
		job.Spec.TTLSecondsAfterFinished = ptr(int32(2))
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(get, 30*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
		finishedAt := get(job).Status.CompletionTime.Time
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.BatchJob{}))
		}, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
		// completionTime has second precision.
		Expect(time.Since(finishedAt)).To(BeNumerically(">=", time.Second), "deleted before the TTL passed")
	})

	It("adopts the running workflow after a manager restart", func() {
		ns := newNamespace("restart")
		ledger := filepath.Join(GinkgoT().TempDir(), "ledger")
		job := syntheticJob(ns, "survivor", map[string]any{"totalItems": 8000, "itemDelay": "3ms", "ledger": ledger})
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(func() int64 { return get(job).Status.Pages.Completed }, 30*time.Second).Should(BeNumerically(">", 3))
		before := get(job).Status.Workflow

		mgrRun.stop()
		mgrRun = startManager(managerOptions(temporal.Address))

		Eventually(get, 2*time.Minute, 300*time.Millisecond).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
		done := get(job)
		Expect(done.Status.Workflow.RunID).To(Equal(before.RunID), "a second workflow was started")
		Expect(done.Status.Items.Processed).To(BeEquivalentTo(8000))
		Expect(done.Status.Pages.Completed).To(BeEquivalentTo(80))
		Expect(executions(before.ID)).To(Equal(1))
	})

	It("applies a sample with kubectl and runs it to Complete", func() {
		ns := newNamespace("sample")
		sample := filepath.Join("..", "..", "config", "samples", "batch_v1alpha1_batchjob_synthetic.yaml")
		raw, err := os.ReadFile(sample)
		Expect(err).NotTo(HaveOccurred())
		var job batchv1alpha1.BatchJob
		Expect(yaml.Unmarshal(raw, &job)).To(Succeed())
		// The sample's worker pods cannot run here: its page processors run in-process.
		w := startPageWorker(job.Spec.TaskQueue)
		defer w.Stop()

		out, err := exec.Command(kubectlPath(), "--kubeconfig", kubeconfig(), "apply", "-n", ns, "-f", sample).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		job.Namespace = ns
		Eventually(get, 3*time.Minute, time.Second).WithArguments(&job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
		out, err = exec.Command(kubectlPath(), "--kubeconfig", kubeconfig(), "wait", "-n", ns, "--for=condition=Complete", "--timeout=10s", "batchjob/"+job.Name).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		out, err = exec.Command(kubectlPath(), "--kubeconfig", kubeconfig(), "get", "tbj", "-n", ns).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(MatchRegexp(`(?m)^NAME\s+PHASE\s+PAGES\s+ITEMS\s+FAILED\s+PARALLELISM\s+AGE`))
		Expect(string(out)).To(ContainSubstring("Succeeded"))
	})
})

var _ = Describe("Temporal unavailable", Ordered, func() {
	It("reports the condition while Temporal is down, then recovers without losing the job", func() {
		ctx := context.Background()
		port, err := devserver.FreePort()
		Expect(err).NotTo(HaveOccurred())
		address := fmt.Sprintf("127.0.0.1:%d", port)
		ns := newNamespace("down")
		// The suite's manager steps aside for one pointed at a Temporal that
		// is not there yet.
		mgrRun.stop()
		run := startManager(managerOptions(address))
		defer func() {
			run.stop()
			mgrRun = startManager(managerOptions(temporal.Address))
		}()

		job := syntheticJob(ns, "patient", map[string]any{"totalItems": 1000})
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(get, 30*time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionReady, metav1.ConditionFalse, batchv1alpha1.ReasonTemporalUnavailable))
		Expect(get(job).Status.Phase).To(Equal(batchv1alpha1.PhasePending))
		Expect(condition(get(job), batchv1alpha1.ConditionReady).Message).To(ContainSubstring("Temporal does not answer"))

		srv, err := devserver.Start(ctx, devserver.Options{Port: port})
		Expect(err).NotTo(HaveOccurred())
		defer srv.Stop()
		c, err := srv.Dial(ctx)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		w := worker.New(c, jobQueue, worker.Options{})
		examples.Register(w)
		Expect(w.Start()).To(Succeed())
		defer w.Stop()

		Eventually(get, 3*time.Minute, time.Second).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
		Expect(get(job).Status.Items.Processed).To(BeEquivalentTo(1000))
	})
})

func executions(id string) int {
	resp, err := tc.WorkflowService().ListWorkflowExecutions(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: "default", Query: fmt.Sprintf("WorkflowId = '%s'", id),
	})
	Expect(err).NotTo(HaveOccurred())
	return len(resp.GetExecutions())
}

func startPageWorker(queue string) interface{ Stop() } { return newWorker(queue) }

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

func ptr[T any](v T) *T { return &v }
