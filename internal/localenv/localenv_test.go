package localenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestDeploymentRunner runs worker Deployments against a real kube-apiserver
// and etcd and checks what a user of the local environment would see: the
// processes, and the Deployment's status.
func TestDeploymentRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd (skipped with -short)")
	}
	g := NewWithT(t)
	root, err := RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	assets, err := KubeAssets(root)
	g.Expect(err).NotTo(HaveOccurred())
	useExisting := false
	testEnv := &envtest.Environment{BinaryAssetsDirectory: assets, UseExistingCluster: &useExisting}
	cfg, err := testEnv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = testEnv.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	binDir, logDir := t.TempDir(), t.TempDir()
	runner := NewDeploymentRunner(c, RunnerOptions{BinDir: binDir, LogDir: logDir, WorkDir: t.TempDir(), Interval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(ctx) }()
	var everStarted []int
	t.Cleanup(func() {
		cancel()
		<-runDone
		for _, pid := range everStarted {
			if ProcessAlive(pid) {
				t.Errorf("process %d still runs after the runner stopped", pid)
			}
		}
	})

	t.Run("runs replicas as processes and reports them ready", func(t *testing.T) {
		g := NewWithT(t)
		d := workerDeployment("sleepers", 2, []string{"sleep", "300"}, nil)
		g.Expect(c.Create(ctx, d)).To(Succeed())
		key := client.ObjectKeyFromObject(d)

		var pids []int
		g.Eventually(func(g Gomega) {
			pids = runner.Processes(key)
			g.Expect(pids).To(HaveLen(2))
			for _, pid := range pids {
				g.Expect(pid).NotTo(BeZero())
				g.Expect(commandLine(pid)).To(Equal("sleep 300"))
			}
		}).WithTimeout(20 * time.Second).Should(Succeed())
		everStarted = append(everStarted, pids...)
		expectStatus(g, c, key, 2, 2)

		// A process that dies is started again.
		g.Expect(syscall.Kill(pids[0], syscall.SIGKILL)).To(Succeed())
		var restarted []int
		g.Eventually(func(g Gomega) {
			restarted = runner.Processes(key)
			g.Expect(restarted).To(HaveLen(2))
			g.Expect(restarted[0]).NotTo(BeZero())
			g.Expect(restarted[0]).NotTo(Equal(pids[0]))
			g.Expect(restarted[1]).To(Equal(pids[1]))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		everStarted = append(everStarted, restarted[0])
		g.Expect(ProcessAlive(pids[0])).To(BeFalse())
		expectStatus(g, c, key, 2, 2)

		// Scale to 0: every process goes, and the status says so.
		live := runner.Processes(key)
		g.Expect(c.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":0}}`)))).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(runner.Processes(key)).To(BeEmpty())
			for _, pid := range live {
				g.Expect(ProcessAlive(pid)).To(BeFalse(), "process %d", pid)
			}
			g.Expect(runner.Running()).To(BeZero())
		}).WithTimeout(20 * time.Second).Should(Succeed())
		expectStatus(g, c, key, 0, 0)
	})

	t.Run("maps the command to bin/ and passes the literal env", func(t *testing.T) {
		g := NewWithT(t)
		envFile := filepath.Join(t.TempDir(), "env")
		script := fmt.Sprintf("#!/bin/sh\nenv > %s.tmp && mv %s.tmp %s\nexec sleep 300\n", envFile, envFile, envFile)
		g.Expect(os.WriteFile(filepath.Join(binDir, "fake-worker"), []byte(script), 0o755)).To(Succeed())
		env := []corev1.EnvVar{
			{Name: "TEMPORAL_TASK_QUEUE", Value: "pages"},
			{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
		}
		d := workerDeployment("mapped", 1, []string{"/usr/local/bin/fake-worker"}, env)
		g.Expect(c.Create(ctx, d)).To(Succeed())
		key := client.ObjectKeyFromObject(d)

		g.Eventually(func(g Gomega) {
			raw, err := os.ReadFile(envFile)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(strings.Split(string(raw), "\n")).To(ContainElements("TEMPORAL_TASK_QUEUE=pages", "HOSTNAME=mapped-0"))
			g.Expect(string(raw)).NotTo(ContainSubstring("FROM_SECRET"))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		everStarted = append(everStarted, runner.Processes(key)...)
		expectStatus(g, c, key, 1, 1)
		g.Expect(filepath.Join(logDir, "default.mapped-0.log")).To(BeAnExistingFile())
	})

	t.Run("scale-down: SIGTERM, then SIGKILL once terminationGracePeriodSeconds passed", func(t *testing.T) {
		g := NewWithT(t)
		// One worker finishes its page in 1 s after SIGTERM; the other
		// ignores it. Both have 3 s.
		scripts := map[string]string{
			"draining-worker": "#!/bin/sh\ntrap 'sleep 1; exit 0' TERM\nwhile :; do sleep 0.1; done\n",
			"deaf-worker":     "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n",
		}
		pids := map[string]int{}
		for name, script := range scripts {
			g.Expect(os.WriteFile(filepath.Join(binDir, name), []byte(script), 0o755)).To(Succeed())
			d := workerDeployment(name, 1, []string{name}, nil)
			d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptrTo(int64(3))
			g.Expect(c.Create(ctx, d)).To(Succeed())
			expectStatus(g, c, client.ObjectKeyFromObject(d), 1, 1)
			pids[name] = runner.Processes(client.ObjectKeyFromObject(d))[0]
			everStarted = append(everStarted, pids[name])
		}
		stopped := time.Now()
		for name := range scripts {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
			g.Expect(c.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":0}}`)))).To(Succeed())
		}
		g.Eventually(func() bool { return ProcessAlive(pids["draining-worker"]) }).WithTimeout(10 * time.Second).Should(BeFalse())
		drained := time.Since(stopped)
		g.Expect(drained).To(BeNumerically(">=", time.Second), "the draining worker did not get to finish its page")
		g.Expect(ProcessAlive(pids["deaf-worker"])).To(BeTrue(), "killed before its grace period passed")
		g.Eventually(func() bool { return ProcessAlive(pids["deaf-worker"]) }).WithTimeout(10 * time.Second).Should(BeFalse())
		killed := time.Since(stopped)
		g.Expect(killed).To(BeNumerically(">=", 3*time.Second), "killed before its grace period passed")
		g.Eventually(func() string { return lastLine(filepath.Join(logDir, "default.draining-worker-0.log")) }).Should(HaveSuffix("stopped (exit status 0)"))
		g.Eventually(func() string { return lastLine(filepath.Join(logDir, "default.deaf-worker-0.log")) }).Should(HaveSuffix("stopped (signal: killed)"))
		t.Logf("the draining worker exited %.1fs after the scale-down, the deaf one was killed after %.1fs", drained.Seconds(), killed.Seconds())
	})

	t.Run("deletes a Deployment whose owner is gone, and stops its processes", func(t *testing.T) {
		g := NewWithT(t)
		owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "default"}}
		g.Expect(c.Create(ctx, owner)).To(Succeed())
		d := workerDeployment("owned", 1, []string{"sleep", "300"}, nil)
		d.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptrTo(true)}}
		g.Expect(c.Create(ctx, d)).To(Succeed())
		key := client.ObjectKeyFromObject(d)
		expectStatus(g, c, key, 1, 1)
		pids := runner.Processes(key)
		everStarted = append(everStarted, pids...)

		g.Expect(c.Delete(ctx, owner)).To(Succeed())
		g.Eventually(func(g Gomega) {
			err := c.Get(ctx, key, &appsv1.Deployment{})
			g.Expect(client.IgnoreNotFound(err)).To(Succeed())
			g.Expect(err).To(HaveOccurred())
			g.Expect(runner.Processes(key)).To(BeEmpty())
			for _, pid := range pids {
				g.Expect(ProcessAlive(pid)).To(BeFalse())
			}
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})
}

func workerDeployment(name string, replicas int32, command []string, env []corev1.EnvVar) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{ManagedByLabel: ManagedByValue}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptrTo(int64(5)),
					Containers:                    []corev1.Container{{Name: "worker", Image: "unused", Command: command, Env: env}},
				},
			},
		},
	}
}

// expectStatus waits for the Deployment's status to report the replicas for
// its current generation.
func expectStatus(g Gomega, c client.Client, key types.NamespacedName, replicas, ready int32) {
	g.Eventually(func(g Gomega) {
		var d appsv1.Deployment
		g.Expect(c.Get(context.Background(), key, &d)).To(Succeed())
		g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
		g.Expect(d.Status.Replicas).To(Equal(replicas))
		g.Expect(d.Status.UpdatedReplicas).To(Equal(replicas))
		g.Expect(d.Status.ReadyReplicas).To(Equal(ready))
		g.Expect(d.Status.AvailableReplicas).To(Equal(ready))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

func commandLine(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
}

// testLog sends the runner's log to the test's log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func lastLine(path string) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return lines[len(lines)-1]
}

func ptrTo[T any](v T) *T { return &v }
