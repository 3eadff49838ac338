package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	temporalclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/temporal-batch/temporal-batch/internal/controller"
	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/examples"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
	"github.com/temporal-batch/temporal-batch/internal/manager"
)

// The suite runs the real manager (controller and orchestrator worker)
// against a real kube-apiserver and etcd (envtest) and a real Temporal dev
// server; the page processors run in-process on the jobs' task queues.

var (
	testEnv    *envtest.Environment
	restConfig *rest.Config
	k8s        client.Client
	temporal   *devserver.Server
	tc         temporalclient.Client
	mgrRun     *managerRun
	pageWorker worker.Worker
)

const (
	jobQueue          = "envtest-jobs"
	orchestratorQueue = "envtest-orchestrator"
)

var testIntervals = controller.Intervals{Running: 300 * time.Millisecond, Idle: 2 * time.Second, Stall: time.Minute}

func TestController(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest suite: needs kube-apiserver, etcd and the Temporal dev server (skipped with -short)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx := context.Background()

	assets, err := envtestAssets()
	Expect(err).NotTo(HaveOccurred())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	restConfig, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(restConfig, client.Options{Scheme: manager.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	temporal, err = devserver.Start(ctx, devserver.Options{})
	Expect(err).NotTo(HaveOccurred())
	tc, err = temporal.Dial(ctx)
	Expect(err).NotTo(HaveOccurred())

	pageWorker = worker.New(tc, jobQueue, worker.Options{MaxConcurrentActivityExecutionSize: 16})
	examples.Register(pageWorker)
	Expect(pageWorker.Start()).To(Succeed())

	mgrRun = startManager(managerOptions(temporal.Address))
})

var _ = AfterSuite(func() {
	if mgrRun != nil {
		mgrRun.stop()
	}
	if pageWorker != nil {
		pageWorker.Stop()
	}
	if tc != nil {
		tc.Close()
	}
	if temporal != nil {
		temporal.Stop()
	}
	if kubeconfigPath != "" {
		_ = os.Remove(kubeconfigPath)
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
	checkRole()
})

func managerOptions(address string, namespaces ...string) manager.Options {
	return manager.Options{
		TemporalAddress:              address,
		TemporalNamespace:            "default",
		OrchestratorTaskQueue:        orchestratorQueue + "-" + strings.ReplaceAll(address, ":", "-"),
		Intervals:                    testIntervals,
		ReconcileTimeout:             20 * time.Second,
		MaxConcurrentReconciles:      4,
		WatchNamespaces:              namespaces,
		MetricsAddr:                  "0",
		ProbeAddr:                    "0",
		SkipControllerNameValidation: true,
	}
}

// managerRun is a manager running in the background.
type managerRun struct {
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan error
	tc     temporalclient.Client
}

func startManager(opts manager.Options) *managerRun {
	return startManagerOn(recording(restConfig), opts)
}

// startManagerOn starts a manager that reaches the API through cfg.
func startManagerOn(cfg *rest.Config, opts manager.Options) *managerRun {
	mgr, mtc, err := manager.New(cfg, opts)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	run := &managerRun{mgr: mgr, cancel: cancel, done: make(chan error, 1), tc: mtc}
	go func() {
		defer GinkgoRecover()
		run.done <- mgr.Start(ctx)
	}()
	return run
}

func (m *managerRun) stop() {
	m.cancel()
	select {
	case err := <-m.done:
		Expect(err).NotTo(HaveOccurred())
	case <-time.After(60 * time.Second):
		Fail("manager did not stop within 60s")
	}
	m.tc.Close()
}

// envtestAssets finds kube-apiserver, etcd and kubectl: $KUBEBUILDER_ASSETS,
// or bin/k8s-* of the repository.
func envtestAssets() (string, error) {
	root, err := localenv.RepoRoot()
	if err != nil {
		return "", err
	}
	return localenv.KubeAssets(root)
}

func kubectlPath() string {
	dir, err := envtestAssets()
	Expect(err).NotTo(HaveOccurred())
	return filepath.Join(dir, "kubectl")
}

var nsCounter int

// newNamespace creates a namespace of the test's own.
func newNamespace(prefix string) string {
	nsCounter++
	name := fmt.Sprintf("%s-%d-%d", prefix, GinkgoParallelProcess(), nsCounter)
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

var kubeconfigPath string

// kubeconfig writes a kubeconfig of an admin user of the test control plane.
func kubeconfig() string {
	if kubeconfigPath != "" {
		return kubeconfigPath
	}
	user, err := testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	raw, err := user.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(os.TempDir(), fmt.Sprintf("envtest-kubeconfig-%d", os.Getpid()))
	Expect(os.WriteFile(path, raw, 0o600)).To(Succeed())
	kubeconfigPath = path
	return path
}

func newWorker(queue string) worker.Worker {
	w := worker.New(tc, queue, worker.Options{MaxConcurrentActivityExecutionSize: 16})
	examples.Register(w)
	Expect(w.Start()).To(Succeed())
	return w
}

// foreignDeployment is a Deployment no BatchJob owns.
func foreignDeployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example/other:1"}}},
			},
		},
	}
}
