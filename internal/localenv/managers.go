package localenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/temporal-batch/temporal-batch/internal/devserver"
)

// ManagerProcess is a manager process started besides the environment's
// own, like another replica of the manager's Deployment. The environment
// restarts it whenever it exits, as it does its own manager.
type ManagerProcess struct {
	// Log is the process's log file, appended across restarts.
	Log string
	// ProbeAddress and MetricsAddress are the host:port of its health probes
	// and of its metrics.
	ProbeAddress   string
	MetricsAddress string

	p *supervised
}

// Pid is the process ID of the running process, 0 while it is between
// restarts or stopped.
func (m *ManagerProcess) Pid() int { return m.p.Pid() }

// Restarts counts the times the process was started again after it exited.
func (m *ManagerProcess) Restarts() int { return m.p.Restarts() }

// Stop stops the process for good (SIGTERM, then SIGKILL after its grace
// period) and returns once it has stopped. It is safe to call more than once.
func (m *ManagerProcess) Stop() {
	m.p.Stop()
	<-m.p.Done()
}

// Kill stops the process for good with SIGKILL and returns once it has
// stopped.
func (m *ManagerProcess) Kill() {
	m.p.Kill()
	<-m.p.Done()
}

// StartExtraManager starts one more manager process with the flags of the
// environment's own manager, its own log file, health probe and metrics
// ports, and then args (e.g. --leader-elect), which win over the flags
// before them. It returns once the process is ready. Env.Stop stops it
// unless it was stopped before.
func (e *Env) StartExtraManager(ctx context.Context, args ...string) (*ManagerProcess, error) {
	if e.manager == nil {
		return nil, errors.New("the environment's manager never started")
	}
	probePort, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	e.extraMu.Lock()
	e.extraStarted++
	n := e.extraStarted
	e.extraMu.Unlock()
	spec := e.manager.spec
	spec.Name = fmt.Sprintf("manager-%d", n)
	spec.LogPath = filepath.Join(e.LogDir, spec.Name+".log")
	m := &ManagerProcess{
		Log:            spec.LogPath,
		ProbeAddress:   fmt.Sprintf("127.0.0.1:%d", probePort),
		MetricsAddress: fmt.Sprintf("127.0.0.1:%d", metricsPort),
	}
	// The flag package keeps the last value of a flag given twice.
	spec.Args = append(slices.Clone(spec.Args),
		"--metrics-bind-address", m.MetricsAddress,
		"--health-probe-bind-address", m.ProbeAddress)
	spec.Args = append(spec.Args, args...)
	began := time.Now()
	e.logf("starting %s (%s)", spec.Name, spec.Path)
	m.p = startSupervised(spec, e.logger)
	e.extraMu.Lock()
	e.extra = append(e.extra, m)
	e.extraMu.Unlock()
	if err := waitReady(ctx, "http://"+m.ProbeAddress+"/readyz", time.Minute); err != nil {
		m.Kill()
		return nil, fmt.Errorf("%s not ready: %w; its log: %s\n%s", spec.Name, err, m.Log, tail(m.Log, 15))
	}
	e.logf("%s ready, pid %d (%s)", spec.Name, m.Pid(), since(began))
	return m, nil
}

// StopManager stops the environment's own manager (SIGTERM, then SIGKILL
// after its grace period) and returns once it has stopped; the environment
// no longer restarts it until StartManager. Meanwhile extra managers can
// take its place.
func (e *Env) StopManager() {
	if e.manager == nil {
		return
	}
	e.logf("stopping the manager")
	e.manager.Stop()
	<-e.manager.Done()
}

// StartManager starts the environment's own manager again after
// StopManager, with the same flags, and returns once it is ready. It does
// nothing while the manager runs.
func (e *Env) StartManager(ctx context.Context) error {
	if e.manager == nil {
		return errors.New("the environment's manager never started")
	}
	select {
	case <-e.manager.Done():
	default:
		return nil
	}
	spec := e.manager.spec
	probe := ""
	for i, arg := range spec.Args {
		if arg == "--health-probe-bind-address" && i+1 < len(spec.Args) {
			probe = spec.Args[i+1]
		}
	}
	began := time.Now()
	e.logf("starting the manager again (%s)", spec.Path)
	e.manager = startSupervised(spec, e.logger)
	if err := waitReady(ctx, "http://"+probe+"/readyz", time.Minute); err != nil {
		return fmt.Errorf("manager not ready: %w; its log: %s\n%s", err, e.ManagerLog, tail(e.ManagerLog, 15))
	}
	e.logf("manager ready, pid %d (%s)", e.manager.Pid(), since(began))
	return nil
}

// stopExtraManagers stops the extra managers still running.
func (e *Env) stopExtraManagers() {
	e.extraMu.Lock()
	extra := slices.Clone(e.extra)
	e.extraMu.Unlock()
	for _, m := range extra {
		m.p.Stop()
	}
	for _, m := range extra {
		<-m.p.Done()
	}
}
