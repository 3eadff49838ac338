package controller_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// The manager's requests to the API server are recorded as (group,
// resource, verb) triples; once the suite ran, the generated role must
// grant exactly those (see checkRole).

// apiCall is what RBAC authorizes: resource includes a subresource, as in
// "batchjobs/status".
type apiCall struct{ group, resource, verb string }

func (c apiCall) String() string { return fmt.Sprintf("%s %s %s", c.group, c.resource, c.verb) }

var (
	apiCallsMu sync.Mutex
	apiCalls   = map[apiCall]bool{}
)

// recording is cfg with a transport that records every resource request.
func recording(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return recorder{rt} })
	return c
}

type recorder struct{ rt http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if call, ok := callOf(req); ok {
		apiCallsMu.Lock()
		apiCalls[call] = true
		apiCallsMu.Unlock()
	}
	return r.rt.RoundTrip(req)
}

// callOf reads the RBAC triple of a request; discovery and other
// non-resource paths are not resource requests.
func callOf(req *http.Request) (apiCall, bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var group string
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group, rest = parts[1], parts[3:]
	default:
		return apiCall{}, false
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return apiCall{}, false
	}
	resource, named := rest[0], len(rest) > 1
	if len(rest) > 2 {
		resource += "/" + rest[2]
	}
	var verb string
	switch req.Method {
	case http.MethodGet:
		switch {
		case named:
			verb = "get"
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		return apiCall{}, false
	}
	return apiCall{group: group, resource: resource, verb: verb}, true
}

// grantedNotCalled are the rules of the role that no request of the
// manager exercises, with why they stay.
var grantedNotCalled = map[apiCall]string{
	// The API server asks for it to set blockOwnerDeletion in the worker
	// Deployment's owner reference (OwnerReferencesPermissionEnforcement).
	{"batch.temporalbatch.io", "batchjobs/finalizers", "update"}: "owner references with blockOwnerDeletion",
	// The cache's informers stream their initial list in a watch
	// (WatchList) where the server can; they list where it cannot, and
	// after a watch failed.
	{"apps", "deployments", "list"}:                 "informers list where the initial list cannot be streamed",
	{"batch.temporalbatch.io", "batchjobs", "list"}: "informers list where the initial list cannot be streamed",
	// client-go's event recorder patches an event that repeats (its series);
	// whether one repeats during the suite is up to timing.
	{"events.k8s.io", "events", "patch"}: "event series",
}

// leaderElection: leases are granted by the leader election role, not the
// manager role.
const leaderElection = "coordination.k8s.io"

// checkRole compares config/rbac/role.yaml with the recorded requests:
// every request must be granted and, when the whole suite ran, every grant
// requested (or listed in grantedNotCalled).
func checkRole() {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	Expect(yaml.Unmarshal(raw, &role)).To(Succeed())
	granted := map[apiCall]bool{}
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					granted[apiCall{g, res, v}] = true
				}
			}
		}
	}

	apiCallsMu.Lock()
	defer apiCallsMu.Unlock()
	var called, notGranted, notCalled []string
	for c := range apiCalls {
		called = append(called, c.String())
		if !granted[c] && c.group != leaderElection {
			notGranted = append(notGranted, c.String())
		}
	}
	slices.Sort(called)
	GinkgoWriter.Printf("The manager's API requests: %s\n", strings.Join(called, ", "))
	Expect(called).NotTo(BeEmpty(), "no request of the manager was recorded")
	Expect(notGranted).To(BeEmpty(), "requests the role (config/rbac/role.yaml, from the +kubebuilder:rbac markers) does not grant")

	for c := range grantedNotCalled {
		Expect(granted).To(HaveKey(c), "grantedNotCalled lists %s, which the role no longer grants", c)
	}
	cfg, _ := GinkgoConfiguration()
	if len(cfg.FocusStrings)+len(cfg.SkipStrings)+len(cfg.FocusFiles)+len(cfg.SkipFiles)+len(cfg.LabelFilter) > 0 {
		return // a part of the suite does not make every request
	}
	for c := range granted {
		if !apiCalls[c] && grantedNotCalled[c] == "" {
			notCalled = append(notCalled, c.String())
		}
	}
	slices.Sort(notCalled)
	Expect(notCalled).To(BeEmpty(), "grants of the role no request of the manager used: drop them from the +kubebuilder:rbac markers, or say in grantedNotCalled why they stay")
}

func TestCallOf(t *testing.T) {
	for _, tc := range []struct {
		method, url string
		want        apiCall
		ok          bool
	}{
		{"GET", "/apis/batch.temporalbatch.io/v1alpha1/namespaces/a/batchjobs/j", apiCall{"batch.temporalbatch.io", "batchjobs", "get"}, true},
		{"GET", "/apis/batch.temporalbatch.io/v1alpha1/batchjobs?watch=true&sendInitialEvents=true", apiCall{"batch.temporalbatch.io", "batchjobs", "watch"}, true},
		{"GET", "/apis/apps/v1/namespaces/a/deployments?labelSelector=x", apiCall{"apps", "deployments", "list"}, true},
		{"PUT", "/apis/batch.temporalbatch.io/v1alpha1/namespaces/a/batchjobs/j/status", apiCall{"batch.temporalbatch.io", "batchjobs/status", "update"}, true},
		{"POST", "/apis/events.k8s.io/v1/namespaces/a/events", apiCall{"events.k8s.io", "events", "create"}, true},
		{"DELETE", "/api/v1/namespaces/a/pods", apiCall{"", "pods", "deletecollection"}, true},
		{"GET", "/api/v1/namespaces/a", apiCall{"", "namespaces", "get"}, true},
		{"GET", "/apis/apps/v1", apiCall{}, false},
		{"GET", "/version", apiCall{}, false},
	} {
		req, err := http.NewRequest(tc.method, "https://apiserver"+tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := callOf(req)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s %s: got %v %v, want %v %v", tc.method, tc.url, got, ok, tc.want, tc.ok)
		}
	}
}
