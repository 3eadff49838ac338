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
	"slices"
	"strings"
	"testing"
	"time"
)

func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := configFrom(envOf(map[string]string{EnvTaskQueue: "inflate-prices"}), slog.Default())
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
	}), slog.Default())
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
			name: "optional TLS files not a boolean",
			env:  map[string]string{EnvTaskQueue: "q", EnvTLSFilesOptional: "sometimes"},
			want: []string{EnvTLSFilesOptional + `="sometimes"`, "true or false"},
		},
		{
			name: "every problem at once",
			env:  map[string]string{EnvPagesPerPod: "-2", EnvGracePeriod: "soon", EnvTLSKeyFile: "/tls/tls.key"},
			want: []string{EnvTaskQueue, EnvPagesPerPod, EnvGracePeriod, EnvTLSKeyFile},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configFrom(envOf(tc.env), slog.Default())
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

// TestOptionalTLSFiles loads the configuration the operator gives worker
// pods with a credentials Secret: every file named, each present only when
// the Secret holds its key.
func TestOptionalTLSFiles(t *testing.T) {
	material := t.TempDir()
	certFile, keyFile := writeCertificate(t, material)
	const apiKey = "secret-key"

	for _, tc := range []struct {
		name string
		// files are the Secret's keys, apiKey whether it holds api-key.
		files  []string
		apiKey bool
		// want is the TLS configuration read; absent the variables logged
		// as not configured.
		wantTLS     TLSConfig
		mutualTLS   bool
		customRoots bool
		absent      []string
	}{
		{
			name: "api key only", apiKey: true,
			absent: []string{EnvTLSCertFile, EnvTLSKeyFile, EnvTLSCAFile},
		},
		{
			name: "certificate and key only", files: []string{"tls.crt", "tls.key"},
			wantTLS: TLSConfig{CertFile: "tls.crt", KeyFile: "tls.key"}, mutualTLS: true,
			absent: []string{EnvTLSCAFile},
		},
		{
			name: "CA only", files: []string{"ca.crt"},
			wantTLS: TLSConfig{CAFile: "ca.crt"}, customRoots: true,
			absent: []string{EnvTLSCertFile, EnvTLSKeyFile},
		},
		{
			name:   "nothing",
			absent: []string{EnvTLSCertFile, EnvTLSKeyFile, EnvTLSCAFile},
		},
		{
			name: "everything", files: []string{"tls.crt", "tls.key", "ca.crt"}, apiKey: true,
			wantTLS: TLSConfig{CertFile: "tls.crt", KeyFile: "tls.key", CAFile: "ca.crt"}, mutualTLS: true, customRoots: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := map[string]string{"tls.crt": certFile, "tls.key": keyFile, "ca.crt": certFile}
			for _, f := range tc.files {
				raw, err := os.ReadFile(src[f])
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), raw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{
				EnvTaskQueue:        "q",
				EnvTLSCertFile:      filepath.Join(dir, "tls.crt"),
				EnvTLSKeyFile:       filepath.Join(dir, "tls.key"),
				EnvTLSCAFile:        filepath.Join(dir, "ca.crt"),
				EnvTLSFilesOptional: "true",
			}
			if tc.apiKey {
				env[EnvAPIKey] = apiKey
			}
			var logs strings.Builder
			cfg, err := configFrom(envOf(env), slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}

			want := tc.wantTLS
			for _, f := range []*string{&want.CertFile, &want.KeyFile, &want.CAFile} {
				if *f != "" {
					*f = filepath.Join(dir, *f)
				}
			}
			if cfg.TLS != want {
				t.Errorf("TLS = %+v, want %+v", cfg.TLS, want)
			}
			if got := cfg.APIKey != ""; got != tc.apiKey {
				t.Errorf("API key set %t, want %t", got, tc.apiKey)
			}
			for _, v := range []string{EnvTLSCertFile, EnvTLSKeyFile, EnvTLSCAFile} {
				logged := strings.Contains(logs.String(), "variable="+v)
				if wantLogged := slices.Contains(tc.absent, v); logged != wantLogged {
					t.Errorf("%s logged as not configured: %t, want %t; logs:\n%s", v, logged, wantLogged, logs.String())
				}
			}

			opts, err := cfg.clientOptions(slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			tlsConfig := opts.ConnectionOptions.TLS
			if got := tlsConfig != nil && tlsConfig.GetClientCertificate != nil; got != tc.mutualTLS {
				t.Errorf("client certificate configured %t, want %t", got, tc.mutualTLS)
			}
			if got := tlsConfig != nil && tlsConfig.RootCAs != nil; got != tc.customRoots {
				t.Errorf("CA file configured %t, want %t", got, tc.customRoots)
			}
			if tlsConfig != nil && !tc.mutualTLS && !tc.customRoots {
				t.Error("TLS configured without TLS material")
			}
			if got := opts.Credentials != nil; got != tc.apiKey {
				t.Errorf("API key credentials %t, want %t", got, tc.apiKey)
			}
		})
	}
}

// TestTLSFileErrors: files that are there but wrong, or half a key pair,
// fail with an error naming the variable and the file.
func TestTLSFileErrors(t *testing.T) {
	material := t.TempDir()
	certFile, keyFile := writeCertificate(t, material)
	garbage := filepath.Join(material, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, otherKey := writeCertificate(t, t.TempDir())
	missing := filepath.Join(material, "missing")

	for _, tc := range []struct {
		name     string
		tls      map[string]string
		optional string
		// want are fragments of the error, at load or when connecting.
		want []string
	}{
		{
			name: "certificate without its key", optional: "true",
			tls:  map[string]string{EnvTLSCertFile: certFile, EnvTLSKeyFile: missing},
			want: []string{EnvTLSCertFile + `="` + certFile + `" exists`, EnvTLSKeyFile + `="` + missing + `" does not`},
		},
		{
			name: "key without its certificate", optional: "true",
			tls:  map[string]string{EnvTLSCertFile: missing, EnvTLSKeyFile: keyFile},
			want: []string{EnvTLSKeyFile + `="` + keyFile + `" exists`, EnvTLSCertFile + `="` + missing + `" does not`},
		},
		{
			name: "certificate not PEM", optional: "true",
			tls:  map[string]string{EnvTLSCertFile: garbage, EnvTLSKeyFile: keyFile},
			want: []string{EnvTLSCertFile + `="` + garbage + `"`, "no PEM certificate"},
		},
		{
			name: "key not PEM", optional: "true",
			tls:  map[string]string{EnvTLSCertFile: certFile, EnvTLSKeyFile: garbage},
			want: []string{EnvTLSKeyFile + `="` + garbage + `"`, "no PEM private key"},
		},
		{
			name: "key of another certificate", optional: "true",
			tls:  map[string]string{EnvTLSCertFile: certFile, EnvTLSKeyFile: otherKey},
			want: []string{EnvTLSCertFile + `="` + certFile + `"`, EnvTLSKeyFile + `="` + otherKey + `"`, "do not make a key pair"},
		},
		{
			name: "CA not PEM", optional: "true",
			tls:  map[string]string{EnvTLSCAFile: garbage},
			want: []string{EnvTLSCAFile + `="` + garbage + `"`, "no PEM certificate"},
		},
		{
			name: "absent file without the optional flag",
			tls:  map[string]string{EnvTLSCAFile: missing},
			want: []string{EnvTLSCAFile + `="` + missing + `"`},
		},
		{
			name: "absent pair with the flag false", optional: "false",
			tls:  map[string]string{EnvTLSCertFile: missing, EnvTLSKeyFile: missing},
			want: []string{EnvTLSCertFile + `="` + missing + `"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{EnvTaskQueue: "q", EnvTLSFilesOptional: tc.optional}
			for k, v := range tc.tls {
				env[k] = v
			}
			cfg, err := configFrom(envOf(env), slog.Default())
			if err == nil {
				_, err = cfg.clientOptions(slog.Default())
			}
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
