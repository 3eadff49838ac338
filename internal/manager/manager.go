// Package manager assembles the operator: the controller-runtime manager with
// the BatchJob controller, and the Temporal worker that hosts the
// orchestrator workflow on the orchestrator task queue.
package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	temporallog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/temporal-batch/temporal-batch/internal/controller"
	"github.com/temporal-batch/temporal-batch/internal/scheme"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
)

// Options configure the operator.
type Options struct {
	// Temporal connection.
	TemporalAddress   string
	TemporalNamespace string
	TLSCertFile       string
	TLSKeyFile        string
	TLSCAFile         string
	TLSServerName     string
	// APIKey authenticates to Temporal Cloud; it is never logged.
	APIKey string
	// OrchestratorTaskQueue is where the orchestrator workflow runs.
	OrchestratorTaskQueue string
	// WorkerCredentialsSecret names a Secret mounted into worker pods with
	// the TLS material and API key they connect with.
	WorkerCredentialsSecret string

	Intervals               controller.Intervals
	ReconcileTimeout        time.Duration
	MaxConcurrentReconciles int
	// NoProgressReports makes the controller query every running job's
	// progress, as if no orchestrator run were hosted in this process.
	NoProgressReports bool
	// WatchNamespaces limits the jobs watched; empty watches all namespaces.
	WatchNamespaces []string
	// TaskQueuePolicy is the task queues a job may name; "" is Any.
	TaskQueuePolicy controller.TaskQueuePolicy

	MetricsAddr             string
	ProbeAddr               string
	LeaderElection          bool
	LeaderElectionNamespace string

	Logger *slog.Logger

	// SkipControllerNameValidation lets one process build several managers,
	// as tests that restart the manager do.
	SkipControllerNameValidation bool
}

// Scheme holds the types the operator reads and writes.
func Scheme() *runtime.Scheme { return scheme.New() }

// New builds the manager. The Temporal client connects lazily, so the
// manager starts while Temporal is down; jobs then report it in their
// conditions and the readiness probe fails until Temporal answers.
func New(cfg *rest.Config, opts Options) (ctrl.Manager, client.Client, error) {
	if opts.OrchestratorTaskQueue == "" {
		opts.OrchestratorTaskQueue = temporalbatch.DefaultTaskQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	conn := &connection{}
	tc, err := dialTemporal(opts, conn)
	if err != nil {
		return nil, nil, err
	}
	mopts := ctrl.Options{
		Scheme:                        Scheme(),
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:        opts.ProbeAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              "temporal-batch.batch.temporalbatch.io",
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	}
	// Only the worker Deployments the controller owns: a cluster's other
	// Deployments would cost memory and watch traffic for nothing. The
	// rights stay list/watch on all Deployments; RBAC cannot select by label.
	mopts.Cache.ByObject = map[ctrlclient.Object]cache.ByObject{
		&appsv1.Deployment{}: {Label: controller.WorkerDeployments()},
	}
	if len(opts.WatchNamespaces) > 0 {
		mopts.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.WatchNamespaces {
			mopts.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		tc.Close()
		return nil, nil, fmt.Errorf("create manager: %w", err)
	}
	// The orchestrator runs this process hosts report their progress here,
	// and the controller reads it without a query.
	var hub *controller.ProgressHub
	var reports temporalbatch.Reporter
	if !opts.NoProgressReports {
		hub = controller.NewProgressHub()
		// With the frontend gone, no report comes, and none may stand in
		// for the query that would say so.
		hub.Reachable = conn.answering
		reports = hub
	}
	r := &controller.BatchJobReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("temporal-batch"),
		Orchestrator: temporalbatch.NewClient(tc, opts.OrchestratorTaskQueue),
		Connection: controller.Connection{
			Address:           opts.TemporalAddress,
			Namespace:         opts.TemporalNamespace,
			CredentialsSecret: opts.WorkerCredentialsSecret,
			TLSServerName:     opts.TLSServerName,
		},
		Intervals:       opts.Intervals,
		Timeout:         opts.ReconcileTimeout,
		Reports:         hub,
		TaskQueuePolicy: opts.TaskQueuePolicy,
	}
	if err := r.SetupWithManager(mgr, opts.MaxConcurrentReconciles, opts.SkipControllerNameValidation); err != nil {
		tc.Close()
		return nil, nil, fmt.Errorf("set up controller: %w", err)
	}
	if err := mgr.Add(&orchestratorWorker{client: tc, taskQueue: opts.OrchestratorTaskQueue, logger: opts.Logger, reports: reports}); err != nil {
		tc.Close()
		return nil, nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		tc.Close()
		return nil, nil, err
	}
	if err := mgr.AddReadyzCheck("temporal", temporalAnswers(tc)); err != nil {
		tc.Close()
		return nil, nil, err
	}
	return mgr, tc, nil
}

// temporalAnswers is ready only while Temporal answers a health check.
func temporalAnswers(tc client.Client) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
		defer cancel()
		if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("temporal does not answer: %w", err)
		}
		return nil
	}
}

