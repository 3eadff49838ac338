package chart

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// controlPlane is a kube-apiserver and etcd shared by the tests of the
// package, started by the first test that needs it.
type controlPlane struct {
	env    *envtest.Environment
	dyn    dynamic.Interface
	mapper meta.RESTMapper

	mu       sync.Mutex
	warnings []string
}

var (
	cpOnce sync.Once
	cp     *controlPlane
	cpErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if cp != nil {
		if err := cp.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	os.Exit(code)
}

// sharedControlPlane starts the control plane once. Namespaces labelled to
// warn on anything the restricted Pod Security Standard forbids are created
// for the release and the watched namespaces of the value sets.
func sharedControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	skipShort(t)
	cpOnce.Do(func() { cpErr = startControlPlane(t) })
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	return cp
}

// startControlPlane sets cp once kube-apiserver runs, for TestMain to stop.
func startControlPlane(t *testing.T) error {
	root := repoRoot(t)
	assets, err := envtestAssets(root)
	if err != nil {
		return err
	}
	c := &controlPlane{env: &envtest.Environment{BinaryAssetsDirectory: assets}}
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	cp = c
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = c
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	if c.mapper, err = apiutil.NewDynamicRESTMapper(cfg, httpClient); err != nil {
		return err
	}
	ctx := context.Background()
	for _, ns := range []string{releaseNamespace, "team-a", "team-b", "samples", "shop"} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ns, "labels": map[string]any{
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
			}},
		}}
		if _, err := c.apply(ctx, obj, false); err != nil {
			return err
		}
	}
	// The Prometheus Operator's CRD, reduced to what admission needs, so that
	// the ServiceMonitor is dry-run like everything else.
	sm, err := os.ReadFile(filepath.Join("testdata", "servicemonitor-crd.yaml"))
	if err != nil {
		return err
	}
	crds, err := decodeObjects(sm)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		if err := c.installCRD(ctx, crd); err != nil {
			return err
		}
	}
	return nil
}

// HandleWarningHeader collects the API server's warnings.
func (c *controlPlane) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = append(c.warnings, text)
}

func (c *controlPlane) takeWarnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.warnings
	c.warnings = nil
	return w
}

// apply server-side applies obj (with strict field validation) and returns
// the object as stored, or as it would be with dryRun.
func (c *controlPlane) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %s names no namespace: GitOps tools and `helm template | kubectl apply` would put it in the current one", gvk.Kind, obj.GetName())
		}
		ri = c.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: "chart-test", Force: ptr.To(true), FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}

// installCRD applies a CRD and waits until it is established.
func (c *controlPlane) installCRD(ctx context.Context, crd *unstructured.Unstructured) error {
	if _, err := c.apply(ctx, crd, false); err != nil {
		return err
	}
	crdResource := c.dyn.Resource(apiextensionsGVR)
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := crdResource.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established: %w", crd.GetName(), err)
	}
	return nil
}

var apiextensionsGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installChartCRDs installs the CRDs the chart renders with its defaults.
func (c *controlPlane) installChartCRDs(t *testing.T) {
	t.Helper()
	crds := find(render(t, valueSet{name: "default"}), "CustomResourceDefinition")
	if len(crds) == 0 {
		t.Fatal("the chart renders no CRD")
	}
	for _, crd := range crds {
		if err := c.installCRD(context.Background(), crd); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChartServerSideDryRun: the API server accepts every object of every
// value set, with strict field validation and without a Pod Security
// warning in namespaces that enforce the restricted standard.
func TestChartServerSideDryRun(t *testing.T) {
	c := sharedControlPlane(t)
	c.installChartCRDs(t)
	ctx := context.Background()

	// PodSecurity admission is on: an unrestricted pod template is warned about.
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "unrestricted", "namespace": releaseNamespace},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "x"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "x"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "x", "image": "x"}}},
			},
		},
	}}
	c.takeWarnings()
	if _, err := c.apply(ctx, bad, true); err != nil {
		t.Fatal(err)
	}
	if w := c.takeWarnings(); len(w) == 0 {
		t.Fatal("the API server does not warn about an unrestricted pod template: Pod Security admission is off, so this test cannot check the chart")
	}

	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			objs := render(t, vs)
			for _, obj := range objs {
				c.takeWarnings()
				if _, err := c.apply(ctx, obj, true); err != nil {
					t.Errorf("server-side dry-run: %v", err)
					continue
				}
				if w := c.takeWarnings(); len(w) > 0 {
					t.Errorf("%s %s: the API server warns: %s", obj.GetKind(), obj.GetName(), strings.Join(w, "; "))
				}
			}
		})
	}
}

