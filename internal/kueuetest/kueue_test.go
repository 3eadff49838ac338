package kueuetest_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/temporal-batch/temporal-batch/internal/kueuetest"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

// The real Kueue manager admits a Workload that fits its ClusterQueue's quota
// and keeps one that does not fit pending.
func TestKueueAdmitsAWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver, etcd and the Kueue manager (skipped with -short)")
	}
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kueuetest.Paths(root); err != nil {
		t.Skipf("skipping the Kueue tests: %v", err)
	}
	assets, err := localenv.KubeAssets(root)
	if err != nil {
		t.Skipf("skipping the Kueue tests: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	began := time.Now()
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kueuetest.Start(ctx, env, c, kueuetest.Options{RepoRoot: root, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
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
