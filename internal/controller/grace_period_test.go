package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

var _ = Describe("Worker grace periods", func() {
	It("warns with an event when the template's pod grace period is not longer than its worker's", func() {
		ctx := context.Background()
		ns := newNamespace("grace")
		job := withWorker(syntheticJob(ns, "hasty", map[string]any{"totalItems": 100}), 1)
		job.Spec.Worker.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
		c := &job.Spec.Worker.Template.Spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: processor.EnvGracePeriod, Value: "30s"})
		Expect(k8s.Create(ctx, job)).To(Succeed())

		var note string
		Eventually(func(g Gomega) {
			var list eventsv1.EventList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			for _, e := range list.Items {
				if e.Regarding.Name == job.Name && e.Reason == "GracePeriodTooShort" {
					g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
					note = e.Note
				}
			}
			g.Expect(note).NotTo(BeEmpty())
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(note).To(ContainSubstring(`container "worker" sets TEMPORAL_BATCH_GRACE_PERIOD=30s`))
		Expect(note).To(ContainSubstring("Set terminationGracePeriodSeconds to at least 40"))

		By("keeping the template's values: the workers run as asked")
		var d appsv1.Deployment
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: job.Name + "-workers"}, &d)).To(Succeed())
		Expect(d.Spec.Template.Spec.TerminationGracePeriodSeconds).To(HaveValue(BeEquivalentTo(30)))
		Expect(d.Spec.Template.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: processor.EnvGracePeriod, Value: "30s"}))
	})
})
