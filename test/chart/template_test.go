package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const managerName = releaseName // the release name holds the chart name

// TestChartTemplates renders the chart over its value sets and checks what
// each one promises.
func TestChartTemplates(t *testing.T) {
	skipShort(t)
	checks := map[string]func(t *testing.T, objs []*unstructured.Unstructured){
		"default":            checkDefaults,
		"watch-namespaces":   checkWatchNamespaces,
		"temporal-cloud":     checkTemporalCloud,
		"dev-server":         checkDevServer,
		"no-leader-election": checkNoLeaderElection,
		"ha":                 checkHA,
	}
	seen := map[string]bool{}
	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			objs := render(t, vs)
			checkEveryRender(t, objs)
			if check, ok := checks[vs.name]; ok {
				seen[vs.name] = true
				check(t, objs)
			}
		})
	}
	for name := range checks {
		if !seen[name] {
			t.Errorf("value set %s (ci/%s-values.yaml) is gone", name, name)
		}
	}
}

// checkEveryRender holds for every value set.
func checkEveryRender(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" || o.GetLabels()["app.kubernetes.io/instance"] != releaseName {
			t.Errorf("%s %s lacks the chart's labels: %v", o.GetKind(), o.GetName(), o.GetLabels())
		}
	}
	dep := deployment(t, objs, managerName)
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName == "" {
		t.Error("the manager runs without a service account of its own")
	}
	checkRestricted(t, "manager", pod)
	c := pod.Containers[0]
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("manager resources = %+v, want CPU and memory requests and a memory limit", c.Resources)
	}
	probes := map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe}
	for path, p := range probes {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "probes" {
			t.Errorf("probe for %s = %+v, want an HTTP GET of %s on the port named probes", path, p, path)
		}
	}
	if port := containerPort(c, "probes"); port == 0 || !slices.Contains(c.Args, "--health-probe-bind-address=:"+itoa(port)) {
		t.Errorf("the probe port %d is not the one the manager serves probes on (args %v)", port, c.Args)
	}
	metricsPort := containerPort(c, "metrics")
	if !slices.Contains(c.Args, "--metrics-bind-address=:"+itoa(metricsPort)) {
		t.Errorf("the metrics port %d is not the one the manager serves metrics on (args %v)", metricsPort, c.Args)
	}
	svc := findOne(t, objs, "Service", managerName+"-metrics")
	var s corev1.Service
	fromUnstructured(t, svc, &s)
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("metrics Service ports = %+v, want one targeting the port named metrics", s.Spec.Ports)
	}
	for k, v := range s.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("the metrics Service selects %s=%s, which the manager's pods do not carry", k, v)
		}
	}
	if flagValue(c.Args, "--orchestrator-task-queue") == "" || flagValue(c.Args, "--temporal-address") == "" {
		t.Errorf("manager args %v lack the Temporal address or the orchestrator task queue", c.Args)
	}
}

// checkRestricted: the restricted Pod Security Standard.
func checkRestricted(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s pod securityContext = %+v, want runAsNonRoot and the RuntimeDefault seccomp profile", what, psc)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s container %s securityContext = %+v, want no privilege escalation, a read-only root filesystem and ALL capabilities dropped", what, c.Name, sc)
		}
	}
}

