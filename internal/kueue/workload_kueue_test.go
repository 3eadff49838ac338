package kueue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/kueue"
	"github.com/temporal-batch/temporal-batch/internal/kueuetest"
)

// Against the real Kueue manager, with a ClusterQueue whose quota fits two
// jobs' workers: the BatchJobs' Workloads are admitted on a flavor whose
// node labels become the workers' node selector, a third job's Workload
// waits with Kueue's reason, and it is admitted once the operator marks one
// of the first two finished.
func TestWorkloadsAgainstKueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := kueuetest.StartForTest(ctx, t)

	g := NewWithT(t)
	g.Expect(kueuetest.CreateQueues(ctx, c, kueuetest.Queues{
		Namespace: "default", LocalQueue: "batch", CPU: "2",
		Flavor: "spot", FlavorNodeLabels: map[string]string{"pool": "spot"},
	})).To(Succeed())

	// Each job: parallelism 4 at 2 pages per pod, 2 workers of 500m.
	for _, name := range []string{"first", "second", "third"} {
		w, err := kueue.Workload(batchJob(name), workerTemplate("500m"), 2, "", 0)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Create(ctx, w)).To(Succeed())
		if name != "third" {
			g.Eventually(func() bool { return state(ctx, g, c, name).Admitted }, time.Minute, 100*time.Millisecond).Should(BeTrue(), name+" is admitted")
		}
	}
	first := state(ctx, g, c, "first")
	g.Expect(first.ClusterQueue).To(Equal("batch"))
	g.Expect(first.Flavors).To(Equal([]string{"spot"}))
	g.Expect(first.Count).To(Equal(int32(2)))

	flavor := &unstructured.Unstructured{}
	flavor.SetGroupVersionKind(kueue.ResourceFlavorGVK)
	g.Expect(c.Get(ctx, types.NamespacedName{Name: "spot"}, flavor)).To(Succeed())
	placement, err := kueue.PlacementOf([]*unstructured.Unstructured{flavor})
	g.Expect(err).NotTo(HaveOccurred())
	spec := workerTemplate("500m").Spec
	placement.Apply(&spec)
	g.Expect(spec.NodeSelector).To(Equal(map[string]string{"pool": "spot"}))

	g.Eventually(func() string { return state(ctx, g, c, "third").PendingMessage }, time.Minute, 100*time.Millisecond).
		Should(ContainSubstring("insufficient unused quota for cpu"), "the third job waits and Kueue says why")
	g.Consistently(func() bool { return state(ctx, g, c, "third").Admitted }, 2*time.Second, 200*time.Millisecond).Should(BeFalse())

	w := get(ctx, g, c, "first")
	g.Expect(kueue.SetCondition(w, kueue.FinishedCondition("Succeeded", "the BatchJob succeeded", w.GetGeneration()))).To(Succeed())
	g.Expect(c.Status().Update(ctx, w)).To(Succeed())
	g.Eventually(func() bool { return state(ctx, g, c, "third").Admitted }, time.Minute, 100*time.Millisecond).
		Should(BeTrue(), "the third job is admitted once the first finished")
	g.Expect(state(ctx, g, c, "first").Finished).To(BeTrue())

	// Preemption: a queue that preempts lower priorities within it, full
	// with two low-priority jobs; an urgent job evicts one, which is
	// admitted again when the urgent one finishes.
	g.Expect(kueuetest.CreateQueues(ctx, c, kueuetest.Queues{
		Namespace: "default", LocalQueue: "shared", CPU: "2", Flavor: "on-demand", WithinClusterQueue: "LowerPriority",
	})).To(Succeed())
	high := &unstructured.Unstructured{Object: map[string]any{"value": int64(1000), "description": "urgent"}}
	high.SetGroupVersionKind(kueue.WorkloadPriorityClassGVK)
	high.SetName("urgent")
	g.Expect(c.Create(ctx, high)).To(Succeed())
	for _, name := range []string{"low-1", "low-2"} {
		job := batchJob(name)
		job.Labels[kueue.QueueNameLabel] = "shared"
		w, err := kueue.Workload(job, workerTemplate("500m"), 2, "", 0)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Create(ctx, w)).To(Succeed())
		g.Eventually(func() bool { return state(ctx, g, c, name).Admitted }, time.Minute, 100*time.Millisecond).Should(BeTrue(), name+" is admitted")
	}
	urgent := batchJob("urgent")
	urgent.Labels[kueue.QueueNameLabel] = "shared"
	urgent.Labels[kueue.PriorityClassLabel] = "urgent"
	w, err = kueue.Workload(urgent, workerTemplate("1"), 1, "urgent", 1000)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Create(ctx, w)).To(Succeed())
	var victim string
	g.Eventually(func() string {
		for _, name := range []string{"low-1", "low-2"} {
			if s := state(ctx, g, c, name); s.Evicted {
				victim = name
				return s.EvictionReason
			}
		}
		return ""
	}, time.Minute, 100*time.Millisecond).Should(Equal("Preempted"), "a low-priority job is preempted")
	// The operator stops the victim's workers, then gives the quota back.
	w = get(ctx, g, c, victim)
	g.Expect(kueue.Release(w, "Preempted: the workers are stopped")).To(Succeed())
	g.Expect(c.Status().Update(ctx, w)).To(Succeed())
	g.Eventually(func() bool { return state(ctx, g, c, "urgent").Admitted }, time.Minute, 100*time.Millisecond).Should(BeTrue(), "the urgent job is admitted")
	g.Expect(state(ctx, g, c, victim).Admitted).To(BeFalse())

	w = get(ctx, g, c, "urgent")
	g.Expect(kueue.SetCondition(w, kueue.FinishedCondition("Succeeded", "the BatchJob succeeded", w.GetGeneration()))).To(Succeed())
	g.Expect(c.Status().Update(ctx, w)).To(Succeed())
	g.Eventually(func() bool { return state(ctx, g, c, victim).Admitted }, time.Minute, 100*time.Millisecond).
		Should(BeTrue(), "the preempted job is admitted again once the urgent one finished")
}

func batchJob(name string) *batchv1alpha1.BatchJob {
	return &batchv1alpha1.BatchJob{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: name, UID: types.UID(fmt.Sprintf("uid-%s", name)),
		Labels: map[string]string{kueue.QueueNameLabel: "batch"},
	}}
}

func workerTemplate(cpu string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "worker", Image: "worker",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
	}}}}
}

func get(ctx context.Context, g Gomega, c client.Client, job string) *unstructured.Unstructured {
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(kueue.WorkloadGVK)
	g.Expect(c.Get(ctx, types.NamespacedName{Namespace: "default", Name: kueue.WorkloadName(batchJob(job))}, w)).To(Succeed())
	return w
}

func state(ctx context.Context, g Gomega, c client.Client, job string) kueue.State {
	return kueue.Read(get(ctx, g, c, job))
}
