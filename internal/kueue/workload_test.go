package kueue_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/temporal-batch/temporal-batch/internal/kueue"
)

func TestWorkloadOfABatchJob(t *testing.T) {
	job := batchJob("nightly")
	job.Labels[kueue.PriorityClassLabel] = "urgent"
	w, err := kueue.Workload(job, workerTemplate("250m"), 3, "urgent", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if w.GetName() != "batchjob-nightly" || w.GetNamespace() != "default" {
		t.Errorf("name %s/%s, want default/batchjob-nightly", w.GetNamespace(), w.GetName())
	}
	owners := w.GetOwnerReferences()
	if len(owners) != 1 || owners[0].Kind != "BatchJob" || owners[0].Name != "nightly" || owners[0].Controller == nil || !*owners[0].Controller {
		t.Errorf("owner references %+v, want the BatchJob as controller", owners)
	}
	if q, _, _ := unstructured.NestedString(w.Object, "spec", "queueName"); q != "batch" {
		t.Errorf("queueName %q, want batch", q)
	}
	if p, _, _ := unstructured.NestedInt64(w.Object, "spec", "priority"); p != 1000 {
		t.Errorf("priority %d, want 1000", p)
	}
	sets, _, _ := unstructured.NestedSlice(w.Object, "spec", "podSets")
	if len(sets) != 1 {
		t.Fatalf("pod sets %v, want one", sets)
	}
	set := sets[0].(map[string]any)
	if set["name"] != kueue.PodSetName || set["count"] != int64(3) {
		t.Errorf("pod set %v, want %s × 3", set, kueue.PodSetName)
	}
	containers, _, _ := unstructured.NestedSlice(set, "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("containers %v, want the worker template's", containers)
	}
	if cpu, _, _ := unstructured.NestedString(containers[0].(map[string]any), "resources", "requests", "cpu"); cpu != "250m" {
		t.Errorf("cpu request %q, want the template's 250m", cpu)
	}
}

func TestPlacementOfTheAdmittedFlavors(t *testing.T) {
	flavor := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"nodeLabels":  map[string]any{"pool": "spot"},
		"tolerations": []any{map[string]any{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}},
	}}}
	flavor.SetGroupVersionKind(kueue.ResourceFlavorGVK)
	flavor.SetName("spot")
	p, err := kueue.PlacementOf([]*unstructured.Unstructured{flavor})
	if err != nil {
		t.Fatal(err)
	}
	spec := corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"}}
	p.Apply(&spec)
	p.Apply(&spec) // applying twice changes nothing: the Deployment does not roll
	if len(spec.NodeSelector) != 2 || spec.NodeSelector["pool"] != "spot" || spec.NodeSelector["zone"] != "a" {
		t.Errorf("node selector %v, want the template's and the flavor's", spec.NodeSelector)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "spot" {
		t.Errorf("tolerations %v, want the flavor's once", spec.Tolerations)
	}
}

func TestReadAWaitingWorkload(t *testing.T) {
	w := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": []any{
		map[string]any{"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": "insufficient unused quota for cpu", "lastTransitionTime": "2026-01-01T00:00:00Z"},
	}}}}
	s := kueue.Read(w)
	if s.Admitted || s.QuotaReserved || s.PendingMessage != "insufficient unused quota for cpu" {
		t.Errorf("state %+v, want waiting with Kueue's message", s)
	}
	if err := kueue.Release(w, "stopped"); err != nil {
		t.Fatal(err)
	}
	if s := kueue.Read(w); s.Admitted || s.QuotaReserved || s.ClusterQueue != "" {
		t.Errorf("released state %+v, want no reservation", s)
	}
}
