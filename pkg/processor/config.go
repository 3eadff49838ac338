package processor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
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

	// EnvTLSFilesOptional, when true, makes a TLS file variable that names
	// an absent file count as unset (logged) rather than an error. The
	// operator sets it with the files of its credentials Secret, which holds
	// only some of them.
	EnvTLSFilesOptional = "TEMPORAL_TLS_FILES_OPTIONAL"
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
// lists every invalid variable with how to fix it. With
// TEMPORAL_TLS_FILES_OPTIONAL=true, a TLS file that does not exist counts as
// not configured, and is logged with slog's default logger; the files are
// otherwise read when the worker connects.
func ConfigFromEnv() (Config, error) {
	return configFrom(os.Getenv, slog.Default())
}

func configFrom(getenv func(string) string, logger *slog.Logger) (Config, error) {
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
	var absent []string
	if v := get(EnvTLSFilesOptional); v != "" {
		optional, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not true or false: set it to true to go on without the TLS files that do not exist", EnvTLSFilesOptional, v))
		} else if optional {
			var ferrs []error
			absent, ferrs = cfg.TLS.dropAbsentFiles(logger)
			errs = append(errs, ferrs...)
		}
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		if len(absent) > 0 {
			have, haveFile, missing, missingFile := EnvTLSCertFile, cfg.TLS.CertFile, EnvTLSKeyFile, get(EnvTLSKeyFile)
			if cfg.TLS.CertFile == "" {
				have, haveFile, missing, missingFile = EnvTLSKeyFile, cfg.TLS.KeyFile, EnvTLSCertFile, get(EnvTLSCertFile)
			}
			errs = append(errs, fmt.Errorf("%s=%q exists but %s=%q does not: mutual TLS needs both the certificate and its key (tls.crt and tls.key in the credentials Secret), or neither", have, haveFile, missing, missingFile))
		} else {
			errs = append(errs, fmt.Errorf("%s and %s must be set together: set both for mutual TLS, or neither", EnvTLSCertFile, EnvTLSKeyFile))
		}
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

// dropAbsentFiles unsets the files that do not exist, logging each, and
// returns their variables; a file that cannot be checked is an error.
func (t *TLSConfig) dropAbsentFiles(logger *slog.Logger) (absent []string, errs []error) {
	files := []struct {
		env, without string
		file         *string
	}{
		{EnvTLSCertFile, "no client certificate, so no mutual TLS", &t.CertFile},
		{EnvTLSKeyFile, "no client key, so no mutual TLS", &t.KeyFile},
		{EnvTLSCAFile, "the system's roots verify the server's certificate", &t.CAFile},
	}
	for _, f := range files {
		if *f.file == "" {
			continue
		}
		_, err := os.Stat(*f.file)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			logger.Info("TLS file not found: not configured", "variable", f.env, "file", *f.file, "meaning", f.without)
			absent = append(absent, f.env)
			*f.file = ""
		default:
			errs = append(errs, fmt.Errorf("%s=%q cannot be checked: %w", f.env, *f.file, err))
		}
	}
	return absent, errs
}

func (t TLSConfig) build() (*tls.Config, error) {
	if !t.enabled() {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		caPEM, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read %s=%q: %w", EnvTLSCAFile, t.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%s=%q holds no PEM certificate: point it at the CA bundle that signs the server's certificate", EnvTLSCAFile, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		certFile, keyFile := t.CertFile, t.KeyFile
		if err := checkKeyPair(certFile, keyFile); err != nil {
			return nil, err
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

// checkKeyPair reads a client certificate and its key, with an error that
// names the variable and file at fault.
func checkKeyPair(certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("read %s=%q: %w", EnvTLSCertFile, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("read %s=%q: %w", EnvTLSKeyFile, keyFile, err)
	}
	if !hasPEMBlock(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return fmt.Errorf("%s=%q holds no PEM certificate: point it at the client certificate (tls.crt)", EnvTLSCertFile, certFile)
	}
	if !hasPEMBlock(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		return fmt.Errorf("%s=%q holds no PEM private key: point it at the client certificate's key (tls.key)", EnvTLSKeyFile, keyFile)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("client certificate %s=%q and key %s=%q do not make a key pair: %w", EnvTLSCertFile, certFile, EnvTLSKeyFile, keyFile, err)
	}
	return nil
}

func hasPEMBlock(data []byte, wanted func(typ string) bool) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		if wanted(block.Type) {
			return true
		}
	}
}
