// Package chart tests the Helm chart (charts/temporal-batch) and the GitOps
// integration of BatchJob: helm lint and template over the chart's value
// sets, a server-side dry-run of every rendered object against a real
// kube-apiserver (envtest), the Argo CD health check (Lua) and kstatus over
// the status the controller writes, and server-side apply without drift.
//
// The tests that run helm or kube-apiserver are skipped with -short. They
// find helm at $HELM or as the newest bin/helm-v* of the repository (`make
// tools` builds it), and kube-apiserver and etcd at $KUBEBUILDER_ASSETS or
// as the newest bin/k8s-v*.
package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// releaseName and releaseNamespace are those of every render.
const (
	releaseName      = "temporal-batch"
	releaseNamespace = "temporal-batch-system"
	chartDir         = "charts/temporal-batch"
)

// repoRoot is the directory holding go.mod and hack/ above the working
// directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isDir(filepath.Join(dir, "hack")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no repository root (a directory with go.mod and hack/) above the working directory")
		}
		dir = parent
	}
}

// helmBinary is $HELM (relative to the repository root when relative), or
// the newest bin/helm-v* of the repository.
func helmBinary(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	if h := os.Getenv("HELM"); h != "" {
		if !filepath.IsAbs(h) {
			h = filepath.Join(root, h)
		}
		if !isFile(h) {
			t.Fatalf("HELM=%s does not exist: run `make tools`", h)
		}
		return h
	}
	h, err := newestVersioned(filepath.Join(root, "bin"), "helm-", isFile)
	if err != nil {
		t.Fatalf("%v: run `make tools` to build helm, or set HELM", err)
	}
	return h
}

// newestVersioned returns the path under dir named prefix+version with the
// highest version that ok accepts.
func newestVersioned(dir, prefix string, ok func(string) bool) (string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, prefix+"v*"))
	if err != nil {
		return "", err
	}
	type candidate struct {
		path string
		v    *version.Version
	}
	var found []candidate
	for _, p := range paths {
		v, err := version.ParseGeneric(strings.TrimPrefix(filepath.Base(p), prefix))
		if err != nil || !ok(p) {
			continue
		}
		found = append(found, candidate{p, v})
	}
	if len(found) == 0 {
		return "", fmt.Errorf("nothing matches %s", filepath.Join(dir, prefix+"v*"))
	}
	sort.Slice(found, func(i, j int) bool { return found[i].v.LessThan(found[j].v) })
	return found[len(found)-1].path, nil
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs helm and kube-apiserver (skipped with -short)")
	}
}

// helm runs helm in the repository root.
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Dir = repoRoot(t)
	// No user configuration or repositories: the chart has no dependencies.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// valueSet is one way of installing the chart.
type valueSet struct {
	name string
	// file is under the chart's ci/ directory.
	file string
	// set holds more --set arguments.
	set []string
}

// valueSets are the chart's ci/ value files; every test that renders the
// chart goes over all of them.
func valueSets(t testing.TB) []valueSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("%d value sets under %s/ci, want at least 4", len(files), chartDir)
	}
	var sets []valueSet
	for _, f := range files {
		base := filepath.Base(f)
		sets = append(sets, valueSet{name: strings.TrimSuffix(base, "-values.yaml"), file: filepath.Join(chartDir, "ci", base)})
	}
	return sets
}

func (v valueSet) args() []string {
	var args []string
	if v.file != "" {
		args = append(args, "--values", v.file)
	}
	for _, s := range v.set {
		args = append(args, "--set", s)
	}
	return args
}

// render runs helm template and returns the objects it renders.
func render(t testing.TB, vs valueSet) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir, "--namespace", releaseNamespace}, vs.args()...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	objs, err := decodeObjects([]byte(out))
	if err != nil {
		t.Fatalf("helm template with %s renders YAML that does not decode: %v", vs.name, err)
	}
	return objs
}

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		u, err := decodeObject(doc)
		if err != nil {
			return nil, err
		}
		if u != nil {
			objs = append(objs, u)
		}
	}
}

// decodeObject decodes one YAML document as the API machinery does (whole
// numbers become int64); an empty document gives nil.
func decodeObject(doc []byte) (*unstructured.Unstructured, error) {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(string(raw)); s == "null" || s == "{}" {
		return nil, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	if u.GetName() == "" {
		return nil, fmt.Errorf("an object without a name: %s", raw)
	}
	return u, nil
}

// find returns the rendered objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// findOne returns the rendered object of a kind and name, or fails.
func findOne(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func TestChartLintStrict(t *testing.T) {
	skipShort(t)
	if out, err := helm(t, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("helm lint --strict %s: %v\n%s", chartDir, err, out)
	}
	for _, vs := range valueSets(t) {
		args := append([]string{"lint", "--strict", chartDir}, vs.args()...)
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm lint --strict with %s: %v\n%s", vs.name, err, out)
		}
	}
}
