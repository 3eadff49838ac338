package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// cancelRecorder records the cancellation calls of the finalizer.
type cancelRecorder struct {
	Orchestrator
	calls []string
	err   error
}

func (c *cancelRecorder) Cancel(_ context.Context, id string) error {
	c.calls = append(c.calls, "Cancel "+id)
	return c.err
}

func (c *cancelRecorder) Terminate(_ context.Context, id, _ string) error {
	c.calls = append(c.calls, "Terminate "+id)
	return c.err
}

// A job deleted before its status recorded a workflow (a start whose pass
// failed after it) still has the policy applied, by its workflow ID.
func TestFinalizeWithoutStatusWorkflow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy batchv1alpha1.CancellationPolicy
		err    error
		want   []string
		gone   bool
	}{
		{"cancel", batchv1alpha1.CancellationCancel, nil, []string{"Cancel "}, true},
		{"terminate", batchv1alpha1.CancellationTerminate, nil, []string{"Terminate "}, true},
		{"abandon", batchv1alpha1.CancellationAbandon, nil, nil, true},
		{"never started: not found is done", batchv1alpha1.CancellationCancel, serviceerror.NewNotFound("workflow not found"), []string{"Cancel "}, true},
		{"Temporal down: the finalizer stays", batchv1alpha1.CancellationCancel, serviceerror.NewUnavailable("connection refused"), []string{"Cancel "}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.CancellationPolicy = tc.policy
				j.Finalizers = []string{batchv1alpha1.Finalizer}
				now := metav1.Now()
				j.DeletionTimestamp = &now
				j.Status = batchv1alpha1.BatchJobStatus{}
			})
			scheme := runtime.NewScheme()
			require.NoError(t, batchv1alpha1.AddToScheme(scheme))
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(job).WithStatusSubresource(job).Build()
			o := &cancelRecorder{err: tc.err}
			r := &BatchJobReconciler{Client: c, Scheme: scheme, Orchestrator: o, Recorder: events.NewFakeRecorder(10), Connection: Connection{Namespace: "default"}}
			_, err := r.finalize(context.Background(), job)
			var want []string
			for _, w := range tc.want {
				want = append(want, w+workflowID(job))
			}
			require.Equal(t, want, o.calls)
			require.Equal(t, tc.gone, err == nil, "%v", err)
		})
	}
}
