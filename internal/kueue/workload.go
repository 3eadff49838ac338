// Package kueue is the BatchJob side of Kueue's contract for custom jobs: the
// Workload that stands for a BatchJob in a Kueue queue, and what the
// operator reads back from it (admitted or not, where, evicted or finished).
// It speaks Kueue's v1beta2 API as unstructured objects, so that the
// product's go.mod does not depend on Kueue's module and the manager works on
// clusters without Kueue's CRDs.
package kueue

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

const (
	// QueueNameLabel on a BatchJob names the LocalQueue (in the job's
	// namespace) that admits it; without it Kueue plays no part.
	QueueNameLabel = "kueue.x-k8s.io/queue-name"
	// PriorityClassLabel on a BatchJob names a WorkloadPriorityClass.
	PriorityClassLabel = "kueue.x-k8s.io/priority-class"
	// PodSetName is the name of the Workload's one pod set: the workers.
	PodSetName = "workers"
)

// The Kueue kinds the operator reads and writes.
var (
	WorkloadGVK              = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "Workload"}
	ResourceFlavorGVK        = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "ResourceFlavor"}
	WorkloadPriorityClassGVK = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "WorkloadPriorityClass"}
)

// QueueName is the LocalQueue a BatchJob asks for, "" when Kueue does not
// admit it.
func QueueName(job *batchv1alpha1.BatchJob) string {
	return job.Labels[QueueNameLabel]
}

// WorkloadName is the name of a BatchJob's Workload, in the job's namespace.
func WorkloadName(job *batchv1alpha1.BatchJob) string {
	return "batchjob-" + job.Name
}

// Workload is the Workload that asks Kueue to admit a BatchJob's workers:
// one pod set, the worker template × replicas. Kueue's defaulting webhook
// is not relied on; priority is the resolved value of the job's
// WorkloadPriorityClass (priorityClass "" for none), as Kueue's own job
// integrations set it.
func Workload(job *batchv1alpha1.BatchJob, template corev1.PodTemplateSpec, replicas int32, priorityClass string, priority int32) (*unstructured.Unstructured, error) {
	podTemplate, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&template)
	if err != nil {
		return nil, fmt.Errorf("convert the worker template: %w", err)
	}
	// The template's metadata is the job's business; Kueue only sizes pods.
	delete(podTemplate, "metadata")
	spec := map[string]any{
		"queueName": QueueName(job),
		"podSets": []any{map[string]any{
			"name":     PodSetName,
			"count":    int64(replicas),
			"template": podTemplate,
		}},
	}
	if priorityClass != "" {
		spec["priorityClassRef"] = map[string]any{"group": "kueue.x-k8s.io", "kind": "WorkloadPriorityClass", "name": priorityClass}
		spec["priority"] = int64(priority)
	}
	w := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	w.SetGroupVersionKind(WorkloadGVK)
	w.SetNamespace(job.Namespace)
	w.SetName(WorkloadName(job))
	w.SetLabels(map[string]string{"batch.temporalbatch.io/job": job.Name})
	w.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion:         batchv1alpha1.GroupVersion.String(),
		Kind:               "BatchJob",
		Name:               job.Name,
		UID:                job.UID,
		Controller:         ptr(true),
		BlockOwnerDeletion: ptr(true),
	}})
	return w, nil
}

// State is what a Workload says about its BatchJob.
type State struct {
	// QuotaReserved and Admitted: Kueue reserved quota and admitted the
	// Workload; the job may run.
	QuotaReserved, Admitted bool
	// Evicted: Kueue took the admission back (preemption, a stopped queue);
	// EvictionReason and EvictionMessage say why.
	Evicted                         bool
	EvictionReason, EvictionMessage string
	// Finished: the operator marked the Workload finished.
	Finished bool
	// ClusterQueue admitted the Workload; "" while it waits.
	ClusterQueue string
	// Flavors are the ResourceFlavors assigned to the worker pod set, sorted.
	Flavors []string
	// Count is the number of workers admitted.
	Count int32
	// PendingMessage is Kueue's reason the Workload waits, from its
	// QuotaReserved condition.
	PendingMessage string
}

