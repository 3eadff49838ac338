// Command manager runs the Temporal Batch operator: the BatchJob controller
// and the Temporal worker that hosts the orchestrator workflow.
//
// Every flag can also be set by the environment variable named in its help.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/temporal-batch/temporal-batch/internal/controller"
	"github.com/temporal-batch/temporal-batch/internal/manager"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	var o manager.Options
	var watch, logLevel, logFormat, apiKeyFile, taskQueuePolicy string
	str := func(p *string, name, env, def, help string) {
		fs.StringVar(p, name, envOr(env, def), fmt.Sprintf("%s (env %s)", help, env))
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, help string) {
		if v, err := time.ParseDuration(os.Getenv(env)); err == nil {
			def = v
		}
		fs.DurationVar(p, name, def, fmt.Sprintf("%s (env %s)", help, env))
	}
	str(&o.TemporalAddress, "temporal-address", "TEMPORAL_ADDRESS", "localhost:7233", "Temporal frontend host:port")
	str(&o.TemporalNamespace, "temporal-namespace", "TEMPORAL_NAMESPACE", "default", "Temporal namespace of the orchestrator workflows")
	str(&o.TLSCertFile, "temporal-tls-cert", "TEMPORAL_TLS_CERT_FILE", "", "client certificate file for mTLS")
	str(&o.TLSKeyFile, "temporal-tls-key", "TEMPORAL_TLS_KEY_FILE", "", "client key file for mTLS")
	str(&o.TLSCAFile, "temporal-tls-ca", "TEMPORAL_TLS_CA_FILE", "", "CA bundle that signs the server's certificate")
	str(&o.TLSServerName, "temporal-tls-server-name", "TEMPORAL_TLS_SERVER_NAME", "", "server name to verify in the server's certificate")
	str(&apiKeyFile, "temporal-api-key-file", "TEMPORAL_API_KEY_FILE", "", "file holding a Temporal Cloud API key (or set TEMPORAL_API_KEY)")
	str(&o.OrchestratorTaskQueue, "orchestrator-task-queue", "TEMPORAL_BATCH_ORCHESTRATOR_TASK_QUEUE", temporalbatch.DefaultTaskQueue, "task queue the orchestrator workflow runs on")
	str(&o.WorkerCredentialsSecret, "worker-credentials-secret", "TEMPORAL_BATCH_WORKER_CREDENTIALS_SECRET", "", "Secret (in each job's namespace) with tls.crt, tls.key, ca.crt and/or api-key, mounted into worker pods")
	dur(&o.Intervals.Running, "poll-interval", "TEMPORAL_BATCH_POLL_INTERVAL", controller.DefaultIntervals.Running, "how often progress is read while pages run (each pass ±20% at random, so jobs created together spread out)")
	dur(&o.Intervals.Idle, "idle-poll-interval", "TEMPORAL_BATCH_IDLE_POLL_INTERVAL", controller.DefaultIntervals.Idle, "how often progress is read while a job is suspended and drained")
	dur(&o.Intervals.Stall, "stall-after", "TEMPORAL_BATCH_STALL_AFTER", controller.DefaultIntervals.Stall, "a job with pages waiting but none completed for this long is Stalled")
	dur(&o.ReconcileTimeout, "reconcile-timeout", "TEMPORAL_BATCH_RECONCILE_TIMEOUT", 30*time.Second, "time limit of one reconcile pass")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 16, "jobs reconciled at once (a pass mostly waits on the API server or Temporal)")
	progressReports := fs.Bool("progress-reports", os.Getenv("TEMPORAL_BATCH_PROGRESS_REPORTS") != "false", "read the progress of the orchestrator runs this process hosts from the runs themselves, without a query; false queries Temporal on every poll (env TEMPORAL_BATCH_PROGRESS_REPORTS)")
	str(&watch, "watch-namespaces", "WATCH_NAMESPACES", "", "comma-separated namespaces to watch; empty watches all")
	str(&taskQueuePolicy, "task-queue-policy", "TEMPORAL_BATCH_TASK_QUEUE_POLICY", string(controller.TaskQueuesAny), "task queues a BatchJob may name in spec.taskQueue: Any, or NamespacePrefix (only \"<the job's namespace>.<name>\", for tenants that share one Temporal namespace)")
	str(&o.MetricsAddr, "metrics-bind-address", "METRICS_BIND_ADDRESS", ":8080", "metrics endpoint address; 0 disables it")
	str(&o.ProbeAddr, "health-probe-bind-address", "HEALTH_PROBE_BIND_ADDRESS", ":8081", "health and readiness probe address")
	fs.BoolVar(&o.LeaderElection, "leader-elect", os.Getenv("LEADER_ELECT") == "true", "elect a leader so that one replica reconciles (env LEADER_ELECT)")
	str(&o.LeaderElectionNamespace, "leader-election-namespace", "LEADER_ELECTION_NAMESPACE", "", "namespace of the leader election lease; the pod's own by default")
	str(&logLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	str(&logFormat, "log-format", "LOG_FORMAT", "json", "json or text")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger, err := newLogger(logLevel, logFormat)
	if err != nil {
		return err
	}
	o.Logger = logger
	slog.SetDefault(logger)
	ctrl.SetLogger(logr.FromSlogHandler(logger.Handler()))

	o.NoProgressReports = !*progressReports
	o.APIKey = os.Getenv("TEMPORAL_API_KEY")
	if apiKeyFile != "" {
		raw, err := os.ReadFile(apiKeyFile)
		if err != nil {
			return fmt.Errorf("--temporal-api-key-file: %w", err)
		}
		o.APIKey = strings.TrimSpace(string(raw))
	}
	for _, ns := range strings.Split(watch, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			o.WatchNamespaces = append(o.WatchNamespaces, ns)
		}
	}
	if o.TaskQueuePolicy, err = controller.ParseTaskQueuePolicy(taskQueuePolicy); err != nil {
		return fmt.Errorf("--task-queue-policy: %w", err)
	}
	if o.Intervals.Running <= 0 || o.Intervals.Idle <= 0 {
		return fmt.Errorf("--poll-interval and --idle-poll-interval must be positive")
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, tc, err := manager.New(cfg, o)
	if err != nil {
		return err
	}
	defer tc.Close()
	logger.Info("Starting manager",
		"temporalAddress", o.TemporalAddress, "temporalNamespace", o.TemporalNamespace,
		"tls", o.TLSCertFile != "" || o.TLSCAFile != "", "apiKey", o.APIKey != "",
		"orchestratorTaskQueue", o.OrchestratorTaskQueue, "watchNamespaces", o.WatchNamespaces,
		"taskQueuePolicy", o.TaskQueuePolicy,
		"leaderElection", o.LeaderElection)
	return mgr.Start(ctrl.SetupSignalHandler())
}

func envOr(env, def string) string {
	if v, ok := os.LookupEnv(env); ok {
		return v
	}
	return def
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use json or text", format)
}