// DialTemporal returns a lazily connecting Temporal client for the options.
func DialTemporal(opts Options) (client.Client, error) {
	return dialTemporal(opts, &connection{})
}

// dialTemporal is DialTemporal with the client's calls observed by conn.
func dialTemporal(opts Options, conn *connection) (client.Client, error) {
	co := client.Options{
		HostPort:  opts.TemporalAddress,
		Namespace: opts.TemporalNamespace,
		Logger:    temporallog.NewStructuredLogger(opts.Logger.With("component", "temporal")),
		Identity:  identity(),
		// Every call to the frontend, the worker's polls included, counted by method.
		ConnectionOptions: client.ConnectionOptions{DialOptions: countingDialOptions(conn)},
	}
	if opts.TLSCertFile != "" || opts.TLSCAFile != "" || opts.TLSServerName != "" {
		tlsCfg, err := tlsConfig(opts)
		if err != nil {
			return nil, err
		}
		co.ConnectionOptions.TLS = tlsCfg
	}
	if opts.APIKey != "" {
		co.Credentials = client.NewAPIKeyStaticCredentials(opts.APIKey)
	}
	return client.NewLazyClient(co)
}

func tlsConfig(opts Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.TLSServerName}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("--temporal-tls-cert and --temporal-tls-key go together: set both or neither")
	}
	if opts.TLSCertFile != "" {
		certFile, keyFile := opts.TLSCertFile, opts.TLSKeyFile
		// Re-read on each handshake so that rotated certificates are picked up.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			return &c, err
		}
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("--temporal-tls-cert/--temporal-tls-key: %w", err)
		}
	}
	if opts.TLSCAFile != "" {
		pem, err := os.ReadFile(opts.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("--temporal-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--temporal-tls-ca %s holds no PEM certificate", opts.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("temporal-batch-manager@%s", host)
}

// orchestratorWorker runs the orchestrator workflow on every manager replica
// (no leader election: Temporal hands each workflow task to one worker). It
// keeps trying to start while Temporal is unreachable.
type orchestratorWorker struct {
	client    client.Client
	taskQueue string
	logger    *slog.Logger
	reports   temporalbatch.Reporter
}

func (w *orchestratorWorker) NeedLeaderElection() bool { return false }

func (w *orchestratorWorker) newWorker() worker.Worker {
	// One manager runs every job's orchestrator. With a fixed number of
	// pollers, the SDK polls only the sticky queue (the workflows it has
	// cached) while that queue has a backlog, so under load the first task
	// of a new job, on the normal queue, waits until the running ones are
	// served: jobs applied to a busy manager did not start for minutes.
	// Autoscaling pollers keep one poll on the normal queue at all times,
	// and scale with the backlog the server reports.
	wk := worker.New(w.client, w.taskQueue, worker.Options{
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{
			InitialNumberOfPollers: 4, MinimumNumberOfPollers: 2, MaximumNumberOfPollers: 32,
		}),
	})
	if w.reports == nil {
		temporalbatch.Register(wk)
	} else {
		temporalbatch.RegisterReporting(wk, w.reports)
	}
	temporalbatch.RegisterActivities(wk, w.client)
	return wk
}

func (w *orchestratorWorker) Start(ctx context.Context) error {
	wk := w.newWorker()
	backoff := time.Second
	for {
		err := wk.Start()
		if err == nil {
			break
		}
		w.logger.Warn("Orchestrator worker cannot start yet; retrying", "taskQueue", w.taskQueue, "error", err, "retryIn", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
		// A failed start leaves the worker unusable; make a new one.
		wk = w.newWorker()
	}
	w.logger.Info("Orchestrator worker started", "taskQueue", w.taskQueue)
	<-ctx.Done()
	wk.Stop()
	return nil
}
