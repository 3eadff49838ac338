package kueuetest_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/temporal-batch/temporal-batch/internal/kueuetest"
)

// The real Kueue manager admits a Workload that fits its ClusterQueue's quota
// and keeps one that does not fit pending.
func TestKueueAdmitsAWorkload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	c := kueuetest.StartForTest(ctx, t)
	t.Logf("control plane and Kueue ready in %s", time.Since(began).Round(time.Millisecond))

	g := NewWithT(t)
	g.Expect(kueuetest.CreateQueues(ctx, c, kueuetest.Queues{Namespace: "default", LocalQueue: "team-a", CPU: "2"})).To(Succeed())

	fits := workload("fits", "team-a", 2, "1")
	tooBig := workload("too-big", "team-a", 1, "3")
	g.Expect(c.Create(ctx, fits)).To(Succeed())
	g.Expect(c.Create(ctx, tooBig)).To(Succeed())

	g.Eventually(func() bool {
		return kueuetest.Admitted(get(ctx, g, c, "fits"))
	}, time.Minute, 200*time.Millisecond).Should(BeTrue(), "the Workload that fits is admitted")
	admitted := get(ctx, g, c, "fits")
	cq, _, _ := unstructured.NestedString(admitted.Object, "status", "admission", "clusterQueue")
	g.Expect(cq).To(Equal("team-a"))
	g.Consistently(func() bool {
		return kueuetest.Admitted(get(ctx, g, c, "too-big"))
	}, 2*time.Second, 200*time.Millisecond).Should(BeFalse(), "the Workload over the quota waits")
	t.Logf("admitted in %s after the start", time.Since(began).Round(time.Millisecond))
}

func workload(name, queue string, count int64, cpu string) *unstructured.Unstructured {
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(kueuetest.WorkloadGVK)
	w.SetNamespace("default")
	w.SetName(name)
	w.Object["spec"] = map[string]any{
		"queueName": queue,
		"podSets": []any{map[string]any{
			"name":  "workers",
			"count": count,
			"template": map[string]any{"spec": map[string]any{
				"restartPolicy": string(corev1.RestartPolicyAlways),
				"containers": []any{map[string]any{
					"name": "worker", "image": "worker",
					"resources": map[string]any{"requests": map[string]any{"cpu": cpu}},
				}},
			}},
		}},
	}
	return w
}

func get(ctx context.Context, g Gomega, c client.Client, name string) *unstructured.Unstructured {
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(kueuetest.WorkloadGVK)
	g.Expect(c.Get(ctx, types.NamespacedName{Namespace: "default", Name: name}, w)).To(Succeed())
	return w
}
