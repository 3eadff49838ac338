// Package kueuetest runs the real Kueue manager, built from Go modules by
// `make kueue` into bin/kueue-<version> with its CRDs next to it, against a
// test control plane (envtest), so that the Kueue admission of BatchJobs is
// tested against Kueue itself rather than a fake.
//
// Kueue runs without its webhooks: they are never registered with the
// kube-apiserver, so the objects a test creates must be complete (Kueue's
// defaulting webhook does not fill them in). Kueue still starts its webhook
// server and its internal certificate management, because its manager only
// skips the metrics certificate files under /etc/kueue when internal
// certificate management is on; the certificates go to a directory of the
// test's own.
package kueuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// Namespace is where Kueue keeps its own objects (the webhook certificate's
// Secret).
const Namespace = "kueue-system"

// The Kueue API this package speaks, as unstructured objects: the product's
// go.mod does not depend on Kueue's module.
var (
	ResourceFlavorGVK = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "ResourceFlavor"}
	ClusterQueueGVK   = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "ClusterQueue"}
	LocalQueueGVK     = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "LocalQueue"}
	WorkloadGVK       = schema.GroupVersionKind{Group: "kueue.x-k8s.io", Version: "v1beta2", Kind: "Workload"}
)

// Paths returns the newest Kueue manager binary in repoRoot/bin and the
// directory of its CRDs, or an error that names the make target to run.
func Paths(repoRoot string) (binary, crds string, err error) {
	matches, _ := filepath.Glob(filepath.Join(repoRoot, "bin", "kueue-v*"))
	for i := len(matches) - 1; i >= 0; i-- {
		m := matches[i]
		if strings.HasSuffix(m, "-crds") || strings.HasSuffix(m, ".tmp") {
			continue
		}
		if fi, err := os.Stat(m + "-crds"); err == nil && fi.IsDir() {
			return m, m + "-crds", nil
		}
	}
	return "", "", errors.New("no Kueue manager in bin/: run `make kueue` (it builds bin/kueue-<version> and its CRDs from Go modules)")
}

