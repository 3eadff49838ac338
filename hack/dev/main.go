// Command dev runs Temporal Batch on this machine until Ctrl-C: etcd and
// kube-apiserver with the BatchJob CRD, a Temporal dev server, the manager,
// and the local Deployment runner that runs worker Deployments as processes.
// It prints how to reach each, then waits. State (etcd, the Temporal
// database) stays in the state directory across restarts; -fresh discards it.
//
// `make dev` builds what it needs and runs it. Usage:
//
//	go run ./hack/dev [-fresh] [-state-dir .local/dev] [-temporal-port 7233]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

func main() {
	os.Exit(run())
}

func run() int {
	fresh := flag.Bool("fresh", false, "discard the state of the previous run (jobs, workflows, logs)")
	stateDir := flag.String("state-dir", "", "state and logs (default .local/dev of the repository)")
	port := flag.Int("temporal-port", 0, fmt.Sprintf("Temporal frontend port (default %d when free, else any free port)", localenv.DefaultTemporalPort))
	flag.Parse()

	root, err := localenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		return 2
	}
	if *stateDir == "" {
		*stateDir = filepath.Join(root, ".local", "dev")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("Starting a local Temporal Batch environment")
	env, err := localenv.Start(ctx, localenv.Options{
		RepoRoot:     root,
		StateDir:     *stateDir,
		Fresh:        *fresh,
		TemporalPort: *port,
		Logf:         func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) },
	})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Println("Interrupted.")
			return 130
		}
		fmt.Fprintln(os.Stderr, "dev:", err)
		return 2
	}
	printHelp(root, env)

	<-ctx.Done()
	stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	fmt.Println("\nShutting down; worker processes finish their pages within their grace period (Ctrl-C again: kill them now)")
	began := time.Now()
	err = env.StopUnlessHurried(sigs, func() { fmt.Println("Killing the worker processes and the manager") })
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		return 1
	}
	fmt.Printf("Stopped in %.1fs. State kept in %s (go run ./hack/dev -fresh discards it).\n", time.Since(began).Seconds(), rel(root, env.StateDir))
	return 0
}

func printHelp(root string, env *localenv.Env) {
	kubectl := rel(root, env.Kubectl) + " --kubeconfig " + rel(root, env.Kubeconfig)
	temporal := rel(root, env.TemporalCLI)
	lines := []string{
		"",
		"Temporal Batch runs locally. The local Deployment runner stands in for the kubelet and",
		"the Deployment controller: worker Deployments run as processes of bin/.",
		"",
		"Kubernetes",
		"  kubeconfig  " + rel(root, env.Kubeconfig),
		"  API server  " + env.Config.Host,
		"  try         " + kubectl + " apply -f config/samples/batch_v1alpha1_batchjob_synthetic.yaml",
		"              " + kubectl + " get batchjobs -w",
		"              " + kubectl + " wait --for=condition=Complete batchjob/synthetic --timeout=5m",
		"  or          export KUBECONFIG=" + env.Kubeconfig,
		"",
		"Temporal",
		"  address     " + env.TemporalAddress + " (namespace " + env.TemporalNamespace + ")",
		"  UI          off: the dev server runs headless. Use the CLI instead:",
		"              " + temporal + " workflow list --address " + env.TemporalAddress,
		"              " + temporal + " workflow describe --address " + env.TemporalAddress + " -w <status.workflow.id>",
		"",
		"Logs",
		"  manager     " + rel(root, env.ManagerLog),
		"  workers     " + rel(root, filepath.Join(env.StateDir, "pods")) + "/<namespace>.<deployment>-<n>.log",
		"  servers     " + rel(root, env.LogDir) + "/",
		"",
		"Ctrl-C stops everything; the state stays in " + rel(root, env.StateDir) + " for the next run.",
	}
	fmt.Println(strings.Join(lines, "\n"))
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
