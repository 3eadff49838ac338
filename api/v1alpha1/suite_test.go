package v1alpha1_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
)

// The suite installs the generated CRD into a real kube-apiserver (envtest) and
// checks what users meet at admission: validation messages, immutable fields,
// schema defaults, printer columns and the samples under config/samples.

const testNamespace = "batchjob-admission"

var (
	repoRoot  string
	assetsDir string
	testEnv   *envtest.Environment
	k8sClient client.Client
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestAdmission(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "BatchJob admission suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())

	var err error
	repoRoot, err = findRepoRoot()
	Expect(err).NotTo(HaveOccurred())
	assetsDir, err = envtestAssets(repoRoot)
	Expect(err).NotTo(HaveOccurred())

	testEnv = &envtest.Environment{
		BinaryAssetsDirectory: assetsDir,
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "starting envtest and installing the BatchJob CRD")

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	Expect(batchv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// findRepoRoot walks up from the working directory to the directory holding
// hack/ and go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isDir(filepath.Join(dir, "hack")) && isFile(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no repository root (a directory with hack/ and go.mod) above the working directory")
		}
		dir = parent
	}
}

// envtestAssets returns the directory holding kube-apiserver and etcd:
// $KUBEBUILDER_ASSETS when set (a relative path is taken from the repository
// root), else the newest bin/k8s-v* of the repository.
func envtestAssets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
			// envtest reads the variable itself and would resolve it from
			// the package directory.
			if err := os.Setenv("KUBEBUILDER_ASSETS", dir); err != nil {
				return "", err
			}
		}
		if !hasEnvtestBinaries(dir) {
			return "", fmt.Errorf("KUBEBUILDER_ASSETS=%s holds no kube-apiserver and etcd: run `make tools`", dir)
		}
		return dir, nil
	}
	dirs, err := filepath.Glob(filepath.Join(root, "bin", "k8s-v*"))
	if err != nil {
		return "", err
	}
	type candidate struct {
		dir string
		v   *version.Version
	}
	var found []candidate
	for _, d := range dirs {
		v, err := version.ParseGeneric(filepath.Base(d)[len("k8s-"):])
		if err != nil || !hasEnvtestBinaries(d) {
			continue
		}
		found = append(found, candidate{d, v})
	}
	if len(found) == 0 {
		return "", fmt.Errorf("no kube-apiserver and etcd under %s: run `make tools` to build them",
			filepath.Join(root, "bin", "k8s-v*"))
	}
	sort.Slice(found, func(i, j int) bool { return found[i].v.LessThan(found[j].v) })
	return found[len(found)-1].dir, nil
}

func hasEnvtestBinaries(dir string) bool {
	return isFile(filepath.Join(dir, "kube-apiserver")) && isFile(filepath.Join(dir, "etcd"))
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func TestEnvtestAssetsSaysHowToGetThem(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin", "k8s-v1.37.2"), 0o755); err != nil {
		t.Fatal(err)
	}
	// kube-apiserver alone is not enough: envtest needs etcd too.
	if err := os.WriteFile(filepath.Join(root, "bin", "k8s-v1.37.2", "kube-apiserver"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := envtestAssets(root)
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("envtestAssets() error = %v, want one that says to run `make tools`", err)
	}

	if err := os.WriteFile(filepath.Join(root, "bin", "k8s-v1.37.2", "etcd"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := envtestAssets(root)
	if err != nil || dir != filepath.Join(root, "bin", "k8s-v1.37.2") {
		t.Fatalf("envtestAssets() = %q, %v; want the bin/k8s-v1.37.2 directory", dir, err)
	}
}
