package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

func TestJobChanged(t *testing.T) {
	base := func() *batchv1alpha1.BatchJob {
		j := planJobFixture()
		j.Generation = 3
		j.Finalizers = []string{batchv1alpha1.Finalizer}
		j.Annotations = map[string]string{"team": "billing"}
		j.Status.Phase = batchv1alpha1.PhaseRunning
		return j
	}
	tests := []struct {
		name   string
		mutate func(*batchv1alpha1.BatchJob)
		want   bool
	}{
		{"status only: the controller's own write", func(j *batchv1alpha1.BatchJob) {
			j.Status.Pages.Completed = 42
			j.ResourceVersion = "99"
		}, false},
		{"labels only: nothing the controller reads", func(j *batchv1alpha1.BatchJob) { j.Labels = map[string]string{"x": "y"} }, false},
		{"spec edit", func(j *batchv1alpha1.BatchJob) { j.Generation = 4 }, true},
		{"re-drive asked", func(j *batchv1alpha1.BatchJob) { j.Annotations[batchv1alpha1.AnnotationRedrive] = "r1" }, true},
		{"annotation removed", func(j *batchv1alpha1.BatchJob) { j.Annotations = nil }, true},
		{"deletion", func(j *batchv1alpha1.BatchJob) {
			now := metav1.NewTime(time.Now())
			j.DeletionTimestamp = &now
		}, true},
		{"finalizer removed by someone else", func(j *batchv1alpha1.BatchJob) { j.Finalizers = nil }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, cur := base(), base()
			tt.mutate(cur)
			require.Equal(t, tt.want, jobChanged.Update(ctrlevent.UpdateEvent{ObjectOld: old, ObjectNew: cur}))
		})
	}
	require.True(t, jobChanged.Create(ctrlevent.CreateEvent{Object: base()}))
	require.True(t, jobChanged.Delete(ctrlevent.DeleteEvent{Object: base()}))
}
