package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	temporalclient "go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

var (
	// env is the one local environment every spec runs on.
	env *localenv.Env
	k8s client.Client
	// tc reaches the environment's Temporal server, to check what Temporal
	// itself shows of the workflows.
	tc temporalclient.Client
	// workerBin is bin/example-worker, also used to seed databases.
	workerBin   string
	suiteFailed bool
)

func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite: runs kube-apiserver, etcd, Temporal, the manager and worker processes (skipped with -short)")
	}
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	SetDefaultConsistentlyPollingInterval(200 * time.Millisecond)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	root, err := localenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{"manager", "example-worker"} {
		Expect(filepath.Join(root, "bin", name)).To(BeAnExistingFile(), "run `make build` (or `make test-e2e`, which builds) first")
	}
	workerBin = filepath.Join(root, "bin", "example-worker")

	stateDir, err := os.MkdirTemp("", "temporal-batch-e2e-")
	Expect(err).NotTo(HaveOccurred())
	// A port of its own, so that the suite neither takes 7233 from `make dev`
	// nor loses it to anything else across Temporal restarts.
	port, err := devserver.FreePort()
	Expect(err).NotTo(HaveOccurred())
	began := time.Now()
	env, err = localenv.Start(ctx, localenv.Options{
		RepoRoot:     root,
		StateDir:     stateDir,
		Fresh:        true,
		TemporalPort: port,
		PollInterval: 500 * time.Millisecond,
		Logf:         func(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) },
	})
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("local environment up in %.1fs; state and logs in %s\n", time.Since(began).Seconds(), stateDir)
	k8s = env.Client

	logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelError})))
	tc, err = temporalclient.DialContext(ctx, temporalclient.Options{HostPort: env.TemporalAddress, Namespace: env.TemporalNamespace, Logger: logger})
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(5*time.Minute))

var _ = AfterSuite(func() {
	if tc != nil {
		tc.Close()
	}
	if env == nil {
		return
	}
	began := time.Now()
	Expect(env.Stop()).To(Succeed())
	GinkgoWriter.Printf("local environment stopped in %.1fs\n", time.Since(began).Seconds())
	if suiteFailed {
		fmt.Fprintf(GinkgoWriter, "kept the state and logs of the failed suite in %s\n", env.StateDir)
		return
	}
	Expect(os.RemoveAll(env.StateDir)).To(Succeed())
})

var _ = ReportAfterEach(func(report SpecReport) {
	if report.Failed() {
		suiteFailed = true
	}
})

// background is for calls that outlive no spec.
var background = context.Background()
