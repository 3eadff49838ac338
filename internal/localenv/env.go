// Package localenv runs Temporal Batch on one machine, without Docker or a
// cluster: etcd and kube-apiserver (through envtest) with the BatchJob CRD, a
// Temporal dev server, the real manager binary, and a DeploymentRunner that
// runs the worker Deployments as local processes, standing in for the
// kubelet and the Deployment controller this control plane lacks.
//
// Every binary comes from the repository's bin/ (`make tools build`); state
// and logs go to a state directory, .local/ of the repository by default.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/temporal-batch/temporal-batch/internal/devserver"
	"github.com/temporal-batch/temporal-batch/internal/scheme"
)

// DefaultTemporalPort is the Temporal frontend port used when it is free, so
// that the temporal CLI's defaults reach the server.
const DefaultTemporalPort = 7233

// Options configure a local environment.
type Options struct {
	// RepoRoot is the repository; default: the one holding the working directory.
	RepoRoot string
	// StateDir holds the kubeconfig, etcd's data, the Temporal database and
	// every log; default <RepoRoot>/.local. It survives Stop, so that a
	// restarted environment finds its jobs and workflows again.
	StateDir string
	// Fresh discards the state of a previous run first.
	Fresh bool
	// TemporalPort of the dev server's frontend; default DefaultTemporalPort
	// when free, else any free port.
	TemporalPort int
	// PollInterval is the manager's --poll-interval: how often a running
	// job's progress reaches its status; default 1s.
	PollInterval time.Duration
	// ManagerArgs are more flags for the manager.
	ManagerArgs []string
	// Logf, when set, hears of each step of Start and Stop.
	Logf func(format string, args ...any)
}

// Env is a running local environment.
type Env struct {
	RepoRoot string
	StateDir string
	LogDir   string
	// Kubeconfig is the path of an admin kubeconfig of the control plane.
	Kubeconfig string
	// Kubectl is the kubectl binary next to kube-apiserver.
	Kubectl string
	// TemporalAddress is the dev server's frontend, host:port.
	TemporalAddress   string
	TemporalNamespace string
	// TemporalCLI is the temporal binary that runs the dev server.
	TemporalCLI string
	// ManagerLog is the manager's log file.
	ManagerLog string

	// Config and Client reach the control plane as an admin; the client knows
	// the core types and BatchJob.
	Config *rest.Config
	Client client.Client
	// Runner runs the worker Deployments.
	Runner *DeploymentRunner

	logf         func(string, ...any)
	logger       *slog.Logger
	logFile      *os.File
	lock         *os.File
	testEnv      *envtest.Environment
	temporal     *devserver.Server
	temporalPort int
	manager      *supervised
	stopRunner   context.CancelFunc
	runnerDone   chan struct{}
	controlPlane []*os.File
	stopOnce     sync.Once
	stopErr      error
	// temporalMu guards temporal, which StopTemporal and StartTemporal
	// replace while the environment runs.
	temporalMu sync.Mutex
	// apiServerMu guards apiServerStopped, set between StopAPIServer and
	// StartAPIServer.
	apiServerMu      sync.Mutex
	apiServerStopped bool
	// extraMu guards the managers StartExtraManager started.
	extraMu      sync.Mutex
	extraStarted int
	extra        []*ManagerProcess
}

// Scheme holds the types the environment's client reads and writes.
func Scheme() *runtime.Scheme { return scheme.New() }

// Start starts the environment and returns once the manager is ready. On
// error, whatever had started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	e := &Env{logf: opts.Logf}
	if e.logf == nil {
		e.logf = func(string, ...any) {}
	}
	defer func() {
		if err != nil {
			_ = e.Stop()
		}
	}()
	if err := e.prepareDirs(opts); err != nil {
		return nil, err
	}
	if err := e.startControlPlane(); err != nil {
		return nil, err
	}
	if err := e.startTemporal(ctx, opts.TemporalPort); err != nil {
		return nil, err
	}
	if err := e.startManager(ctx, opts); err != nil {
		return nil, err
	}
	e.startRunner()
	return e, nil
}

