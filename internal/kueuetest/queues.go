package kueuetest

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Queues describe the smallest Kueue setup that admits work: one
// ResourceFlavor, a ClusterQueue with a CPU and memory quota on it, and a
// LocalQueue of the same name in a namespace.
type Queues struct {
	Namespace  string
	LocalQueue string
	// Flavor is the ResourceFlavor's name; default "default-flavor".
	Flavor string
	// FlavorNodeLabels are the flavor's node labels, which Kueue hands to
	// admitted workloads as node selectors.
	FlavorNodeLabels map[string]string
	// CPU and Memory are the ClusterQueue's nominal quota; Memory defaults
	// to 64Gi.
	CPU, Memory string
	// Preemption of lower-priority workloads within the ClusterQueue:
	// "Never" (default) or "LowerPriority".
	WithinClusterQueue string
}

// CreateQueues creates the ResourceFlavor, ClusterQueue and LocalQueue.
func CreateQueues(ctx context.Context, c client.Client, q Queues) error {
	if q.Flavor == "" {
		q.Flavor = "default-flavor"
	}
	if q.Memory == "" {
		q.Memory = "64Gi"
	}
	if q.WithinClusterQueue == "" {
		q.WithinClusterQueue = "Never"
	}
	flavor := &unstructured.Unstructured{}
	flavor.SetGroupVersionKind(ResourceFlavorGVK)
	flavor.SetName(q.Flavor)
	spec := map[string]any{}
	if len(q.FlavorNodeLabels) > 0 {
		labels := map[string]any{}
		for k, v := range q.FlavorNodeLabels {
			labels[k] = v
		}
		spec["nodeLabels"] = labels
	}
	flavor.Object["spec"] = spec

	cq := &unstructured.Unstructured{}
	cq.SetGroupVersionKind(ClusterQueueGVK)
	cq.SetName(q.LocalQueue)
	cq.Object["spec"] = map[string]any{
		"namespaceSelector": map[string]any{},
		"preemption":        map[string]any{"withinClusterQueue": q.WithinClusterQueue},
		"resourceGroups": []any{map[string]any{
			"coveredResources": []any{"cpu", "memory"},
			"flavors": []any{map[string]any{
				"name": q.Flavor,
				"resources": []any{
					map[string]any{"name": "cpu", "nominalQuota": q.CPU},
					map[string]any{"name": "memory", "nominalQuota": q.Memory},
				},
			}},
		}},
	}

	lq := &unstructured.Unstructured{}
	lq.SetGroupVersionKind(LocalQueueGVK)
	lq.SetNamespace(q.Namespace)
	lq.SetName(q.LocalQueue)
	lq.Object["spec"] = map[string]any{"clusterQueue": q.LocalQueue}

	for _, obj := range []*unstructured.Unstructured{flavor, cq, lq} {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

// Admitted reports whether Kueue admitted the Workload: its condition
// Admitted is True.
func Admitted(w *unstructured.Unstructured) bool {
	return conditionTrue(w, "Admitted")
}

// Evicted reports whether Kueue evicted the Workload (preemption, a stopped
// queue...): its condition Evicted is True.
func Evicted(w *unstructured.Unstructured) bool {
	return conditionTrue(w, "Evicted")
}

func conditionTrue(w *unstructured.Unstructured, condition string) bool {
	raw, _, _ := unstructured.NestedSlice(w.Object, "status", "conditions")
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		if m["type"] == condition {
			return m["status"] == "True"
		}
	}
	return false
}