// TestServerSideApplyShowsNoDrift: applying the samples, and the chart's
// objects, a second time with server-side apply changes nothing, as
// Argo CD's and Flux's sync loops need.
func TestServerSideApplyShowsNoDrift(t *testing.T) {
	c := sharedControlPlane(t)
	c.installChartCRDs(t)
	ctx := context.Background()

	samples, err := filepath.Glob(filepath.Join(repoRoot(t), "config", "samples", "batch_*.yaml"))
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples under config/samples: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, path := range samples {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := decodeObjects(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, d := range docs {
			d.SetNamespace("samples")
		}
		objs = append(objs, docs...)
	}
	objs = append(objs, render(t, valueSet{name: "default"})...)

	for _, obj := range objs {
		name := obj.GetKind() + " " + obj.GetName()
		first, err := c.apply(ctx, obj, false)
		if err != nil {
			t.Errorf("first apply: %v", err)
			continue
		}
		second, err := c.apply(ctx, obj, false)
		if err != nil {
			t.Errorf("second apply: %v", err)
			continue
		}
		if first.GetResourceVersion() != second.GetResourceVersion() || first.GetGeneration() != second.GetGeneration() {
			t.Errorf("%s drifts: resourceVersion %s -> %s, generation %d -> %d",
				name, first.GetResourceVersion(), second.GetResourceVersion(), first.GetGeneration(), second.GetGeneration())
		}
	}
}

// TestStatusFixturesAreWhatTheAPIServerStores: the GitOps fixtures are
// valid BatchJobs and statuses for the CRD, and kstatus and the Argo CD
// health check give the same answers on the objects the server returns.
func TestStatusFixturesAreWhatTheAPIServerStores(t *testing.T) {
	c := sharedControlPlane(t)
	c.installChartCRDs(t)
	ctx := context.Background()
	jobs := c.dyn.Resource(batchJobGVR).Namespace("shop")

	for _, tc := range gitopsCases {
		t.Run(tc.fixture, func(t *testing.T) {
			fixture := loadFixture(t, tc.fixture)
			obj := fixture.DeepCopy()
			delete(obj.Object, "status")
			unstructured.RemoveNestedField(obj.Object, "metadata", "generation")
			created, err := c.apply(ctx, obj, false)
			if err != nil {
				t.Fatal(err)
			}
			// Bring the generation to the fixture's with no-op spec edits.
			for created.GetGeneration() < fixture.GetGeneration() {
				p := created.GetGeneration() + 100
				if err := unstructured.SetNestedField(created.Object, p, "spec", "parallelism"); err != nil {
					t.Fatal(err)
				}
				if created, err = jobs.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if created.GetGeneration() != fixture.GetGeneration() {
				t.Fatalf("generation %d, want the fixture's %d", created.GetGeneration(), fixture.GetGeneration())
			}
			want, ok := fixture.Object["status"]
			if !ok {
				checkKstatus(t, tc, created)
				return
			}
			created.Object["status"] = want
			stored, err := jobs.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldValidation: metav1.FieldValidationStrict})
			if err != nil {
				t.Fatalf("the API server rejects the fixture's status: %v", err)
			}
			if got := normalize(t, stored.Object["status"]); !reflect.DeepEqual(got, normalize(t, want)) {
				t.Errorf("the API server stores another status than the fixture's:\ngot  %v\nwant %v", got, normalize(t, want))
			}
			checkKstatus(t, tc, stored)
			if got, msg := argoHealth(t, stored); got != tc.argo {
				t.Errorf("Argo CD health on the stored object = %s %q, want %s", got, msg, tc.argo)
			}
		})
	}
	if err := jobs.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
}

