package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

var _ = Describe("The manager's Deployment cache", func() {
	It("holds the worker Deployments, not the cluster's others", func() {
		ctx := context.Background()
		ns := newNamespace("cache")
		other := foreignDeployment(ns, "unrelated")
		Expect(k8s.Create(ctx, other)).To(Succeed())
		job := withWorker(syntheticJob(ns, "cached", map[string]any{"totalItems": 200}), 2)
		Expect(k8s.Create(ctx, job)).To(Succeed())
		Eventually(workers(job), 20*time.Second).Should(BeNumerically(">=", 0))

		cached := func() []string {
			var list appsv1.DeploymentList
			Expect(mgrRun.mgr.GetCache().List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var names []string
			for _, d := range list.Items {
				names = append(names, d.Name)
			}
			return names
		}
		Eventually(cached, 10*time.Second).Should(ConsistOf("cached-workers"))
		Consistently(cached, 2*time.Second, 200*time.Millisecond).ShouldNot(ContainElement("unrelated"))
		Eventually(get, time.Minute).WithArguments(job).Should(haveCondition(batchv1alpha1.ConditionComplete, metav1.ConditionTrue, batchv1alpha1.ReasonCompleted))
	})
})
