package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// The fixtures under testdata/batchjobs hold BatchJobs with the status the
// controller writes in each situation (internal/controller/plan.go): the
// conditions Complete, Failed, Suspended, Progressing and Ready, and
// Reconciling and Stalled for kstatus, in the order the controller first
// sets them, and status.observedGeneration.

// gitopsCase is what Argo CD and kstatus make of a fixture.
type gitopsCase struct {
	fixture string
	// argo is the Argo CD health status; argoMessage a part of its message.
	argo, argoMessage string
	// kstatus lists the acceptable results (none: not checked);
	// kstatusMessage is a part of the message.
	kstatus        []status.Status
	kstatusMessage string
}

var gitopsCases = []gitopsCase{
	// kstatus calls any resource without status.observedGeneration or
	// conditions Current; the controller's first pass writes both.
	{"created", "Progressing", "Waiting for the controller", nil, ""},
	{"starting", "Progressing", "starting the orchestrator workflow", []status.Status{status.InProgressStatus}, "starting"},
	{"running", "Progressing", "120 pages completed", []status.Status{status.InProgressStatus}, "120 pages completed"},
	{"ramping-up", "Progressing", "4 pages completed", []status.Status{status.InProgressStatus}, "4 pages completed"},
	{"suspended", "Suspended", "no new pages start", []status.Status{status.CurrentStatus}, ""},
	{"complete", "Healthy", "all 250 pages completed", []status.Status{status.CurrentStatus}, ""},
	{"failed", "Degraded", "3 pages failed for good", []status.Status{status.FailedStatus}, "3 pages failed for good"},
	// Stalled may clear when workers come back: kstatus may call it
	// in progress or failed, but it must say why.
	{"stalled", "Degraded", "no page completed for 10m0s", []status.Status{status.InProgressStatus, status.FailedStatus}, "no page completed for 10m0s"},
	{"temporal-unavailable", "Degraded", "does not answer", []status.Status{status.InProgressStatus}, ""},
	{"new-generation", "Progressing", "generation 3", []status.Status{status.InProgressStatus}, "latest observed generation is 2"},
}

func loadFixture(t testing.TB, name string) *unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "batchjobs", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := decodeObject(raw)
	if err != nil || obj == nil {
		t.Fatalf("%s: %v", name, err)
	}
	return obj
}

// argoHealth runs the chart's Argo CD health check on obj the way Argo CD
// does: obj as a global table, in a state with only the package, base and
// table libraries.
func argoHealth(t testing.TB, obj *unstructured.Unstructured) (healthStatus, message string) {
	t.Helper()
	script, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "files", "argocd-health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			t.Fatal(err)
		}
	}
	L.SetGlobal("obj", toLua(L, obj.Object))
	if err := L.DoString(string(script)); err != nil {
		t.Fatalf("argocd-health.lua on %s: %v", obj.GetName(), err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("argocd-health.lua returned %v, want a table", L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

// toLua converts decoded JSON the way Argo CD hands objects to Lua.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case map[string]any:
		tbl := L.NewTable()
		for k, x := range v {
			tbl.RawSetString(k, toLua(L, x))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, x := range v {
			tbl.Append(toLua(L, x))
		}
		return tbl
	}
	panic("unexpected JSON value")
}

func TestArgoCDHealthCheck(t *testing.T) {
	for _, tc := range gitopsCases {
		t.Run(tc.fixture, func(t *testing.T) {
			got, msg := argoHealth(t, loadFixture(t, tc.fixture))
			if got != tc.argo || !strings.Contains(msg, tc.argoMessage) {
				t.Errorf("Argo CD health = %s %q, want %s with a message containing %q", got, msg, tc.argo, tc.argoMessage)
			}
		})
	}
}

func TestKstatus(t *testing.T) {
	for _, tc := range gitopsCases {
		t.Run(tc.fixture, func(t *testing.T) {
			checkKstatus(t, tc, loadFixture(t, tc.fixture))
		})
	}
}

func checkKstatus(t testing.TB, tc gitopsCase, obj *unstructured.Unstructured) {
	t.Helper()
	if tc.kstatus == nil {
		return
	}
	res, err := status.Compute(obj)
	if err != nil {
		t.Fatalf("kstatus Compute: %v", err)
	}
	ok := false
	for _, s := range tc.kstatus {
		ok = ok || res.Status == s
	}
	if !ok || !strings.Contains(res.Message, tc.kstatusMessage) {
		t.Errorf("kstatus = %s %q, want one of %v with a message containing %q", res.Status, res.Message, tc.kstatus, tc.kstatusMessage)
	}
}

// TestArgoCDHealthCheckIsDocumented: the documented argocd-cm entry is the
// shipped script.
func TestArgoCDHealthCheckIsDocumented(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, chartDir, "files", "argocd-health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "resource.customizations.health.batch.temporalbatch.io_BatchJob") {
		t.Error("docs/install.md does not name the argocd-cm key of the health check")
	}
	// The docs embed the script indented under the argocd-cm key.
	var indented strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(script), "\n"), "\n") {
		if line == "" {
			indented.WriteString("\n")
			continue
		}
		indented.WriteString("    " + line + "\n")
	}
	if !strings.Contains(string(doc), indented.String()) {
		t.Error("docs/install.md does not hold the current files/argocd-health.lua under the argocd-cm key: copy it there")
	}
}
