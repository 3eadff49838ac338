package processor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// Environment variables a worker reads its configuration from. The operator
// injects them into the worker pods it runs; set them yourself to run a worker
// elsewhere.
const (
	EnvAddress       = "TEMPORAL_ADDRESS"
	EnvNamespace     = "TEMPORAL_NAMESPACE"
	EnvTaskQueue     = "TEMPORAL_TASK_QUEUE"
	EnvPagesPerPod   = "TEMPORAL_BATCH_PAGES_PER_POD"
	EnvJob           = "TEMPORAL_BATCH_JOB"
	EnvTLSCertFile   = "TEMPORAL_TLS_CERT_FILE"
	EnvTLSKeyFile    = "TEMPORAL_TLS_KEY_FILE"
	EnvTLSCAFile     = "TEMPORAL_TLS_CA_FILE"
	EnvTLSServerName = "TEMPORAL_TLS_SERVER_NAME"
	EnvAPIKey        = "TEMPORAL_API_KEY"
	EnvGracePeriod   = "TEMPORAL_BATCH_GRACE_PERIOD"
)

// Defaults applied to settings that are not set.
const (
	DefaultAddress     = "localhost:7233"
	DefaultNamespace   = "default"
	DefaultPagesPerPod = 1
	DefaultGracePeriod = 30 * time.Second
)

// Config is how a worker connects to Temporal and how much work it takes on.
// [ConfigFromEnv] builds it from the environment the operator injects.
type Config struct {
	// Address is the Temporal frontend host:port.
	Address string
	// Namespace is the Temporal namespace of the job's orchestrator.
	Namespace string
	// TaskQueue is the job's spec.taskQueue, where the pages are scheduled.
	TaskQueue string
	// PagesPerPod is how many pages this process runs at once
	// (spec.worker.pagesPerPod). The operator sizes the Deployment from it,
	// so a worker taking on more would leave other pods idle.
	PagesPerPod int
	// Job is the BatchJob as <namespace>/<name>. It only labels logs and the
	// worker identity.
	Job string
	// TLS is the client TLS material; zero means plaintext, unless APIKey is
	// set, which turns TLS on with the system roots.
	TLS TLSConfig
	// APIKey authenticates to Temporal Cloud or another server that accepts
	// API keys. It is never logged.
	APIKey string
	// GracePeriod is how long pages in flight may run on after the worker is
	// asked to stop, before their context is cancelled. Keep the pod's
	// terminationGracePeriodSeconds longer than this.
	GracePeriod time.Duration
}

// TLSConfig names the files of a worker's TLS material.
type TLSConfig struct {
	// CertFile and KeyFile are the client certificate and key for mutual TLS.
	// Both or neither must be set.
	CertFile string
	KeyFile  string
	// CAFile holds the PEM certificates that sign the server's certificate;
	// empty means the system roots.
	CAFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

func (t TLSConfig) enabled() bool {
	return t != TLSConfig{}
}

// ConfigFromEnv reads the worker configuration from the environment variables
// named by the Env* constants. An empty variable counts as unset. The error
// lists every invalid variable with how to fix it.
func ConfigFromEnv() (Config, error) {
	return configFrom(os.Getenv)
}

func configFrom(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	cfg := Config{
		Address:   get(EnvAddress),
		Namespace: get(EnvNamespace),
		TaskQueue: get(EnvTaskQueue),
		Job:       get(EnvJob),
		TLS: TLSConfig{
			CertFile:   get(EnvTLSCertFile),
			KeyFile:    get(EnvTLSKeyFile),
			CAFile:     get(EnvTLSCAFile),
			ServerName: get(EnvTLSServerName),
		},
		APIKey: get(EnvAPIKey),
	}
	var errs []error
	if cfg.TaskQueue == "" {
		errs = append(errs, fmt.Errorf("%s is not set: set it to the task queue the job schedules pages on (spec.taskQueue)", EnvTaskQueue))
	}
	if v := get(EnvPagesPerPod); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s=%q is not a whole number of at least 1: set it to the pages one worker runs at once (spec.worker.pagesPerPod), or unset it for %d", EnvPagesPerPod, v, DefaultPagesPerPod))
		}
		cfg.PagesPerPod = n
	}
	if v := get(EnvGracePeriod); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a positive Go duration: use a value such as 30s or 2m, or unset it for %s", EnvGracePeriod, v, DefaultGracePeriod))
		}
		cfg.GracePeriod = d
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s and %s must be set together: set both for mutual TLS, or neither", EnvTLSCertFile, EnvTLSKeyFile))
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg.withDefaults(), nil
}

// withDefaults fills in the settings left at their zero value, so that a
// Config built by hand behaves like one read from the environment.
func (c Config) withDefaults() Config {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.PagesPerPod < 1 {
		c.PagesPerPod = DefaultPagesPerPod
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	return c
}

// LogValue lets a Config be logged with slog without revealing the API key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("address", c.Address),
		slog.String("namespace", c.Namespace),
		slog.String("taskQueue", c.TaskQueue),
		slog.Int("pagesPerPod", c.PagesPerPod),
		slog.String("job", c.Job),
		slog.Bool("tls", c.TLS.enabled() || c.APIKey != ""),
		slog.Bool("apiKey", c.APIKey != ""),
		slog.Duration("gracePeriod", c.GracePeriod),
	)
}

// String describes the Config without revealing the API key, so that printing
// one with fmt is as safe as logging it.
func (c Config) String() string {
	return c.LogValue().String()
}

// Dial connects to Temporal as the Config says. It fails when the server
// cannot be reached before ctx is done, so a misconfigured worker exits
// instead of polling nothing.
func (c Config) Dial(ctx context.Context) (client.Client, error) {
	opts, err := c.clientOptions(slog.Default())
	if err != nil {
		return nil, err
	}
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	return cl, nil
}

func (c Config) clientOptions(logger *slog.Logger) (client.Options, error) {
	c = c.withDefaults()
	tlsConfig, err := c.TLS.build()
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{
		HostPort:          c.Address,
		Namespace:         c.Namespace,
		Identity:          c.identity(),
		Logger:            sdklog.NewStructuredLogger(logger),
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConfig},
	}
	if c.APIKey != "" {
		// The SDK turns TLS on with the system roots when an API key comes
		// without TLS material, so the key never travels in plaintext.
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	return opts, nil
}

// identity names the worker in Temporal's UI and pending-activity details:
// the pod name (the hostname) and the job it works for.
func (c Config) identity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	id := fmt.Sprintf("%d@%s", os.Getpid(), host)
	if c.Job != "" {
		id += "@" + c.Job
	}
	return id
}

func (t TLSConfig) build() (*tls.Config, error) {
	if !t.enabled() {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", EnvTLSCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s=%q holds no PEM certificate: point it at the CA bundle that signs the server's certificate", EnvTLSCAFile, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		certFile, keyFile := t.CertFile, t.KeyFile
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("load client certificate %s=%q and %s=%q: %w", EnvTLSCertFile, certFile, EnvTLSKeyFile, keyFile, err)
		}
		// Kubernetes and cert-manager rotate mounted certificates in place.
		// Reading the pair at every handshake lets a long-running worker
		// reconnect with the current one; handshakes are rare, so this is
		// cheap.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("load client certificate %q: %w", certFile, err)
			}
			return &cert, nil
		}
	}
	return cfg, nil
}