// Read reads a Workload's State.
func Read(w *unstructured.Unstructured) State {
	var s State
	for _, c := range conditions(w) {
		switch c.Type {
		case "QuotaReserved":
			s.QuotaReserved = c.Status == metav1.ConditionTrue
			if !s.QuotaReserved {
				s.PendingMessage = c.Message
			}
		case "Admitted":
			s.Admitted = c.Status == metav1.ConditionTrue
		case "Evicted":
			if c.Status == metav1.ConditionTrue {
				s.Evicted, s.EvictionReason, s.EvictionMessage = true, c.Reason, c.Message
			}
		case "Finished":
			s.Finished = c.Status == metav1.ConditionTrue
		}
	}
	s.ClusterQueue, _, _ = unstructured.NestedString(w.Object, "status", "admission", "clusterQueue")
	assignments, _, _ := unstructured.NestedSlice(w.Object, "status", "admission", "podSetAssignments")
	flavors := map[string]bool{}
	for _, a := range assignments {
		m, _ := a.(map[string]any)
		if m == nil || m["name"] != PodSetName {
			continue
		}
		if n, ok, _ := unstructured.NestedInt64(m, "count"); ok {
			s.Count = int32(n)
		}
		fl, _, _ := unstructured.NestedStringMap(m, "flavors")
		for _, f := range fl {
			flavors[f] = true
		}
	}
	for f := range flavors {
		s.Flavors = append(s.Flavors, f)
	}
	sort.Strings(s.Flavors)
	return s
}

// Placement is what the admission's flavors ask of the worker pods, as
// Kueue's job integrations apply it: the flavors' node labels as node
// selectors, their tolerations added to the pods'.
type Placement struct {
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
}

// PlacementOf merges the node labels and tolerations of the admitted
// ResourceFlavors.
func PlacementOf(flavors []*unstructured.Unstructured) (Placement, error) {
	var p Placement
	for _, f := range flavors {
		labels, _, _ := unstructured.NestedStringMap(f.Object, "spec", "nodeLabels")
		for k, v := range labels {
			if p.NodeSelector == nil {
				p.NodeSelector = map[string]string{}
			}
			p.NodeSelector[k] = v
		}
		raw, _, _ := unstructured.NestedSlice(f.Object, "spec", "tolerations")
		for _, r := range raw {
			m, _ := r.(map[string]any)
			var t corev1.Toleration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &t); err != nil {
				return Placement{}, fmt.Errorf("ResourceFlavor %s: %w", f.GetName(), err)
			}
			p.Tolerations = append(p.Tolerations, t)
		}
	}
	return p, nil
}

// Apply adds the placement to a worker pod spec.
func (p Placement) Apply(spec *corev1.PodSpec) {
	for k, v := range p.NodeSelector {
		if spec.NodeSelector == nil {
			spec.NodeSelector = map[string]string{}
		}
		spec.NodeSelector[k] = v
	}
	for _, t := range p.Tolerations {
		if !hasToleration(spec.Tolerations, t) {
			spec.Tolerations = append(spec.Tolerations, t)
		}
	}
}

func hasToleration(ts []corev1.Toleration, t corev1.Toleration) bool {
	for _, have := range ts {
		if have.MatchToleration(&t) && have.Value == t.Value && have.TolerationSeconds == t.TolerationSeconds {
			return true
		}
	}
	return false
}

// FinishedCondition is the condition that tells Kueue a Workload's job is
// over, so that it releases the quota. The operator sets it in the
// Workload's status when the BatchJob succeeds or fails.
func FinishedCondition(reason, message string, generation int64) metav1.Condition {
	return metav1.Condition{
		Type:               "Finished",
		Status:             metav1.ConditionTrue,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
		LastTransitionTime: metav1.Now(),
	}
}

// Release gives an evicted Workload's quota back once the job's workers are
// stopped, as Kueue's own job integrations do: the admission goes, and
// QuotaReserved and Admitted turn False, so that the Workload queues again
// and Kueue admits it anew (the job resumes where it stopped).
func Release(w *unstructured.Unstructured, message string) error {
	unstructured.RemoveNestedField(w.Object, "status", "admission")
	now := metav1.Now()
	if err := SetCondition(w, metav1.Condition{Type: "QuotaReserved", Status: metav1.ConditionFalse, Reason: "Pending", Message: message, ObservedGeneration: w.GetGeneration(), LastTransitionTime: now}); err != nil {
		return err
	}
	return SetCondition(w, metav1.Condition{Type: "Admitted", Status: metav1.ConditionFalse, Reason: "NoReservation", Message: "The workload has no reservation", ObservedGeneration: w.GetGeneration(), LastTransitionTime: now})
}

// SetCondition sets a condition in a Workload's status.
func SetCondition(w *unstructured.Unstructured, c metav1.Condition) error {
	cs := conditions(w)
	replaced := false
	for i := range cs {
		if cs[i].Type == c.Type {
			cs[i], replaced = c, true
		}
	}
	if !replaced {
		cs = append(cs, c)
	}
	raw := make([]any, 0, len(cs))
	for i := range cs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cs[i])
		if err != nil {
			return err
		}
		raw = append(raw, m)
	}
	return unstructured.SetNestedSlice(w.Object, raw, "status", "conditions")
}

func conditions(w *unstructured.Unstructured) []metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(w.Object, "status", "conditions")
	var out []metav1.Condition
	for _, r := range raw {
		m, _ := r.(map[string]any)
		var c metav1.Condition
		if m != nil && runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c) == nil {
			out = append(out, c)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
