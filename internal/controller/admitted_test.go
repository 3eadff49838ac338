package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/admitted"
	"github.com/temporal-batch/temporal-batch/internal/localenv"
)

// TestAdmittedSpecsRun checks that admission and the controller agree: every
// spec the apiserver admits, read back with the defaults it filled in,
// converts into an orchestrator input that validates (else the job would go
// Failed/InvalidSpec after admission said yes), and every spec the controller
// refuses is refused at admission already.
//
// The admitted specs are those the admission suite applies
// (api/v1alpha1/testdata/admitted), the samples, and the boundary
// combinations of admittedBoundarySpecs.
func TestAdmittedSpecsRun(t *testing.T) {
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := localenv.KubeAssets(root)
	if err != nil {
		t.Skipf("no kube-apiserver and etcd: %v", err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := batchv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "admitted"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	seq := 0
	// apply server-side applies a job of that spec, as the admission suite
	// does, and returns its name.
	apply := func(spec map[string]any) (string, error) {
		seq++
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion(batchv1alpha1.GroupVersion.String())
		u.SetKind("BatchJob")
		u.SetNamespace(ns)
		u.SetName(fmt.Sprintf("job-%d", seq))
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("admitted-specs"), client.ForceOwnership)
		return u.GetName(), err
	}

	var cases []admittedCase
	shared, err := admitted.Specs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shared {
		cases = append(cases, admittedCase{"testdata/" + s.Name, specFromYAML(t, s.YAML)})
	}
	cases = append(cases, sampleSpecs(t, root)...)
	cases = append(cases, admittedBoundarySpecs()...)

	t.Run("admitted", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				name, err := apply(tc.spec)
				if err != nil {
					t.Fatalf("admission refused the spec: %v", err)
				}
				job := &batchv1alpha1.BatchJob{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job); err != nil {
					t.Fatal(err)
				}
				if _, err := orchestratorInput(job); err != nil {
					t.Errorf("admitted, but the controller refuses it: %v", err)
				}
			})
		}
	})
	t.Logf("%d admitted specs", len(cases))

	t.Run("refused", func(t *testing.T) {
		for _, tc := range refusedSpecs() {
			t.Run(tc.name, func(t *testing.T) {
				spec := specFromYAML(t, tc.yaml)
				// The controller's own reading, without the apiserver's
				// defaults: the case must be one it refuses.
				job := &batchv1alpha1.BatchJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "refused"}}
				if err := yaml.Unmarshal([]byte(tc.yaml), &job.Spec); err != nil {
					t.Fatal(err)
				}
				if _, err := orchestratorInput(job); err == nil {
					t.Fatalf("the controller accepts the spec; the case tests nothing")
				}
				if _, err := apply(spec); !apierrors.IsInvalid(err) {
					t.Errorf("the controller refuses the spec, admission answered %v; want it refused as Invalid", err)
				}
			})
		}
	})
}

type admittedCase struct {
	name string
	spec map[string]any
}

func specFromYAML(t *testing.T, s string) map[string]any {
	t.Helper()
	var spec map[string]any
	if err := yaml.Unmarshal([]byte(s), &spec); err != nil {
		t.Fatalf("%v in\n%s", err, s)
	}
	return spec
}

