package processor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := configFrom(envOf(map[string]string{EnvTaskQueue: "inflate-prices"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Address:     DefaultAddress,
		Namespace:   DefaultNamespace,
		TaskQueue:   "inflate-prices",
		PagesPerPod: 1,
		GracePeriod: 30 * time.Second,
	}
	if cfg != want {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	cfg, err := configFrom(envOf(map[string]string{
		EnvAddress:       "temporal.example:7233",
		EnvNamespace:     "batch",
		EnvTaskQueue:     "inflate-prices",
		EnvPagesPerPod:   "4",
		EnvJob:           "shop/inflate-prices",
		EnvTLSCertFile:   "/tls/tls.crt",
		EnvTLSKeyFile:    "/tls/tls.key",
		EnvTLSCAFile:     "/tls/ca.crt",
		EnvTLSServerName: "temporal.internal",
		EnvAPIKey:        "secret-key",
		EnvGracePeriod:   "2m",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Address:     "temporal.example:7233",
		Namespace:   "batch",
		TaskQueue:   "inflate-prices",
		PagesPerPod: 4,
		Job:         "shop/inflate-prices",
		TLS:         TLSConfig{CertFile: "/tls/tls.crt", KeyFile: "/tls/tls.key", CAFile: "/tls/ca.crt", ServerName: "temporal.internal"},
		APIKey:      "secret-key",
		GracePeriod: 2 * time.Minute,
	}
	if cfg != want {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}
}

func TestConfigFromEnvReadsProcessEnvironment(t *testing.T) {
	t.Setenv(EnvTaskQueue, "from-process")
	t.Setenv(EnvPagesPerPod, "3")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TaskQueue != "from-process" || cfg.PagesPerPod != 3 {
		t.Errorf("config = %+v, want task queue from-process and 3 pages per pod", cfg)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		// want lists fragments the error must contain: the variable and
		// how to fix it.
		want []string
	}{
		{
			name: "task queue missing",
			env:  map[string]string{},
			want: []string{EnvTaskQueue + " is not set", "spec.taskQueue"},
		},
		{
			name: "task queue blank",
			env:  map[string]string{EnvTaskQueue: "  "},
			want: []string{EnvTaskQueue + " is not set"},
		},
		{
			name: "pages per pod not a number",
			env:  map[string]string{EnvTaskQueue: "q", EnvPagesPerPod: "four"},
			want: []string{EnvPagesPerPod + `="four"`, "at least 1", "spec.worker.pagesPerPod"},
		},
		{
			name: "pages per pod zero",
			env:  map[string]string{EnvTaskQueue: "q", EnvPagesPerPod: "0"},
			want: []string{EnvPagesPerPod + `="0"`},
		},
		{
			name: "grace period without unit",
			env:  map[string]string{EnvTaskQueue: "q", EnvGracePeriod: "30"},
			want: []string{EnvGracePeriod + `="30"`, "30s or 2m"},
		},
		{
			name: "grace period negative",
			env:  map[string]string{EnvTaskQueue: "q", EnvGracePeriod: "-1s"},
			want: []string{EnvGracePeriod + `="-1s"`},
		},
		{
			name: "certificate without key",
			env:  map[string]string{EnvTaskQueue: "q", EnvTLSCertFile: "/tls/tls.crt"},
			want: []string{EnvTLSCertFile + " and " + EnvTLSKeyFile + " must be set together"},
		},
		{
			name: "every problem at once",
			env:  map[string]string{EnvPagesPerPod: "-2", EnvGracePeriod: "soon", EnvTLSKeyFile: "/tls/tls.key"},
			want: []string{EnvTaskQueue, EnvPagesPerPod, EnvGracePeriod, EnvTLSKeyFile},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configFrom(envOf(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, fragment := range tc.want {
				if !strings.Contains(err.Error(), fragment) {
					t.Errorf("error %q does not contain %q", err, fragment)
				}
			}
		})
	}
}

func TestConfigNeverShowsAPIKey(t *testing.T) {
	cfg := Config{TaskQueue: "q", APIKey: "secret-key"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("starting", "config", cfg)
	for _, shown := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), logged.String()} {
		if strings.Contains(shown, "secret-key") {
			t.Errorf("API key shown in %q", shown)
		}
	}
	if !strings.Contains(logged.String(), `"apiKey":true`) {
		t.Errorf("log %q does not say an API key is set", logged.String())
	}
}

func TestClientOptions(t *testing.T) {
	opts, err := Config{TaskQueue: "q", Job: "shop/inflate-prices", APIKey: "k"}.clientOptions(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != DefaultAddress || opts.Namespace != DefaultNamespace {
		t.Errorf("dials %s namespace %s, want the defaults", opts.HostPort, opts.Namespace)
	}
	if !strings.HasSuffix(opts.Identity, "@shop/inflate-prices") {
		t.Errorf("identity %q does not name the job", opts.Identity)
	}
	if opts.Credentials == nil {
		t.Error("API key not passed as credentials")
	}
	if opts.ConnectionOptions.TLS != nil {
		t.Error("TLS configured without TLS material; the SDK enables it for API keys itself")
	}
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertificate(t, dir)

	t.Run("mutual TLS with CA", func(t *testing.T) {
		cfg, err := TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: certFile, ServerName: "temporal.internal"}.build()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ServerName != "temporal.internal" || cfg.RootCAs == nil {
			t.Errorf("server name %q, root CAs set %t; want temporal.internal and the CA file", cfg.ServerName, cfg.RootCAs != nil)
		}
		cert, err := cfg.GetClientCertificate(nil)
		if err != nil || len(cert.Certificate) == 0 {
			t.Errorf("client certificate: %v, want the certificate from %s", err, certFile)
		}
	})
	t.Run("none", func(t *testing.T) {
		cfg, err := TLSConfig{}.build()
		if err != nil || cfg != nil {
			t.Errorf("build() = %v, %v; want no TLS", cfg, err)
		}
	})
	t.Run("CA file without certificates", func(t *testing.T) {
		_, err := TLSConfig{CAFile: keyFile}.build()
		if err == nil || !strings.Contains(err.Error(), EnvTLSCAFile) {
			t.Errorf("error = %v, want one naming %s", err, EnvTLSCAFile)
		}
	})
	t.Run("unreadable key pair", func(t *testing.T) {
		_, err := TLSConfig{CertFile: certFile, KeyFile: filepath.Join(dir, "missing.key")}.build()
		if err == nil || !strings.Contains(err.Error(), EnvTLSKeyFile) {
			t.Errorf("error = %v, want one naming %s", err, EnvTLSKeyFile)
		}
	})
}

func TestRunNeedsTaskQueue(t *testing.T) {
	err := Run(context.Background(), Config{}, nil)
	if err == nil || !strings.Contains(err.Error(), EnvTaskQueue) {
		t.Errorf("error = %v, want one naming %s", err, EnvTaskQueue)
	}
}

// writeCertificate writes a self-signed certificate and its key, PEM
// encoded, and returns their paths.
func writeCertificate(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "worker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