func checkDefaults(t *testing.T, objs []*unstructured.Unstructured) {
	crds := find(objs, "CustomResourceDefinition")
	if len(crds) != 1 || crds[0].GetName() != "batchjobs.batch.temporalbatch.io" {
		t.Fatalf("CRDs rendered = %v, want the BatchJob CRD", names(crds))
	}
	if crds[0].GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the CRD's annotations %v lack helm.sh/resource-policy: keep", crds[0].GetAnnotations())
	}
	// The rendered CRD is config/'s, with the chart's metadata.
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "config/crd/bases/batch.temporalbatch.io_batchjobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(crds[0].Object["spec"])
	wantSpec, _ := json.Marshal(want["spec"])
	if string(got) != string(wantSpec) {
		t.Error("the chart's CRD spec differs from config/crd/bases: run `make chart`")
	}

	role := clusterRole(t, objs, managerName+"-manager")
	if !equalRules(role.Rules, configRules(t, "config/rbac/role.yaml")) {
		t.Errorf("the manager ClusterRole's rules differ from config/rbac/role.yaml: run `make chart`\n%v", role.Rules)
	}
	binding := findOne(t, objs, "ClusterRoleBinding", managerName+"-manager")
	var b rbacv1.ClusterRoleBinding
	fromUnstructured(t, binding, &b)
	sa := deployment(t, objs, managerName).Spec.Template.Spec.ServiceAccountName
	if b.RoleRef.Name != role.Name || len(b.Subjects) != 1 || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != releaseNamespace {
		t.Errorf("ClusterRoleBinding = %+v, want %s bound to the service account %s/%s", b, role.Name, releaseNamespace, sa)
	}
	findOne(t, objs, "ServiceAccount", sa)
	le := findOne(t, objs, "Role", managerName+"-leader-election")
	if le.GetNamespace() != releaseNamespace {
		t.Errorf("the leader election Role is in %q, want the release namespace", le.GetNamespace())
	}
	for _, r := range []string{"-batchjob-editor", "-batchjob-viewer"} {
		findOne(t, objs, "ClusterRole", managerName+r)
	}
	for _, k := range []string{"ServiceMonitor", "PodDisruptionBudget", "ConfigMap"} {
		if got := find(objs, k); len(got) > 0 {
			t.Errorf("defaults render a %s: %v", k, names(got))
		}
	}

	args := deployment(t, objs, managerName).Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{
		"--temporal-address=temporal-frontend.temporal.svc:7233",
		"--temporal-namespace=default",
		"--orchestrator-task-queue=temporal-batch-orchestrator",
		"--leader-elect=true",
		"--leader-election-namespace=" + releaseNamespace,
		"--poll-interval=5s",
		"--log-level=info",
		"--task-queue-policy=Any",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
	if flagValue(args, "--watch-namespaces") != "" || flagValue(args, "--temporal-tls-cert") != "" {
		t.Errorf("default manager args %v watch namespaces or use TLS", args)
	}
	if dep := deployment(t, objs, managerName); *dep.Spec.Replicas != 1 {
		t.Errorf("replicas = %d, want 1", *dep.Spec.Replicas)
	}
	if dep := deployment(t, objs, managerName); dep.Spec.Template.Spec.Containers[0].Image != "ghcr.io/temporal-batch/manager:0.1.0" {
		t.Errorf("image = %s, want the chart's appVersion", dep.Spec.Template.Spec.Containers[0].Image)
	}
}

func checkWatchNamespaces(t *testing.T, objs []*unstructured.Unstructured) {
	for _, k := range []string{"ClusterRole", "ClusterRoleBinding"} {
		if got := find(objs, k); len(got) > 0 {
			t.Errorf("watching namespaces renders cluster-wide %ss: %v", k, names(got))
		}
	}
	want := configRules(t, "config/rbac/role.yaml")
	for _, ns := range []string{"team-a", "team-b"} {
		var role *rbacv1.Role
		for _, o := range find(objs, "Role") {
			if o.GetNamespace() == ns && o.GetName() == managerName+"-manager" {
				role = &rbacv1.Role{}
				fromUnstructured(t, o, role)
			}
		}
		if role == nil {
			t.Errorf("no manager Role in the watched namespace %s", ns)
			continue
		}
		if !equalRules(role.Rules, want) {
			t.Errorf("the manager Role in %s has rules %v, want config/rbac/role.yaml's", ns, role.Rules)
		}
		found := false
		for _, o := range find(objs, "RoleBinding") {
			var b rbacv1.RoleBinding
			fromUnstructured(t, o, &b)
			if b.Namespace == ns && b.RoleRef.Kind == "Role" && b.RoleRef.Name == role.Name &&
				len(b.Subjects) == 1 && b.Subjects[0].Namespace == releaseNamespace {
				found = true
			}
		}
		if !found {
			t.Errorf("no RoleBinding in %s binds the manager's service account to its Role", ns)
		}
	}
	args := deployment(t, objs, managerName).Spec.Template.Spec.Containers[0].Args
	if got := flagValue(args, "--watch-namespaces"); got != "team-a,team-b" {
		t.Errorf("--watch-namespaces = %q, want team-a,team-b", got)
	}
	if got := flagValue(args, "--temporal-namespace"); got != "batch" {
		t.Errorf("--temporal-namespace = %q, want batch", got)
	}
	if got := flagValue(args, "--task-queue-policy"); got != "NamespacePrefix" {
		t.Errorf("--task-queue-policy = %q, want NamespacePrefix", got)
	}
}