var batchJobGVR = schema.GroupVersionResource{Group: "batch.temporalbatch.io", Version: "v1alpha1", Resource: "batchjobs"}

// normalize round-trips through JSON so that numbers compare equal.
func normalize(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// envtestAssets is $KUBEBUILDER_ASSETS (relative to the repository root
// when relative), else the newest bin/k8s-v* holding kube-apiserver and etcd.
func envtestAssets(root string) (string, error) {
	hasBinaries := func(dir string) bool {
		return isFile(filepath.Join(dir, "kube-apiserver")) && isFile(filepath.Join(dir, "etcd"))
	}
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
			// envtest reads the variable itself, from the package directory.
			if err := os.Setenv("KUBEBUILDER_ASSETS", dir); err != nil {
				return "", err
			}
		}
		if !hasBinaries(dir) {
			return "", fmt.Errorf("KUBEBUILDER_ASSETS=%s holds no kube-apiserver and etcd: run `make tools`", dir)
		}
		return dir, nil
	}
	dir, err := newestVersioned(filepath.Join(root, "bin"), "k8s-", hasBinaries)
	if err != nil {
		return "", fmt.Errorf("no kube-apiserver and etcd (%v): run `make tools` to build them", err)
	}
	return dir, nil
}

// TestHelmUpgradeUpgradesAndUninstallKeepsTheCRD installs the chart with
// helm against the API server, upgrades it and uninstalls it: the upgrade
// changes the CRD (it is a template, not in crds/), and uninstalling keeps
// it while removing the rest.
func TestHelmUpgradeUpgradesAndUninstallKeepsTheCRD(t *testing.T) {
	c := sharedControlPlane(t)
	ctx := context.Background()
	const (
		release = "lifecycle"
		ns      = "lifecycle-system"
		crdName = "batchjobs.batch.temporalbatch.io"
	)
	crds := c.dyn.Resource(apiextensionsGVR)
	// A CRD that another test applied has no Helm owner: let helm create it.
	if err := crds.Delete(ctx, crdName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := crds.Get(ctx, crdName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("the CRD is not gone: %v", err)
	}
	t.Cleanup(func() { c.installChartCRDs(t) })

	user, err := c.env.AddUser(envtest.User{Name: "helm", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	// kube-apiserver built from Go modules without version stamps reports
	// v0.0.0, which the chart's kubeVersion (>=1.30) refuses: install a copy
	// without that constraint.
	chart := filepath.Join(t.TempDir(), "temporal-batch")
	if err := os.CopyFS(chart, os.DirFS(filepath.Join(repoRoot(t), chartDir))); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(meta), "\n") {
		if !strings.HasPrefix(line, "kubeVersion:") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := helm(t, append(args, "--kubeconfig", path, "--namespace", ns)...)
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	out := run("install", release, chart, "--create-namespace")
	if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "NOTES:") {
		t.Errorf("helm install printed no deployed status or notes:\n%s", out)
	}
	if _, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Get(ctx, release+"-temporal-batch", metav1.GetOptions{}); err != nil {
		t.Fatalf("the manager Deployment: %v", err)
	}

	run("upgrade", release, chart, "--set-string", `crds.annotations.example\.com/upgraded=yes`)
	crd, err := crds.Get(ctx, crdName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if crd.GetAnnotations()["example.com/upgraded"] != "yes" {
		t.Errorf("helm upgrade did not change the CRD: annotations %v", crd.GetAnnotations())
	}

	run("uninstall", release)
	crd, err = crds.Get(ctx, crdName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("helm uninstall removed the CRD: %v", err)
	}
	if crd.GetDeletionTimestamp() != nil {
		t.Error("helm uninstall is deleting the CRD")
	}
	if _, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Get(ctx, release+"-temporal-batch", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the manager Deployment is still there after uninstall: %v", err)
	}
}

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