// sampleSpecs are the specs of config/samples.
func sampleSpecs(t *testing.T, root string) []admittedCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, "config", "samples", "batch_*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no samples under config/samples: %v", err)
	}
	var cases []admittedCase
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(raw), "\n---") {
			var obj struct {
				Kind string         `json:"kind"`
				Spec map[string]any `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if obj.Kind != "BatchJob" {
				continue
			}
			cases = append(cases, admittedCase{fmt.Sprintf("sample/%s#%d", filepath.Base(p), i), obj.Spec})
			// The same sample paused with kubectl batch scale --parallelism 0.
			paused := specFromYAML(t, mustYAML(t, obj.Spec))
			paused["parallelism"] = int64(0)
			cases = append(cases, admittedCase{fmt.Sprintf("sample/%s#%d/parallelism-0", filepath.Base(p), i), paused})
		}
	}
	return cases
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// admittedBoundarySpecs combines the fields at the bounds admission allows:
// every mutable field (parallelism, rampUp, rateLimit, suspend) crossed with
// the others, then each fixed field at its bounds, on a running and on a
// paused job.
func admittedBoundarySpecs() []admittedCase {
	base := func() map[string]any {
		return map[string]any{"taskQueue": "q", "processor": map[string]any{"name": "P"}}
	}
	const maxInt32 = int64(1<<31 - 1)
	const maxDuration = "2562047h" // the longest whole hours a Go duration holds

	type rampCase struct {
		name string
		ramp func(parallelism int64) map[string]any // nil: not admitted at that parallelism
	}
	ramps := []rampCase{
		{"no-ramp-up", nil},
		{"ramp-up-from-1-step-1-every-1ns", func(int64) map[string]any {
			return map[string]any{"from": int64(1), "step": int64(1), "every": "1ns"}
		}},
		{"ramp-up-from-the-parallelism-largest-step", func(p int64) map[string]any {
			return map[string]any{"from": max(p, 1), "step": maxInt32, "every": maxDuration}
		}},
		{"ramp-up-from-2-default-step", func(int64) map[string]any {
			return map[string]any{"from": int64(2), "every": "30s"}
		}},
		{"ramp-up-from-the-largest", func(int64) map[string]any {
			return map[string]any{"from": maxInt32, "every": "1h30m"}
		}},
	}
	rates := []struct {
		name string
		rate any
	}{{"no-rate-limit", nil}, {"rate-.5", ".5"}, {"rate-smallest", "0.000000000000000001"}, {"rate-largest", "99999999999999999999"}}
	var cases []admittedCase
	for _, p := range []int64{0, 1, 2, 10000} {
		for _, r := range ramps {
			var ramp map[string]any
			if r.ramp != nil {
				ramp = r.ramp(p)
				// Admission allows rampUp.from above the parallelism only
				// while the parallelism is 0.
				if from := ramp["from"].(int64); p != 0 && from > p {
					continue
				}
			}
			for _, rate := range rates {
				for _, suspend := range []bool{false, true} {
					spec := base()
					spec["parallelism"] = p
					spec["suspend"] = suspend
					if ramp != nil {
						spec["rampUp"] = ramp
					}
					if rate.rate != nil {
						spec["rateLimit"] = map[string]any{"pagesPerSecond": rate.rate}
					}
					cases = append(cases, admittedCase{
						fmt.Sprintf("parallelism-%d/%s/%s/suspend-%t", p, r.name, rate.name, suspend), spec})
				}
			}
		}
	}

	type fixedCase struct {
		name string
		set  func(spec map[string]any)
	}
	processor := func(fields map[string]any) func(map[string]any) {
		return func(spec map[string]any) {
			for k, v := range fields {
				spec["processor"].(map[string]any)[k] = v
			}
		}
	}
	field := func(name string, v any) func(map[string]any) {
		return func(spec map[string]any) { spec[name] = v }
	}
	cursors := func(n, length int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = fmt.Sprintf("%0*d", length, i)
		}
		return out
	}
	errorTypes := make([]any, 100)
	for i := range errorTypes {
		errorTypes[i] = fmt.Sprintf("Error%d", i)
	}
	fixed := []fixedCase{
		{"taskQueue-1000-characters", field("taskQueue", strings.Repeat("q", 1000))},
		{"processor.name-255-characters", processor(map[string]any{"name": strings.Repeat("P", 255)})},
		{"processor.pageSize-1", processor(map[string]any{"pageSize": int64(1)})},
		{"processor.pageSize-100000", processor(map[string]any{"pageSize": int64(100000)})},
		{"processor.timeout-1ns", processor(map[string]any{"timeout": "1ns"})},
		{"processor.timeout-longest", processor(map[string]any{"timeout": maxDuration})},
		{"processor.timeout-micro-sign", processor(map[string]any{"timeout": "1µs"})},
		{"processor.timeout-greek-mu", processor(map[string]any{"timeout": "1μs"})},
		{"processor.timeout-plus-sign-fraction", processor(map[string]any{"timeout": "+1.5h"})},
		{"processor.timeout-leading-dot", processor(map[string]any{"timeout": ".5s"})},
		{"processor.timeout-trailing-dot", processor(map[string]any{"timeout": "1.s"})},
		{"processor.heartbeatTimeout-0s", processor(map[string]any{"heartbeatTimeout": "0s"})},
		{"processor.heartbeatTimeout-0", processor(map[string]any{"heartbeatTimeout": "0"})},
		{"processor.heartbeatTimeout-minus-0s", processor(map[string]any{"heartbeatTimeout": "-0s"})},
		{"processor.delivery-AtMostOnce", processor(map[string]any{"delivery": "AtMostOnce"})},
		{"processor.lookahead-1", processor(map[string]any{"lookahead": int64(1)})},
		{"processor.lookahead-1000", processor(map[string]any{"lookahead": int64(1000)})},
		{"processor.args", processor(map[string]any{"args": map[string]any{"percent": int64(3), "tags": []any{"a", nil}}})},
		{"processor.firstCursor-4096-characters", processor(map[string]any{"firstCursor": strings.Repeat("x", 4096)})},
		{"processor.firstCursor-4096-bytes", processor(map[string]any{"firstCursor": strings.Repeat("é", 2048)})},
		{"processor.firstCursor-empty", processor(map[string]any{"firstCursor": ""})},
		{"processor.cursors-1000", processor(map[string]any{"cursors": cursors(1000, 8), "lookahead": int64(1000)})},
		{"processor.cursors-256KiB", processor(map[string]any{"cursors": cursors(64, 4096)})},
		{"processor.cursors-of-4096-bytes", processor(map[string]any{"cursors": []any{strings.Repeat("é", 2048), strings.Repeat("€", 1365)}})},
		{"processor.cursors-one", processor(map[string]any{"cursors": []any{""}})},
		{"retry-intervals-1ns", field("retry", map[string]any{"initialInterval": "1ns", "maximumInterval": "1ns"})},
		{"retry-intervals-longest", field("retry", map[string]any{"initialInterval": maxDuration, "maximumInterval": maxDuration, "stuckPageRetryInterval": maxDuration})},
		{"retry-initialInterval-1ns-maximumInterval-longest", field("retry", map[string]any{"initialInterval": "1ns", "maximumInterval": maxDuration})},
		{"retry-initialInterval-at-the-default-maximumInterval", field("retry", map[string]any{"initialInterval": "1m"})},
		{"retry-stuckPageRetryInterval-0s", field("retry", map[string]any{"stuckPageRetryInterval": "0s"})},
		{"retry-stuckPageRetryInterval-minus-0", field("retry", map[string]any{"stuckPageRetryInterval": "-0"})},
		{"retry-backoffCoefficient-1", field("retry", map[string]any{"backoffCoefficient": "1"})},
		{"retry-backoffCoefficient-just-above-1", field("retry", map[string]any{"backoffCoefficient": "1.000000000000000001"})},
		{"retry-backoffCoefficient-largest", field("retry", map[string]any{"backoffCoefficient": "99999999999999999999"})},
		{"retry-maximumAttempts-1", field("retry", map[string]any{"maximumAttempts": int64(1)})},
		{"retry-maximumAttempts-1000", field("retry", map[string]any{"maximumAttempts": int64(1000)})},
		{"retry-100-nonRetryableErrorTypes", field("retry", map[string]any{"nonRetryableErrorTypes": errorTypes})},
		{"failurePolicy-empty", field("failurePolicy", map[string]any{})},
		{"failurePolicy-maxFailedPages-0", field("failurePolicy", map[string]any{"maxFailedPages": int64(0)})},
		{"failurePolicy-maxFailedPages-500", field("failurePolicy", map[string]any{"maxFailedPages": int64(500)})},
		{"failurePolicy-toleratedFailedPages-500", field("failurePolicy", map[string]any{"toleratedFailedPages": int64(500)})},
		{"failurePolicy-toleratedFailedPages-at-maxFailedPages", field("failurePolicy", map[string]any{"maxFailedPages": int64(3), "toleratedFailedPages": int64(3)})},
		{"failurePolicy-handler-255-characters-handlerTimeout-1s", field("failurePolicy", map[string]any{"handler": strings.Repeat("H", 255), "handlerTimeout": "1s"})},
		{"failurePolicy-handlerTimeout-1000ms", field("failurePolicy", map[string]any{"handler": "H", "handlerTimeout": "1000ms"})},
		{"failurePolicy-handlerTimeout-longest", field("failurePolicy", map[string]any{"handlerTimeout": maxDuration})},
		{"cancellationPolicy-Terminate", field("cancellationPolicy", "Terminate")},
		{"cancellationPolicy-Abandon", field("cancellationPolicy", "Abandon")},
		{"ttlSecondsAfterFinished-0", field("ttlSecondsAfterFinished", int64(0))},
		{"worker-pagesPerPod-1000", field("worker", map[string]any{"pagesPerPod": int64(1000), "template": map[string]any{
			"spec": map[string]any{"containers": []any{map[string]any{"name": "w", "image": "w"}}}}})},
	}
	for _, f := range fixed {
		running := base()
		f.set(running)
		cases = append(cases, admittedCase{"fixed/" + f.name, running})
		paused := base()
		f.set(paused)
		paused["parallelism"] = int64(0)
		paused["rampUp"] = map[string]any{"from": int64(5), "step": int64(5), "every": "10s"}
		cases = append(cases, admittedCase{"fixed/" + f.name + "/paused-with-ramp-up", paused})
	}
	return cases
}

type refusedCase struct {
	name string
	yaml string
}

// refusedSpecs are specs that orchestratorInput refuses, one per problem it
// names that a user can write; admission must refuse every one.
func refusedSpecs() []refusedCase {
	const base = "taskQueue: q\nprocessor: {name: P}\n"
	return []refusedCase{
		{"empty taskQueue", "taskQueue: \"\"\nprocessor: {name: P}"},
		{"empty processor.name", "taskQueue: q\nprocessor: {name: \"\"}"},
		{"processor.pageSize 100001", "taskQueue: q\nprocessor: {name: P, pageSize: 100001}"},
		{"negative processor.pageSize", "taskQueue: q\nprocessor: {name: P, pageSize: -1}"},
		{"processor.timeout 0s", "taskQueue: q\nprocessor: {name: P, timeout: 0s}"},
		{"negative processor.timeout", "taskQueue: q\nprocessor: {name: P, timeout: -5m}"},
		{"negative processor.heartbeatTimeout", "taskQueue: q\nprocessor: {name: P, heartbeatTimeout: -1s}"},
		{"processor.delivery not in the enum", "taskQueue: q\nprocessor: {name: P, delivery: ExactlyOnce}"},
		{"processor.firstCursor over 4096 characters", "taskQueue: q\nprocessor: {name: P, firstCursor: \"" + strings.Repeat("x", 4097) + "\"}"},
		{"processor.firstCursor over 4096 bytes", "taskQueue: q\nprocessor: {name: P, firstCursor: \"" + strings.Repeat("é", 2049) + "\"}"},
		{"processor.lookahead 1001", "taskQueue: q\nprocessor: {name: P, lookahead: 1001}"},
		{"negative processor.lookahead", "taskQueue: q\nprocessor: {name: P, lookahead: -1}"},
		{"processor.cursors with processor.firstCursor", "taskQueue: q\nprocessor: {name: P, firstCursor: \"0\", cursors: [\"0:5000\"]}"},
		{"1001 processor.cursors", "taskQueue: q\nprocessor: {name: P, cursors: " + admitted.Cursors(1001, 8) + "}"},
		{"a processor.cursors entry over 4096 bytes", "taskQueue: q\nprocessor: {name: P, cursors: [\"0\", \"" + strings.Repeat("é", 2049) + "\"]}"},
		{"processor.cursors over 256 KiB together", "taskQueue: q\nprocessor: {name: P, cursors: " + admitted.Cursors(65, 4096) + "}"},
		{"negative retry.initialInterval", base + "retry: {initialInterval: -1s}"},
		{"negative retry.maximumInterval", base + "retry: {maximumInterval: -1m}"},
		{"negative retry.stuckPageRetryInterval", base + "retry: {stuckPageRetryInterval: -5m}"},
		{"retry.initialInterval above retry.maximumInterval", base + "retry: {initialInterval: 2m, maximumInterval: 1m}"},
		{"retry.backoffCoefficient 0.5", base + "retry: {backoffCoefficient: \"0.5\"}"},
		{"retry.backoffCoefficient not a decimal", base + "retry: {backoffCoefficient: abc}"},
		{"negative retry.maximumAttempts", base + "retry: {maximumAttempts: -1}"},
		{"negative failurePolicy.maxFailedPages", base + "failurePolicy: {maxFailedPages: -1}"},
		{"negative failurePolicy.toleratedFailedPages", base + "failurePolicy: {toleratedFailedPages: -1}"},
		{"failurePolicy.toleratedFailedPages above maxFailedPages", base + "failurePolicy: {maxFailedPages: 2, toleratedFailedPages: 3}"},
		{"failurePolicy.handlerTimeout under a second", base + "failurePolicy: {handler: H, handlerTimeout: 500ms}"},
		{"negative failurePolicy.handlerTimeout", base + "failurePolicy: {handlerTimeout: -1m}"},
		{"negative parallelism", base + "parallelism: -1"},
		{"parallelism 10001", base + "parallelism: 10001"},
		{"rampUp.from 0", base + "parallelism: 4\nrampUp: {from: 0, every: 10s}"},
		{"rampUp.from 0 while paused", base + "parallelism: 0\nrampUp: {from: 0, every: 10s}"},
		{"rampUp.from above parallelism", base + "parallelism: 4\nrampUp: {from: 5, every: 10s}"},
		{"rampUp.every 0s", base + "parallelism: 4\nrampUp: {from: 1, every: 0s}"},
		{"rampUp without every", base + "parallelism: 4\nrampUp: {from: 1}"},
		{"rateLimit.pagesPerSecond 0", base + "rateLimit: {pagesPerSecond: \"0\"}"},
		{"rateLimit.pagesPerSecond not a decimal", base + "rateLimit: {pagesPerSecond: abc}"},
	}
}