func checkTemporalCloud(t *testing.T, objs []*unstructured.Unstructured) {
	dep := deployment(t, objs, managerName)
	c := dep.Spec.Template.Spec.Containers[0]
	const dir = "/etc/temporal-batch/tls"
	for flag, want := range map[string]string{
		"--temporal-address":          "batch.a1b2c.tmprl.cloud:7233",
		"--temporal-namespace":        "batch.a1b2c",
		"--temporal-tls-cert":         dir + "/tls.crt",
		"--temporal-tls-key":          dir + "/tls.key",
		"--temporal-tls-ca":           dir + "/ca.crt",
		"--temporal-tls-server-name":  "batch.a1b2c.tmprl.cloud",
		"--worker-credentials-secret": "temporal-worker-credentials",
	} {
		if got := flagValue(c.Args, flag); got != want {
			t.Errorf("%s = %q, want %q", flag, got, want)
		}
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir && m.ReadOnly {
			for _, v := range dep.Spec.Template.Spec.Volumes {
				mounted = mounted || (v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "temporal-cloud-tls")
			}
		}
	}
	if !mounted {
		t.Errorf("the Secret temporal-cloud-tls is not mounted read-only at %s", dir)
	}
	var apiKey *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "TEMPORAL_API_KEY" {
			apiKey = &c.Env[i]
		}
	}
	if apiKey == nil || apiKey.Value != "" || apiKey.ValueFrom == nil || apiKey.ValueFrom.SecretKeyRef == nil ||
		apiKey.ValueFrom.SecretKeyRef.Name != "temporal-cloud-api-key" || apiKey.ValueFrom.SecretKeyRef.Key != "api-key" {
		t.Errorf("TEMPORAL_API_KEY = %+v, want a secretKeyRef to temporal-cloud-api-key/api-key", apiKey)
	}
	if fsGroup := dep.Spec.Template.Spec.SecurityContext.FSGroup; fsGroup == nil {
		t.Error("no fsGroup: the non-root manager cannot read the mounted Secret")
	}

	sm := findOne(t, objs, "ServiceMonitor", managerName)
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack release=prometheus", sm.GetLabels())
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "metrics" || endpoints[0].(map[string]any)["interval"] != "15s" {
		t.Errorf("ServiceMonitor endpoints = %v, want the port metrics every 15s", endpoints)
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := findOne(t, objs, "Service", managerName+"-metrics")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service does not carry", k, v)
		}
	}

	cm := findOne(t, objs, "ConfigMap", managerName+"-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Operators" {
		t.Errorf("dashboard ConfigMap labels %v annotations %v, want grafana_dashboard=1 and grafana_folder=Operators", cm.GetLabels(), cm.GetAnnotations())
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	var dash map[string]any
	if err := json.Unmarshal([]byte(data["temporal-batch.json"]), &dash); err != nil {
		t.Fatalf("the dashboard in the ConfigMap is not JSON: %v", err)
	}
	if dash["uid"] != "temporal-batch-jobs" {
		t.Errorf("dashboard uid = %v", dash["uid"])
	}
}

func checkDevServer(t *testing.T, objs []*unstructured.Unstructured) {
	const name = managerName + "-temporal-dev"
	dev := deployment(t, objs, name)
	if !strings.Contains(strings.ToLower(dev.Annotations["temporalbatch.io/not-for-production"]), "dev server") {
		t.Errorf("the dev server Deployment is not marked as not for production: %v", dev.Annotations)
	}
	c := dev.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "temporalio/temporal:") {
		t.Errorf("dev server image = %s, want the temporal CLI image", c.Image)
	}
	if got := strings.Join(c.Args, " "); !strings.HasPrefix(got, "server start-dev --ip 0.0.0.0") ||
		!strings.Contains(got, "--namespace batch-demo") || !strings.Contains(got, "--namespace batch") {
		t.Errorf("dev server args = %q, want server start-dev --ip 0.0.0.0 creating the namespaces batch-demo and batch", got)
	}
	checkRestricted(t, "dev server", dev.Spec.Template.Spec)
	var svc corev1.Service
	fromUnstructured(t, findOne(t, objs, "Service", name), &svc)
	for k, v := range svc.Spec.Selector {
		if dev.Spec.Template.Labels[k] != v {
			t.Errorf("the dev server Service selects %s=%s, which its pods do not carry", k, v)
		}
	}
	if mgr := deployment(t, objs, managerName); mgr.Spec.Selector.MatchLabels["app.kubernetes.io/component"] == dev.Spec.Selector.MatchLabels["app.kubernetes.io/component"] {
		t.Error("the manager's and the dev server's selectors overlap")
	}
	args := deployment(t, objs, managerName).Spec.Template.Spec.Containers[0].Args
	// Namespace-qualified: worker pods in other namespaces get the same address.
	if got, want := flagValue(args, "--temporal-address"), name+"."+releaseNamespace+".svc:7233"; got != want {
		t.Errorf("--temporal-address = %q, want the dev server %q", got, want)
	}
}

