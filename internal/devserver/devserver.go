// Package devserver starts a Temporal dev server (the temporal CLI's
// `server start-dev`) for integration tests and benchmarks. The binary is
// built from Go modules by `make tools` and found through $TEMPORAL_CLI or
// under the repository's bin/.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
)

// Server is a running dev server.
type Server struct {
	// Address is the frontend's host:port.
	Address string
	// Namespace exists on the server.
	Namespace string
	cmd       *exec.Cmd
	done      chan error
	logPath   string
}

// Options tune a dev server.
type Options struct {
	// DBFile persists state across restarts; empty keeps it in memory.
	DBFile string
	// Port of the frontend; 0 picks a free one.
	Port int
	// DynamicConfig values, KEY=JSON.
	DynamicConfig []string
	// LogDir receives the server log; empty uses a temp dir.
	LogDir string
}

// Binary returns the temporal CLI to run.
func Binary() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		matches, _ := filepath.Glob(filepath.Join(dir, "bin", "temporal-v*"))
		if len(matches) > 0 {
			return matches[len(matches)-1], nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "hack")); err == nil {
				break
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no Temporal dev server found: run `make tools` (it builds bin/temporal-v*) or set TEMPORAL_CLI")
}

// Start starts a dev server and waits until it answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(port), "--http-port", strconv.Itoa(httpPort),
		"--metrics-port", strconv.Itoa(metricsPort), "--log-level", "warn"}
	if opts.DBFile != "" {
		args = append(args, "--db-filename", opts.DBFile)
	}
	for _, kv := range opts.DynamicConfig {
		args = append(args, "--dynamic-config-value", kv)
	}
	logDir := opts.LogDir
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "temporal-dev-"); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(logDir, fmt.Sprintf("temporal-%d.log", port))
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{Address: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default", cmd: cmd, done: make(chan error, 1), logPath: logPath}
	go func() { s.done <- cmd.Wait(); logFile.Close() }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		c, err := client.DialContext(ctx, client.Options{HostPort: s.Address, Namespace: s.Namespace})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			if err == nil {
				_, err = c.WorkflowService().DescribeNamespace(ctx, describeNamespace(s.Namespace))
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case exitErr := <-s.done:
			return fmt.Errorf("temporal dev server exited before it was ready (%v); log: %s", exitErr, s.logPath)
		case <-ctx.Done():
			return fmt.Errorf("temporal dev server at %s not ready: %w (log: %s)", s.Address, err, s.logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Dial returns a client of the server's namespace.
func (s *Server) Dial(ctx context.Context) (client.Client, error) {
	return client.DialContext(ctx, client.Options{HostPort: s.Address, Namespace: s.Namespace, Logger: quietLogger{}})
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s).
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// FreePort returns a TCP port free on the loopback interface.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
