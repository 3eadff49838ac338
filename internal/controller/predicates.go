package controller

import (
	"maps"
	"slices"

	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// jobChanged lets through the BatchJob updates the controller acts on: the
// spec (generation), annotations (the re-drive request is one), the deletion
// timestamp and finalizers. Status-only updates, most of them the
// controller's own writes, are dropped: a status write that triggered the
// next pass would poll a running job as fast as passes complete, whatever
// the poll interval. Running jobs are polled by RequeueAfter alone.
// Creation, deletion and resyncs pass through unfiltered.
var jobChanged = predicate.Funcs{
	UpdateFunc: func(e ctrlevent.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return true
		}
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() ||
			!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
			!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
			!slices.Equal(o.GetFinalizers(), n.GetFinalizers())
	},
}