func checkNoLeaderElection(t *testing.T, objs []*unstructured.Unstructured) {
	args := deployment(t, objs, managerName).Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--leader-elect=false") || flagValue(args, "--leader-election-namespace") != "" {
		t.Errorf("manager args %v, want --leader-elect=false", args)
	}
	for _, o := range find(objs, "Role") {
		if strings.HasSuffix(o.GetName(), "-leader-election") {
			t.Errorf("a leader election Role without leader election: %s", o.GetName())
		}
	}
	if crds := find(objs, "CustomResourceDefinition"); len(crds) > 0 {
		t.Errorf("crds.install=false renders %v", names(crds))
	}
}

func checkHA(t *testing.T, objs []*unstructured.Unstructured) {
	dep := deployment(t, objs, managerName)
	if *dep.Spec.Replicas != 2 || !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--leader-elect=true") {
		t.Errorf("replicas = %d args %v, want 2 replicas with leader election", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Args)
	}
	pdb := findOne(t, objs, "PodDisruptionBudget", managerName)
	sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, which the manager's pods do not carry", k, v)
		}
	}
}

// TestChartRejectsBrokenValues: value combinations that would install a
// broken operator fail at render time with a message that says what to do.
func TestChartRejectsBrokenValues(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicaCount=2", "leaderElection.enabled=false"}, "needs leaderElection.enabled=true"},
		{[]string{"temporal.tls.enabled=true"}, "needs temporal.tls.secretName"},
		{[]string{"temporal.apiKey.enabled=true"}, "needs temporal.apiKey.secretName"},
		{[]string{"temporal.tls.enabled=true", "temporal.tls.secretName=s", "temporal.tls.certKey="}, "certKey (mTLS) or temporal.tls.caKey"},
		{[]string{"log.level=verbose"}, "log/level"},
		{[]string{"reconcile.pollInterval=5"}, "reconcile/pollInterval"},
		{[]string{"temporl.address=x:1"}, "temporl"},
		{[]string{"tenancy.taskQueuePolicy=Prefix"}, "tenancy/taskQueuePolicy"},
	} {
		args := []string{"template", releaseName, chartDir, "--namespace", releaseNamespace}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		out, err := helm(t, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm template --set %v: err %v, output %q; want a failure saying %q", tc.set, err, firstLine(out), tc.want)
		}
	}
}