// CRDs reads Kueue's CRDs from dir. The CRDs that Kueue converts between
// versions get the conversion webhook stanza of a real installation: Kueue's
// certificate rotator waits until it has injected its CA into each of them.
// The URL is never served (the apiserver could not verify Kueue's certificate
// for the loopback address anyway), so the tests only use v1beta2, the
// storage version, for which no conversion happens.
func CRDs(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s: run `make kueue`", dir)
	}
	converted := map[string]bool{"localqueues": true, "clusterqueues": true, "cohorts": true, "workloads": true, "multikueueclusters": true}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, crd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if converted[crd.Spec.Names.Plural] {
			url := "https://127.0.0.1:1/convert"
			crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: &url},
					ConversionReviewVersions: []string{"v1"},
				},
			}
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// Kueue is a running Kueue manager process.
type Kueue struct {
	// Dir holds its configuration, certificates, kubeconfig and log.
	Dir     string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Options say where Kueue runs.
type Options struct {
	// RepoRoot is where bin/kueue-* is looked up.
	RepoRoot string
	// Dir receives the configuration, certificates and log; a test's
	// t.TempDir() or the suite's state directory.
	Dir string
	// Frameworks are the job integrations Kueue manages; default batch/job
	// (Kueue requires at least one). BatchJobs do not need one: the
	// operator creates their Workloads itself.
	Frameworks []string
}

// Start installs Kueue's CRDs into the running envtest control plane, starts
// the Kueue manager with an administrator's kubeconfig for it, and waits
// until Kueue reports ready. Stop ends it.
func Start(ctx context.Context, env *envtest.Environment, c client.Client, opts Options) (*Kueue, error) {
	binary, crdDir, err := Paths(opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	crds, err := CRDs(crdDir)
	if err != nil {
		return nil, err
	}
	if err := checkServerVersion(env.Config); err != nil {
		return nil, err
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{CRDs: crds, MaxTime: time.Minute}); err != nil {
		return nil, fmt.Errorf("install Kueue's CRDs: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	// Kueue's installation ships this Secret empty; the certificate rotator
	// fills it and refuses to start without it.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "kueue-webhook-server-cert"}}
	if err := c.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create the webhook certificate's Secret: %w", err)
	}

	user, err := env.AddUser(envtest.User{Name: "kueue", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add Kueue's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	k := &Kueue{Dir: opts.Dir, LogPath: filepath.Join(opts.Dir, "kueue.log"), exited: make(chan struct{})}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "certs"), 0o700); err != nil {
		return nil, err
	}
	kubeconfigPath := filepath.Join(opts.Dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	healthPort, err := freePort()
	if err != nil {
		return nil, err
	}
	webhookPort, err := freePort()
	if err != nil {
		return nil, err
	}
	frameworks := opts.Frameworks
	if len(frameworks) == 0 {
		frameworks = []string{"batch/job"}
	}
	configPath := filepath.Join(opts.Dir, "config.yaml")
	if err := os.WriteFile(configPath, configuration(opts.Dir, healthPort, webhookPort, frameworks), 0o600); err != nil {
		return nil, err
	}

	logFile, err := os.OpenFile(k.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	k.cmd = exec.Command(binary, "--config", configPath, "--zap-log-level", "info")
	k.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	go func() {
		_ = k.cmd.Wait()
		logFile.Close()
		close(k.exited)
	}()
	go k.mountCertificates(ctx, c, secret)
	if err := k.waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort), time.Minute); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// configuration is Kueue's Configuration for a test: no leader election, no
// metrics server, the webhook server and health probes on free loopback
// ports, and no visibility API server (it would need the aggregation layer).
func configuration(dir string, healthPort, webhookPort int, frameworks []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: %s
manageJobsWithoutQueueName: false
leaderElection:
  leaderElect: false
health:
  healthProbeBindAddress: 127.0.0.1:%d
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: %d
  certDir: %s
internalCertManagement:
  enable: true
featureGates:
  VisibilityOnDemand: false
integrations:
  frameworks:
`, Namespace, healthPort, webhookPort, filepath.Join(dir, "certs"))
	for _, f := range frameworks {
		fmt.Fprintf(&b, "  - %s\n", f)
	}
	return b.Bytes()
}

// mountCertificates does what the kubelet does for Kueue's pod: it writes
// the webhook certificate's Secret, once Kueue's rotator filled it, into the
// certificate directory, where the rotator waits for it before Kueue reports
// ready.
func (k *Kueue) mountCertificates(ctx context.Context, c client.Client, secret *corev1.Secret) {
	dir := filepath.Join(k.Dir, "certs")
	for {
		got := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(secret), got); err == nil && len(got.Data["tls.crt"]) > 0 && len(got.Data["tls.key"]) > 0 {
			for name, data := range got.Data {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					return
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-k.exited:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (k *Kueue) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-k.exited:
			return fmt.Errorf("the Kueue manager exited while starting; its log (%s) ends:\n%s", k.LogPath, tail(k.LogPath, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Kueue manager was not ready after %s; its log (%s) ends:\n%s", timeout, k.LogPath, tail(k.LogPath, 20))
		}
	}
}

// Stop ends the Kueue manager: SIGTERM, then SIGKILL after ten seconds.
func (k *Kueue) Stop() {
	if k == nil || k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.exited
	}
}

// checkServerVersion fails early, with the fix, where Kueue would exit: it
// parses the server's version, which a kube-apiserver built without the
// release's version stamp reports as v0.0.0-master+$Format:%H$.
func checkServerVersion(cfg *rest.Config) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("read the server version: %w", err)
	}
	if strings.Contains(v.GitVersion, "$Format") {
		return fmt.Errorf("kube-apiserver reports version %q, which Kueue cannot parse: it was built before the Makefile stamped its version; rebuild it with `rm bin/k8s-*/kube-apiserver && make tools`", v.GitVersion)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
