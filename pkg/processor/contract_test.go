package processor_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// The golden fixtures in testdata/contract are the wire contract of
// docs/processor-contract.md, and what other SDKs' workers test against:
// each must decode into its Go type with no field left over, and the Go
// value written out must be the fixture again.

const contractDir = "../../testdata/contract"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(contractDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// decodeStrict decodes raw into v, refusing fields v does not have.
func decodeStrict(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode into %T: %v", v, err)
	}
}

// sameJSON compares two JSON documents by meaning.
func sameJSON(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("JSON differs:\nwant %s\ngot  %s", want, got)
	}
}

func TestContractFixtures(t *testing.T) {
	jobRef := processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: "batchjob/shop/inflate-prices/6f1c2a9e-1d2b-4c8e-9a41-2f7d3b5c8e10"}
	const token = "4MXJ7ZQHT2C5VN3K6PWD8RBYGA"
	four, zero := 4, 0
	for _, tc := range []struct {
		file string
		// value is what the Go code builds for the fixture.
		value any
	}{
		{"page-input.json", &processor.PageInput{
			Job: jobRef, Page: processor.PageRef{Number: 7, Cursor: "sku-00700", Size: 100},
			Args: json.RawMessage(`{"percent":3}`), Lookahead: &four, PriorAttempts: 1, TotalPriorAttempts: 6, EnqueueToken: token,
		}},
		{"page-input-not-frontier.json", &processor.PageInput{
			Job: jobRef, Page: processor.PageRef{Number: 8, Cursor: "sku-00800", Size: 100}, Lookahead: &zero, EnqueueToken: token,
		}},
		{"page-input-legacy.json", &processor.PageInput{Job: jobRef, Page: processor.PageRef{Number: 0, Cursor: "", Size: 100}}},
		{"enqueue-single.json", &processor.EnqueuePage{Number: 8, Cursor: "sku-00800", Token: token}},
		{"enqueue-batch.json", &processor.EnqueuePageBatch{Number: 8, Cursors: []string{"sku-00800", "sku-00900", "sku-01000", "sku-01100"}, Token: token}},
		{"heartbeat-marker.json", &processor.HeartbeatMarker{EnqueuedNext: true}},
		{"page-result.json", &processor.PageResult{ItemsProcessed: 97, ItemsFailed: 3, FailedItems: []processor.FailedItem{
			{Item: "sku-00712", Type: "InvalidRecord", Message: "price is negative"},
			{Item: "sku-00745", Type: "Rejected", Message: "card 4111 1111 1111 1111 declined", Sensitive: true},
		}}},
		{"page-result-next-cursor.json", &processor.PageResult{ItemsProcessed: 100, NextCursor: "sku-00800"}},
		{"error-details.json", &processor.ErrorDetails{Sensitive: true, NothingProcessed: true}},
		{"failure-batch.json", &processor.FailureBatch{Job: jobRef, Failures: []processor.FailureReport{
			{Page: 7, Cursor: "sku-00700", Item: "sku-00712", Type: "InvalidRecord", Message: "price is negative", Time: time.Date(2026, 11, 29, 10, 15, 30, 0, time.UTC)},
			{Page: 9, Cursor: "sku-00900", Type: "UpstreamSchema", Message: "column price_cents missing", Time: time.Date(2026, 11, 29, 10, 15, 31, 5e8, time.UTC)},
		}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw := readFixture(t, tc.file)
			// The fixture decodes into the Go type, every field known...
			decoded := reflect.New(reflect.TypeOf(tc.value).Elem()).Interface()
			decodeStrict(t, raw, decoded)
			if got, _ := json.Marshal(decoded); !jsonEqual(got, mustMarshal(t, tc.value)) {
				t.Errorf("the fixture decodes to %s, the Go code builds %s", got, mustMarshal(t, tc.value))
			}
			// ...and what the Go code writes is the fixture.
			sameJSON(t, raw, mustMarshal(t, tc.value))
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestContractLimits(t *testing.T) {
	var limits map[string]int
	decodeStrict(t, readFixture(t, "limits.json"), &limits)
	want := map[string]int{
		"maxCursorBytes":         processor.MaxCursorBytes,
		"maxLookahead":           processor.MaxLookahead,
		"maxEnqueueBytes":        processor.MaxEnqueueBytes,
		"maxReportedFailedItems": processor.MaxReportedFailedItems,
		"maxFailureMessageBytes": processor.MaxFailureMessageBytes,
	}
	if !reflect.DeepEqual(limits, want) {
		t.Errorf("limits.json %v, the Go package's %v", limits, want)
	}
}

func TestContractEnvironment(t *testing.T) {
	var env map[string]struct {
		Default  string `json:"default"`
		Required bool   `json:"required"`
		Meaning  string `json:"meaning"`
	}
	decodeStrict(t, readFixture(t, "environment.json"), &env)
	names := []string{
		processor.EnvAddress, processor.EnvNamespace, processor.EnvTaskQueue, processor.EnvPagesPerPod, processor.EnvJob,
		processor.EnvGracePeriod, processor.EnvTLSCertFile, processor.EnvTLSKeyFile, processor.EnvTLSCAFile,
		processor.EnvTLSServerName, processor.EnvTLSFilesOptional, processor.EnvAPIKey,
	}
	if len(env) != len(names) {
		t.Errorf("environment.json has %d variables, the Go package reads %d", len(env), len(names))
	}
	for _, n := range names {
		if _, ok := env[n]; !ok {
			t.Errorf("environment.json lacks %s", n)
		}
	}
	// The defaults are the ones ConfigFromEnv applies.
	for name, want := range map[string]string{
		processor.EnvAddress:          processor.DefaultAddress,
		processor.EnvNamespace:        processor.DefaultNamespace,
		processor.EnvPagesPerPod:      strconv.Itoa(processor.DefaultPagesPerPod),
		processor.EnvGracePeriod:      processor.DefaultGracePeriod.String(),
		processor.EnvTLSFilesOptional: "false",
	} {
		got := env[name].Default
		if d, err := time.ParseDuration(got); err == nil && name == processor.EnvGracePeriod {
			got = d.String()
		}
		if got != want {
			t.Errorf("%s defaults to %q in environment.json, %q in the Go package", name, got, want)
		}
	}
	if !env[processor.EnvTaskQueue].Required {
		t.Errorf("%s is required", processor.EnvTaskQueue)
	}
}
