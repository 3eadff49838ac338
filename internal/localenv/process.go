package localenv

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// processSpec is what a supervised process runs.
type processSpec struct {
	// Name identifies the process in logs, like a pod name.
	Name string
	Path string
	// Argv0 is the program name the process sees, the command as the
	// container spelled it; default Path.
	Argv0 string
	Args  []string
	// Env is the whole environment of the process.
	Env []string
	Dir string
	// LogPath receives standard output and error, appended across restarts.
	LogPath string
	// Grace is how long SIGTERM has before SIGKILL.
	Grace time.Duration
}

// Restart back-off: a process that keeps crashing waits longer each time, as
// a kubelet's CrashLoopBackOff does, but capped low enough for development.
const (
	minRestartDelay = time.Second
	maxRestartDelay = 30 * time.Second
	// A process that ran this long before it exited starts the back-off over.
	stableRun = 10 * time.Second
)

// supervised runs a process in a process group of its own, restarts it
// whenever it exits (restartPolicy Always), and stops the whole group on
// request: SIGTERM, then SIGKILL after the grace period.
type supervised struct {
	spec   processSpec
	logger *slog.Logger

	stopOnce  sync.Once
	stop      chan struct{}
	hurryOnce sync.Once
	hurry     chan struct{}
	done      chan struct{}

	mu       sync.Mutex
	pid      int
	running  bool
	restarts int
}

func startSupervised(spec processSpec, logger *slog.Logger) *supervised {
	p := &supervised{spec: spec, logger: logger.With("process", spec.Name), stop: make(chan struct{}), hurry: make(chan struct{}), done: make(chan struct{})}
	go p.supervise()
	return p
}

// Pid is the process ID of the running process, 0 while none runs.
func (p *supervised) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return 0
	}
	return p.pid
}

// Running reports whether the process runs now (not crashed, not stopped).
func (p *supervised) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// Restarts counts the times the process was started again after it exited.
func (p *supervised) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Stop asks the process to stop and returns at once; Done closes once it has.
func (p *supervised) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
}

// Kill stops the process at once, without waiting out its grace period.
func (p *supervised) Kill() {
	p.Stop()
	p.hurryOnce.Do(func() { close(p.hurry) })
}

// Done is closed once the process stopped for good after Stop.
func (p *supervised) Done() <-chan struct{} { return p.done }

func (p *supervised) supervise() {
	defer close(p.done)
	delay := minRestartDelay
	for start := 1; ; start++ {
		started := time.Now()
		exited, err := p.startOnce(start)
		if err != nil {
			p.logger.Error("Process did not start", "path", p.spec.Path, "error", err, "retryIn", delay)
		} else {
			select {
			case err := <-exited:
				p.setRunning(false)
				// Whatever the process left behind in its group goes with it,
				// as a container's processes go with the container.
				p.killGroup(syscall.SIGKILL)
				if time.Since(started) >= stableRun {
					delay = minRestartDelay
				}
				p.logger.Warn("Process exited; restarting", "exit", exitText(err), "restartIn", delay, "log", p.spec.LogPath)
				p.note("exited (%s); restarting in %s", exitText(err), delay)
			case <-p.stop:
				p.terminate(exited)
				return
			}
		}
		select {
		case <-p.stop:
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, maxRestartDelay)
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
	}
}

// startOnce starts the process and returns a channel that receives its exit.
func (p *supervised) startOnce(n int) (<-chan error, error) {
	logFile, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	if p.spec.Argv0 != "" {
		cmd.Args[0] = p.spec.Argv0
	}
	cmd.Env = p.spec.Env
	cmd.Dir = p.spec.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig takes the process down with this one if it dies without
	// stopping its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logFile, "--- %s start #%d: %s\n", time.Now().Format(time.RFC3339), n, strings.Join(append([]string{p.spec.Path}, p.spec.Args...), " "))
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p.mu.Lock()
	p.pid, p.running = cmd.Process.Pid, true
	p.mu.Unlock()
	p.logger.Info("Process started", "pid", cmd.Process.Pid, "path", p.spec.Path, "start", n)
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		exited <- err
	}()
	return exited, nil
}

// terminate stops the running process group: SIGTERM, then SIGKILL once the
// grace period is over.
func (p *supervised) terminate(exited <-chan error) {
	p.killGroup(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(p.spec.Grace):
		p.logger.Warn("Process did not stop within its grace period; killing it", "grace", p.spec.Grace)
		p.killGroup(syscall.SIGKILL)
		err = <-exited
	case <-p.hurry:
		p.killGroup(syscall.SIGKILL)
		err = <-exited
	}
	p.killGroup(syscall.SIGKILL)
	p.setRunning(false)
	p.logger.Info("Process stopped", "exit", exitText(err))
	p.note("stopped (%s)", exitText(err))
}

func (p *supervised) killGroup(sig syscall.Signal) {
	p.mu.Lock()
	pid := p.pid
	p.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, sig)
	}
}

func (p *supervised) setRunning(v bool) {
	p.mu.Lock()
	p.running = v
	p.mu.Unlock()
}

// note appends a line to the process log, so that the log tells the whole
// story of the process across restarts.
func (p *supervised) note(format string, args ...any) {
	f, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "--- %s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// ProcessAlive reports whether a process exists and is not a zombie.
func ProcessAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	st := string(stat)
	if i := strings.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) {
		return st[i+2] != 'Z'
	}
	return true
}