// TestDashboardQueriesTheManagersMetrics: every metric the manager exports,
// per job and its Temporal calls, is on the dashboard, and the dashboard asks
// for no other.
func TestDashboardQueriesTheManagersMetrics(t *testing.T) {
	root := repoRoot(t)
	exported := map[string]bool{}
	for _, file := range []struct {
		path string
		min  int
	}{
		{"internal/controller/metrics.go", 6},
		{"internal/manager/temporal_metrics.go", 2},
	} {
		src, err := os.ReadFile(filepath.Join(root, file.path))
		if err != nil {
			t.Fatal(err)
		}
		found := regexp.MustCompile(`Name:\s*"(temporal_batch_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
		if len(found) < file.min {
			t.Fatalf("found %d metrics in %s, want at least %d", len(found), file.path, file.min)
		}
		for _, m := range found {
			exported[m[1]] = true
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, chartDir, "files/grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	queried := map[string]bool{}
	metric := regexp.MustCompile(`temporal_batch_[a-z_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				queried[m] = true
				if !exported[m] {
					t.Errorf("panel %q queries %s, which the manager does not export", p.Title, m)
				}
			}
		}
	}
	for m := range exported {
		if !queried[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
	titles := strings.ToLower(string(raw))
	for _, topic := range []string{"throughput", "failed", "parallelism"} {
		if !strings.Contains(titles, topic) {
			t.Errorf("no panel about %s", topic)
		}
	}
}

func deployment(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	fromUnstructured(t, findOne(t, objs, "Deployment", name), &d)
	if len(d.Spec.Template.Spec.Containers) == 0 {
		t.Fatalf("Deployment %s has no containers", name)
	}
	return &d
}

func clusterRole(t *testing.T, objs []*unstructured.Unstructured, name string) *rbacv1.ClusterRole {
	t.Helper()
	var r rbacv1.ClusterRole
	fromUnstructured(t, findOne(t, objs, "ClusterRole", name), &r)
	return &r
}

func fromUnstructured(t testing.TB, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// configRules reads the rules of a Role or ClusterRole under config/.
func configRules(t *testing.T, path string) []rbacv1.PolicyRule {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	var r rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r.Rules
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// flagValue is the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// TestEveryValueIsDocumented: docs/install.md has a row for every value of
// values.yaml (or for a value holding it).
func TestEveryValueIsDocumented(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(doc), "\n") {
		// The first cell names the values.
		if cell, ok := strings.CutPrefix(line, "| `"); ok {
			cell, _, _ = strings.Cut(cell, " | ")
			rows = append(rows, "`"+cell)
		}
	}
	documented := func(path []string) bool {
		for _, row := range rows {
			for i := 1; i <= len(path); i++ {
				if strings.Contains(row, "`"+strings.Join(path[:i], ".")+"`") {
					return true
				}
			}
			// A row like "`a.b.x`, `y`" documents a.b.y.
			if len(path) > 1 && strings.Contains(row, "`"+strings.Join(path[:len(path)-1], ".")+".") &&
				strings.Contains(row, "`"+path[len(path)-1]+"`") {
				return true
			}
		}
		return false
	}
	var walk func(path []string, v any)
	walk = func(path []string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, x := range m {
				walk(append(slices.Clone(path), k), x)
			}
			return
		}
		if !documented(path) {
			t.Errorf("the value %s is not in the values table of docs/install.md", strings.Join(path, "."))
		}
	}
	walk(nil, values)
}