func (e *Env) prepareDirs(opts Options) error {
	e.RepoRoot = opts.RepoRoot
	if e.RepoRoot == "" {
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		e.RepoRoot = root
	}
	e.StateDir = opts.StateDir
	if e.StateDir == "" {
		e.StateDir = filepath.Join(e.RepoRoot, ".local")
	}
	abs, err := filepath.Abs(e.StateDir)
	if err != nil {
		return err
	}
	e.StateDir = abs
	if err := os.MkdirAll(e.StateDir, 0o755); err != nil {
		return err
	}
	if e.lock, err = lockDir(e.StateDir); err != nil {
		return err
	}
	if opts.Fresh {
		if err := discardState(e.StateDir); err != nil {
			return fmt.Errorf("discard old state: %w", err)
		}
	}
	e.LogDir = filepath.Join(e.StateDir, "logs")
	if err := os.MkdirAll(e.LogDir, 0o755); err != nil {
		return err
	}
	e.logFile, err = os.OpenFile(filepath.Join(e.LogDir, "localenv.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	e.logger = slog.New(slog.NewTextHandler(e.logFile, nil))
	return nil
}

// discardState removes what an environment leaves in its state directory,
// and nothing else, in case the directory holds other files too.
func discardState(dir string) error {
	names := []string{"etcd", "logs", "pods", "kubeconfig"}
	dbs, _ := filepath.Glob(filepath.Join(dir, "temporal.db*"))
	for _, db := range dbs {
		names = append(names, filepath.Base(db))
	}
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) startControlPlane() error {
	assets, err := KubeAssets(e.RepoRoot)
	if err != nil {
		return err
	}
	crds := filepath.Join(e.RepoRoot, "config", "crd", "bases")
	began := time.Now()
	useExisting := false
	e.testEnv = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
		UseExistingCluster:    &useExisting,
	}
	cp := &e.testEnv.ControlPlane
	cp.Etcd = &envtest.Etcd{DataDir: filepath.Join(e.StateDir, "etcd")}
	if err := os.MkdirAll(cp.Etcd.DataDir, 0o700); err != nil {
		return err
	}
	api := cp.GetAPIServer()
	// A certificate directory of the environment's own, emptied at each
	// Start, rather than envtest's temporary one, which it removes when
	// kube-apiserver stops: StartAPIServer then serves the same certificates
	// on the same port, and the clients and kubeconfigs stay valid.
	api.CertDir = filepath.Join(e.StateDir, "kube-apiserver")
	if err := os.RemoveAll(api.CertDir); err != nil {
		return err
	}
	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		return err
	}
	// Without it, a stopping kube-apiserver waits for its clients' watches
	// to end, up to its request timeout of a minute: StopAPIServer would
	// end in a SIGKILL.
	api.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	for _, out := range []struct {
		name string
		dst  *io.Writer
	}{{"etcd.log", &cp.Etcd.Out}, {"etcd.log", &cp.Etcd.Err}, {"kube-apiserver.log", &api.Out}, {"kube-apiserver.log", &api.Err}} {
		f, err := os.OpenFile(filepath.Join(e.LogDir, out.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		e.controlPlane = append(e.controlPlane, f)
		*out.dst = f
	}
	e.logf("starting etcd and kube-apiserver (%s)", assets)
	cfg, err := e.testEnv.Start()
	if err != nil {
		return fmt.Errorf("start etcd and kube-apiserver: %w (logs: %s)", err, e.LogDir)
	}
	e.Config = cfg
	e.Kubectl = filepath.Join(assets, "kubectl")
	if e.Client, err = client.New(cfg, client.Options{Scheme: Scheme()}); err != nil {
		return err
	}
	user, err := e.testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.StateDir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, raw, 0o600); err != nil {
		return err
	}
	e.logf("kube-apiserver ready at %s with the BatchJob CRD (%s)", cfg.Host, since(began))
	e.logger.Info("Control plane started", "host", cfg.Host, "kubeconfig", e.Kubeconfig)
	return nil
}

func (e *Env) startTemporal(ctx context.Context, port int) error {
	if port == 0 {
		port = DefaultTemporalPort
		if !portFree(port) {
			var err error
			if port, err = devserver.FreePort(); err != nil {
				return err
			}
		}
	}
	cli, err := devserver.Binary()
	if err != nil {
		return err
	}
	e.TemporalCLI = cli
	e.temporalPort = port
	began := time.Now()
	e.logf("starting the Temporal dev server on 127.0.0.1:%d", port)
	if err := e.runTemporal(ctx); err != nil {
		return err
	}
	e.logf("Temporal dev server ready at %s (%s)", e.TemporalAddress, since(began))
	return nil
}

// runTemporal starts the dev server on the environment's port and SQLite
// file and waits until it answers.
func (e *Env) runTemporal(ctx context.Context) error {
	srv, err := devserver.Start(ctx, devserver.Options{
		DBFile: filepath.Join(e.StateDir, "temporal.db"),
		Port:   e.temporalPort,
		LogDir: e.LogDir,
	})
	if err != nil {
		return err
	}
	e.temporalMu.Lock()
	e.temporal = srv
	e.temporalMu.Unlock()
	if e.TemporalAddress == "" {
		// A restarted server keeps the address; readers need no lock.
		e.TemporalAddress, e.TemporalNamespace = srv.Address, srv.Namespace
	}
	e.logger.Info("Temporal dev server started", "address", srv.Address)
	return nil
}

// StopTemporal stops the Temporal dev server (SIGTERM, then SIGKILL after
// 10 s), as an outage or an upgrade of the Temporal service would. The
// manager and the workers keep running and retry; StartTemporal brings the
// server back with its state.
func (e *Env) StopTemporal() {
	e.temporalMu.Lock()
	srv := e.temporal
	e.temporal = nil
	e.temporalMu.Unlock()
	if srv != nil {
		e.logger.Info("Stopping the Temporal dev server", "address", srv.Address)
		srv.Stop()
	}
}

// StartTemporal starts the Temporal dev server again after StopTemporal, on
// the same address and with the same SQLite file, so that workflows carry on
// where they were; it returns once the server answers. It does nothing while
// the server runs.
func (e *Env) StartTemporal(ctx context.Context) error {
	e.temporalMu.Lock()
	running := e.temporal != nil
	e.temporalMu.Unlock()
	if running {
		return nil
	}
	e.logf("starting the Temporal dev server again on 127.0.0.1:%d", e.temporalPort)
	return e.runTemporal(ctx)
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after 20 s), as
// an outage or an upgrade of the control plane would; etcd keeps running
// with its data. The manager, the Deployment runner and the workers keep
// running and retry; StartAPIServer brings it back.
func (e *Env) StopAPIServer() error {
	e.apiServerMu.Lock()
	defer e.apiServerMu.Unlock()
	if e.apiServerStopped {
		return nil
	}
	e.logger.Info("Stopping kube-apiserver", "host", e.Config.Host)
	if err := e.testEnv.ControlPlane.APIServer.Stop(); err != nil {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	e.apiServerStopped = true
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// port, with the same certificates and etcd, and returns once it is healthy.
// It does nothing while kube-apiserver runs.
func (e *Env) StartAPIServer() error {
	e.apiServerMu.Lock()
	defer e.apiServerMu.Unlock()
	if !e.apiServerStopped {
		return nil
	}
	e.logf("starting kube-apiserver again at %s", e.Config.Host)
	if err := e.testEnv.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver: %w (log: %s)", err, filepath.Join(e.LogDir, "kube-apiserver.log"))
	}
	e.apiServerStopped = false
	e.logger.Info("kube-apiserver started again", "host", e.Config.Host)
	return nil
}

// ManagerPid is the process ID of the running manager, 0 while it is
// between restarts. The environment restarts the manager whenever it exits,
// as a Deployment's pod would be.
func (e *Env) ManagerPid() int {
	if e.manager == nil {
		return 0
	}
	return e.manager.Pid()
}

// ManagerRestarts counts how often the manager was started again after it
// exited.
func (e *Env) ManagerRestarts() int {
	if e.manager == nil {
		return 0
	}
	return e.manager.Restarts()
}

func (e *Env) startManager(ctx context.Context, opts Options) error {
	bin := filepath.Join(e.RepoRoot, "bin", "manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no manager binary at %s: run `make build`", bin)
	}
	probePort, err := devserver.FreePort()
	if err != nil {
		return err
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	args := append([]string{
		"--temporal-address", e.TemporalAddress,
		"--temporal-namespace", e.TemporalNamespace,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--log-format", "text",
		"--poll-interval", poll.String(),
	}, opts.ManagerArgs...)
	e.ManagerLog = filepath.Join(e.LogDir, "manager.log")
	env := append(baseEnv(), "KUBECONFIG="+e.Kubeconfig)
	began := time.Now()
	e.logf("starting the manager (%s)", bin)
	e.manager = startSupervised(processSpec{
		Name: "manager", Path: bin, Args: args, Env: env, Dir: e.RepoRoot,
		LogPath: e.ManagerLog, Grace: 30 * time.Second,
	}, e.logger)
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), time.Minute); err != nil {
		return fmt.Errorf("manager not ready: %w; its log: %s\n%s", err, e.ManagerLog, tail(e.ManagerLog, 15))
	}
	e.logf("manager ready, pid %d (%s)", e.manager.Pid(), since(began))
	return nil
}

