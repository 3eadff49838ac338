package kueuetest

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

// StartForTest starts an envtest control plane and the Kueue manager
// against it, both stopped when the test ends, and returns a client of the
// control plane. It skips the test with -short, and when bin/kueue-* or the
// control plane's binaries are missing (make kueue, make tools).
func StartForTest(ctx context.Context, t testing.TB) client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver, etcd and the Kueue manager (skipped with -short)")
	}
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Paths(root); err != nil {
		t.Skipf("skipping the Kueue tests: %v", err)
	}
	assets, err := localenv.KubeAssets(root)
	if err != nil {
		t.Skipf("skipping the Kueue tests: %v", err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	k, err := Start(ctx, env, c, Options{RepoRoot: root, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	return c
}