func (e *Env) startRunner() {
	e.Runner = NewDeploymentRunner(e.Client, RunnerOptions{
		BinDir:  filepath.Join(e.RepoRoot, "bin"),
		LogDir:  filepath.Join(e.StateDir, "pods"),
		WorkDir: e.RepoRoot,
		Logger:  e.logger,
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.stopRunner, e.runnerDone = cancel, make(chan struct{})
	go func() {
		defer close(e.runnerDone)
		_ = e.Runner.Run(ctx)
	}()
	e.logf("local Deployment runner watching Deployments labelled %s=%s", ManagedByLabel, ManagedByValue)
}

// WorkerDeployments lists the Deployments the runner runs.
func (e *Env) WorkerDeployments(ctx context.Context) ([]appsv1.Deployment, error) {
	var list appsv1.DeploymentList
	err := e.Client.List(ctx, &list, client.MatchingLabels{ManagedByLabel: ManagedByValue})
	return list.Items, err
}

// Stop stops everything in the reverse order of Start: the worker processes,
// the manager, the Temporal dev server, kube-apiserver and etcd. It is safe to
// call more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		if e.stopRunner != nil {
			e.logf("stopping worker processes")
			e.stopRunner()
			<-e.runnerDone
		}
		e.stopExtraManagers()
		if e.manager != nil {
			e.logf("stopping the manager")
			e.manager.Stop()
			<-e.manager.Done()
		}
		e.temporalMu.Lock()
		running := e.temporal != nil
		e.temporalMu.Unlock()
		if running {
			e.logf("stopping the Temporal dev server")
			e.StopTemporal()
		}
		if e.testEnv != nil && e.Config != nil {
			e.logf("stopping kube-apiserver and etcd")
			if err := e.testEnv.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop control plane: %w", err))
			}
		}
		for _, f := range e.controlPlane {
			f.Close()
		}
		if e.logFile != nil {
			e.logFile.Close()
		}
		if e.lock != nil {
			e.lock.Close()
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// Hurry makes a Stop in progress kill the worker processes and the manager
// instead of waiting out their grace periods. Stop still has to be called,
// or to finish, for kube-apiserver and etcd to stop.
func (e *Env) Hurry() {
	if e.Runner != nil {
		e.Runner.Hurry()
	}
	if e.manager != nil {
		e.manager.Kill()
	}
	e.extraMu.Lock()
	for _, m := range e.extra {
		m.p.Kill()
	}
	e.extraMu.Unlock()
}

// StopUnlessHurried stops the environment like Stop; a signal on the
// channel meanwhile (a second Ctrl-C) makes it Hurry, after calling onHurry.
func (e *Env) StopUnlessHurried(signals <-chan os.Signal, onHurry func()) error {
	done := make(chan error, 1)
	go func() { done <- e.Stop() }()
	for {
		select {
		case err := <-done:
			return err
		case <-signals:
			if onHurry != nil {
				onHurry()
			}
			e.Hurry()
		}
	}
}

// waitReady polls a health endpoint until it answers 200.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

func since(t time.Time) string {
	return strconv.FormatFloat(time.Since(t).Seconds(), 'f', 1, 64) + "s"
}
