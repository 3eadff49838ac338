package v1alpha1_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/admitted"
)

const fieldOwner = client.FieldOwner("admission-suite")

var jobSeq atomic.Int64

// newJob builds a BatchJob from the YAML of its spec, with a name of its own.
func newJob(specYAML string) *unstructured.Unstructured {
	var spec map[string]any
	ExpectWithOffset(1, yaml.Unmarshal([]byte(specYAML), &spec)).To(Succeed())
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(batchv1alpha1.GroupVersion.String())
	u.SetKind("BatchJob")
	u.SetNamespace(testNamespace)
	u.SetName(fmt.Sprintf("job-%d", jobSeq.Add(1)))
	return u
}

// apply server-side applies obj, as kubectl apply --server-side and GitOps
// tools do. obj stays the manifest: the client writes the answer into a copy.
func apply(obj *unstructured.Unstructured) error {
	return k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), fieldOwner, client.ForceOwnership)
}

func get(obj *unstructured.Unstructured) *unstructured.Unstructured {
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
	return got
}

func nestedInt64(obj *unstructured.Unstructured, path ...string) int64 {
	v, found, err := unstructured.NestedInt64(obj.Object, path...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, found).To(BeTrue(), "%v is not set", path)
	return v
}

// beInvalidWith matches the apiserver's 422 Invalid error carrying msg.
func beInvalidWith(msg string) OmegaMatcher {
	return SatisfyAll(
		WithTransform(apierrors.IsInvalid, BeTrue()),
		MatchError(ContainSubstring(msg)),
	)
}

const workerTemplate = `
    metadata: {labels: {app: inflate-prices}}
    spec:
      containers:
      - name: worker
        image: ghcr.io/temporal-batch/example-worker:latest`

var _ = Describe("BatchJob admission", func() {
	DescribeTable("rejects an invalid spec with a message naming the field and the fix",
		func(specYAML, message string) {
			err := apply(newJob(specYAML))
			Expect(err).To(beInvalidWith(message))
			GinkgoWriter.Println(err.Error())
		},
		Entry("missing taskQueue", `
processor: {name: InflateProductPrices}`,
			`spec.taskQueue: Required value`),
		Entry("empty taskQueue", `
taskQueue: ""
processor: {name: InflateProductPrices}`,
			`spec.taskQueue in body should be at least 1 chars long`),
		Entry("missing processor", `
taskQueue: q`,
			`spec.processor: Required value`),
		Entry("empty processor.name", `
taskQueue: q
processor: {name: ""}`,
			`spec.processor.name in body should be at least 1 chars long`),
		Entry("processor.pageSize 0", `
taskQueue: q
processor: {name: P, pageSize: 0}`,
			`spec.processor.pageSize in body should be greater than or equal to 1`),
		Entry("processor.pageSize 100001", `
taskQueue: q
processor: {name: P, pageSize: 100001}`,
			`spec.processor.pageSize in body should be less than or equal to 100000`),
		Entry("parallelism -1", `
taskQueue: q
processor: {name: P}
parallelism: -1`,
			`spec.parallelism in body should be greater than or equal to 0`),
		Entry("parallelism 10001", `
taskQueue: q
processor: {name: P}
parallelism: 10001`,
			`spec.parallelism in body should be less than or equal to 10000`),
		Entry("processor.delivery not in the enum", `
taskQueue: q
processor: {name: P, delivery: ExactlyOnce}`,
			`spec.processor.delivery: Unsupported value: "ExactlyOnce": supported values: "AtLeastOnce", "AtMostOnce"`),
		Entry("cancellationPolicy not in the enum", `
taskQueue: q
processor: {name: P}
cancellationPolicy: Delete`,
			`spec.cancellationPolicy: Unsupported value: "Delete": supported values: "Cancel", "Terminate", "Abandon"`),
		Entry("processor.timeout 0s", `
taskQueue: q
processor: {name: P, timeout: 0s}`,
			`spec.processor.timeout must be a positive duration, e.g. 5m or 1h30m`),
		Entry("processor.timeout not a duration", `
taskQueue: q
processor: {name: P, timeout: 5 minutes}`,
			`spec.processor.timeout must be a positive duration, e.g. 5m or 1h30m`),
		Entry("negative processor.heartbeatTimeout", `
taskQueue: q
processor: {name: P, heartbeatTimeout: -1s}`,
			`spec.processor.heartbeatTimeout must be a duration that is not negative, e.g. 30s; use 0s to disable it`),
		Entry("rampUp.from above parallelism", `
taskQueue: q
processor: {name: P}
parallelism: 4
rampUp: {from: 5, every: 10s}`,
			`spec.rampUp.from must not exceed spec.parallelism: lower rampUp.from or raise parallelism`),
		Entry("rampUp.from 0", `
taskQueue: q
processor: {name: P}
parallelism: 4
rampUp: {from: 0, every: 10s}`,
			`spec.rampUp.from in body should be greater than or equal to 1`),
		Entry("rampUp.step 0", `
taskQueue: q
processor: {name: P}
parallelism: 4
rampUp: {from: 1, step: 0, every: 10s}`,
			`spec.rampUp.step in body should be greater than or equal to 1`),
		Entry("rampUp.every 0s", `
taskQueue: q
processor: {name: P}
parallelism: 4
rampUp: {from: 1, every: 0s}`,
			`spec.rampUp.every must be a positive duration, e.g. 30s`),
		Entry("rampUp without every", `
taskQueue: q
processor: {name: P}
parallelism: 4
rampUp: {from: 1}`,
			`spec.rampUp.every: Required value`),
		Entry(`rateLimit.pagesPerSecond "0"`, `
taskQueue: q
processor: {name: P}
rateLimit: {pagesPerSecond: "0"}`,
			`spec.rateLimit.pagesPerSecond must be a decimal greater than 0, e.g. "5" or "0.5"; omit rateLimit for no limit`),
		Entry(`rateLimit.pagesPerSecond "abc"`, `
taskQueue: q
processor: {name: P}
rateLimit: {pagesPerSecond: abc}`,
			`spec.rateLimit.pagesPerSecond must be a decimal greater than 0, e.g. "5" or "0.5"; omit rateLimit for no limit`),
		Entry(`fairness.weight "0"`, `
taskQueue: q
processor: {name: P}
fairness: {weight: "0"}`,
			`spec.fairness.weight must be a decimal from 0.001 to 1000, e.g. "2" or "0.5"`),
		Entry(`fairness.weight "heavy"`, `
taskQueue: q
processor: {name: P}
fairness: {weight: heavy}`,
			`spec.fairness.weight must be a decimal from 0.001 to 1000, e.g. "2" or "0.5"`),
		Entry("priority 6", `
taskQueue: q
processor: {name: P}
priority: 6`,
			`spec.priority: Invalid value: 6: spec.priority in body should be less than or equal to 5`),
		Entry("retry.initialInterval above retry.maximumInterval", `
taskQueue: q
processor: {name: P}
retry: {initialInterval: 2m, maximumInterval: 1m}`,
			`spec.retry.initialInterval must not exceed spec.retry.maximumInterval: lower the first or raise the second`),
		Entry(`retry.backoffCoefficient "0.5"`, `
taskQueue: q
processor: {name: P}
retry: {backoffCoefficient: "0.5"}`,
			`spec.retry.backoffCoefficient must be a decimal of at least 1, e.g. "2" or "1.5"`),
		Entry(`retry.backoffCoefficient "abc"`, `
taskQueue: q
processor: {name: P}
retry: {backoffCoefficient: abc}`,
			`spec.retry.backoffCoefficient must be a decimal of at least 1, e.g. "2" or "1.5"`),
		Entry("retry.maximumInterval not a duration", `
taskQueue: q
processor: {name: P}
retry: {maximumInterval: one minute}`,
			`spec.retry.maximumInterval must be a positive duration, e.g. 1m`),
		Entry("retry.maximumAttempts 0", `
taskQueue: q
processor: {name: P}
retry: {maximumAttempts: 0}`,
			`spec.retry.maximumAttempts in body should be greater than or equal to 1`),
		Entry("negative retry.stuckPageRetryInterval", `
taskQueue: q
processor: {name: P}
retry: {stuckPageRetryInterval: -5m}`,
			`spec.retry.stuckPageRetryInterval must be a duration that is not negative, e.g. 5m; use 0s to fail stuck pages`),
		Entry("failurePolicy.maxFailedPages -1", `
taskQueue: q
processor: {name: P}
failurePolicy: {maxFailedPages: -1}`,
			`spec.failurePolicy.maxFailedPages must be a count from 0 to 500 or a percentage from 0% to 100%, e.g. 10%`),
		Entry("failurePolicy.maxFailedPages over 100%", `
taskQueue: q
processor: {name: P}
failurePolicy: {maxFailedPages: "101%"}`,
			`spec.failurePolicy.maxFailedPages must be a count from 0 to 500 or a percentage from 0% to 100%, e.g. 10%`),
		Entry("failurePolicy.maxFailedPages a word", `
taskQueue: q
processor: {name: P}
failurePolicy: {maxFailedPages: "few"}`,
			`spec.failurePolicy.maxFailedPages must be a count from 0 to 500 or a percentage from 0% to 100%, e.g. 10%`),
		Entry("failurePolicy.maxFailedItems over 100%", `
taskQueue: q
processor: {name: P}
failurePolicy: {maxFailedItems: "150%"}`,
			`spec.failurePolicy.maxFailedItems must be a count of 0 or more or a percentage from 0% to 100%, e.g. 1%`),
		Entry("failurePolicy.maxFailedItems -1", `
taskQueue: q
processor: {name: P}
failurePolicy: {maxFailedItems: -1}`,
			`spec.failurePolicy.maxFailedItems must be a count of 0 or more or a percentage from 0% to 100%, e.g. 1%`),
		Entry("a failure rule with empty onErrorTypes", `
taskQueue: q
processor: {name: P}
failurePolicy: {rules: [{action: Ignore, onErrorTypes: []}]}`,
			`spec.failurePolicy.rules[].onErrorTypes must name at least one error type: a rule without one matches no failure`),
		Entry("a failure rule without onErrorTypes", `
taskQueue: q
processor: {name: P}
failurePolicy: {rules: [{action: Ignore}]}`,
			`spec.failurePolicy.rules[0].onErrorTypes: Required value`),
		Entry("a failure rule with an unknown action", `
taskQueue: q
processor: {name: P}
failurePolicy: {rules: [{action: Skip, onErrorTypes: [Corrupt]}]}`,
			`spec.failurePolicy.rules[0].action: Unsupported value: "Skip": supported values: "FailJob", "FailPage", "Ignore", "Retry"`),
		Entry("two failure rules with the same matchers", `
taskQueue: q
processor: {name: P}
failurePolicy: {rules: [{action: Ignore, onErrorTypes: [Corrupt], onMessageContains: row}, {action: FailJob, onErrorTypes: [Corrupt], onMessageContains: row}]}`,
			`spec.failurePolicy.rules has two rules with the same onErrorTypes and onMessageContains: only the first would ever act; remove one or tell them apart by onMessageContains`),
		Entry("a Retry rule under AtMostOnce", `
taskQueue: q
processor: {name: P, delivery: AtMostOnce}
failurePolicy: {rules: [{action: Retry, onErrorTypes: [Locked]}]}`,
			`spec.failurePolicy.rules has a Retry rule, but spec.processor.delivery is AtMostOnce: a page runs once at most; use FailPage or Ignore`),
		Entry("a Retry rule with stuck pages not retried", `
taskQueue: q
processor: {name: P}
retry: {stuckPageRetryInterval: 0s}
failurePolicy: {rules: [{action: Retry, onErrorTypes: [Locked]}]}`,
			`spec.failurePolicy.rules has a Retry rule, but spec.retry.stuckPageRetryInterval is 0s, which fails stuck pages instead of retrying them; set an interval or use FailPage`),
		Entry("failurePolicy.handlerTimeout under a second", `
taskQueue: q
processor: {name: P}
failurePolicy: {handler: H, handlerTimeout: 500ms}`,
			`spec.failurePolicy.handlerTimeout must be a duration of at least 1s, e.g. 10m`),
		Entry("failurePolicy.toleratedFailedPages -1", `
taskQueue: q
processor: {name: P}
failurePolicy: {toleratedFailedPages: -1}`,
			`spec.failurePolicy.toleratedFailedPages in body should be greater than or equal to 0`),
		Entry("failurePolicy.toleratedFailedPages 501", `
taskQueue: q
processor: {name: P}
failurePolicy: {toleratedFailedPages: 501}`,
			`spec.failurePolicy.toleratedFailedPages in body should be less than or equal to 500`),
		Entry("failurePolicy.toleratedFailedPages above maxFailedPages", `
taskQueue: q
processor: {name: P}
failurePolicy: {maxFailedPages: 2, toleratedFailedPages: 3}`,
			`spec.failurePolicy.toleratedFailedPages must not be above spec.failurePolicy.maxFailedPages: the job would fail before its end with that many failed pages; lower toleratedFailedPages or raise maxFailedPages`),
		Entry("worker.template without a pod spec", `
taskQueue: q
processor: {name: P}
worker:
  template:
    metadata: {labels: {app: w}}`,
			`spec.worker.template.spec.containers must name at least one container`),
		Entry("worker.template with no containers", `
taskQueue: q
processor: {name: P}
worker:
  template:
    spec: {containers: []}`,
			`spec.worker.template.spec.containers must name at least one container`),
		Entry("worker.pagesPerPod 0", `
taskQueue: q
processor: {name: P}
worker:
  pagesPerPod: 0
  template:`+workerTemplate,
			`spec.worker.pagesPerPod in body should be greater than or equal to 1`),
		Entry("negative ttlSecondsAfterFinished", `
taskQueue: q
processor: {name: P}
ttlSecondsAfterFinished: -1`,
			`spec.ttlSecondsAfterFinished in body should be greater than or equal to 0`),
		Entry("processor.lookahead 0", `
taskQueue: q
processor: {name: P, lookahead: 0}`,
			`spec.processor.lookahead in body should be greater than or equal to 1`),
		Entry("processor.lookahead 1001", `
taskQueue: q
processor: {name: P, lookahead: 1001}`,
			`spec.processor.lookahead in body should be less than or equal to 1000`),
		Entry("processor.cursors with processor.firstCursor", `
taskQueue: q
processor: {name: P, firstCursor: "0", cursors: ["0:5000", "5000:10000"]}`,
			`spec.processor.cursors and spec.processor.firstCursor are mutually exclusive: put the first cursor into spec.processor.cursors, or use only firstCursor`),
		Entry("1001 processor.cursors", `
taskQueue: q
processor: {name: P, cursors: `+cursorsYAML(1001, 8)+`}`,
			`spec.processor.cursors: Too many: 1001: must have at most 1000 items`),
		Entry("a processor.cursors entry over 4096 characters", `
taskQueue: q
processor: {name: P, cursors: ["0", `+cursorsYAML(1, 4097)[1:]+`}`,
			`spec.processor.cursors[1]: Too long: may not be more than 4096 bytes`),
		Entry("a processor.cursors entry within 4096 characters but over 4096 bytes", `
taskQueue: q
processor: {name: P, cursors: ["0", "`+strings.Repeat("é", 2049)+`"]}`,
			`spec.processor.cursors entries must be at most 4096 bytes each (in UTF-8): use shorter cursors`),
		Entry("processor.cursors over 256 KiB together", `
taskQueue: q
processor: {name: P, cursors: `+cursorsYAML(65, 4096)+`}`,
			`spec.processor.cursors must not exceed 262144 bytes (256 KiB) together: use fewer or shorter cursors`),
		Entry("a processor.firstCursor over 4096 characters", `
taskQueue: q
processor: {name: P, firstCursor: "`+strings.Repeat("x", 4097)+`"}`,
			`spec.processor.firstCursor: Too long: may not be more than 4096 bytes`),
		Entry("a processor.firstCursor within 4096 characters but over 4096 bytes", `
taskQueue: q
processor: {name: P, firstCursor: "`+strings.Repeat("é", 2049)+`"}`,
			`spec.processor.firstCursor must be at most 4096 bytes (in UTF-8): use a shorter cursor`),
	)

	It("accepts failurePolicy.toleratedFailedPages up to maxFailedPages, or alone", func() {
		for _, spec := range []string{
			"failurePolicy: {maxFailedPages: 3, toleratedFailedPages: 3}",
			"failurePolicy: {toleratedFailedPages: 500}",
			`failurePolicy: {maxFailedPages: "1%", toleratedFailedPages: 3}`,
		} {
			job := newJob("taskQueue: q\nprocessor: {name: P}\n" + spec)
			Expect(apply(job)).To(Succeed(), spec)
			Expect(nestedInt64(get(job), "spec", "failurePolicy", "toleratedFailedPages")).To(BeNumerically(">=", 3))
		}
	})

	// No CRD rule can measure free-form JSON: a processor.args over its
	// 64 KiB limit is admitted, and the controller fails the job with
	// InvalidInput naming spec.processor.args
	// (internal/controller/workflow_input_test.go).
	It("admits processor.args over 64 KiB for the controller to refuse", func() {
		job := newJob("taskQueue: q\nprocessor: {name: P, args: {blob: \"" + strings.Repeat("a", 64<<10) + "\"}}")
		Expect(apply(job)).To(Succeed())
		blob, _, err := unstructured.NestedString(get(job).Object, "spec", "processor", "args", "blob")
		Expect(err).NotTo(HaveOccurred())
		Expect(blob).To(HaveLen(64 << 10))
	})

	// Two chains from the same cursor would process its part twice.
	It("rejects the same cursor twice in processor.cursors", func() {
		const spec = `
taskQueue: q
processor: {name: P, cursors: ["0:5000", "5000:10000", "0:5000"]}`
		Expect(k8sClient.Create(ctx, newJob(spec))).To(beInvalidWith(`spec.processor.cursors[2]: Duplicate value: "0:5000"`))
		// Server-side apply refuses it before validation, in its own words.
		Expect(apply(newJob(spec))).To(MatchError(ContainSubstring(`.spec.processor.cursors: duplicate entries for key [="0:5000"]`)))
	})

	// The specs admission accepts live in testdata/admitted, shared with the
	// controller's test that every admitted spec converts into a valid
	// orchestrator input.
	It("accepts every spec under testdata/admitted", func() {
		specs, err := admitted.Specs(repoRoot)
		Expect(err).NotTo(HaveOccurred())
		for _, s := range specs {
			Expect(apply(newJob(s.YAML))).To(Succeed(), s.Name)
		}
	})

	Describe("defaults", func() {
		It("fills in every default of a minimal job", func() {
			job := newJob(`
taskQueue: inflate-prices
processor: {name: InflateProductPrices}`)
			Expect(apply(job)).To(Succeed())

			got := get(job)
			spec := got.Object["spec"].(map[string]any)
			Expect(spec).To(Equal(map[string]any{
				"taskQueue": "inflate-prices",
				"processor": map[string]any{
					"name":             "InflateProductPrices",
					"pageSize":         int64(100),
					"timeout":          "5m0s",
					"heartbeatTimeout": "30s",
					"delivery":         "AtLeastOnce",
				},
				"parallelism": int64(1),
				"suspend":     false,
				"retry": map[string]any{
					"initialInterval":        "1s",
					"backoffCoefficient":     "2",
					"maximumInterval":        "1m0s",
					"maximumAttempts":        int64(10),
					"stuckPageRetryInterval": "5m0s",
				},
				"cancellationPolicy": "Cancel",
			}))

			typed := &batchv1alpha1.BatchJob{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), typed)).To(Succeed())
			Expect(typed.Spec.Processor.Timeout.Duration).To(Equal(5 * time.Minute))
			Expect(typed.Spec.Processor.HeartbeatTimeout.Duration).To(Equal(30 * time.Second))
			Expect(typed.Spec.Processor.Delivery).To(Equal(batchv1alpha1.DeliveryAtLeastOnce))
			Expect(typed.Spec.Retry.InitialInterval.Duration).To(Equal(time.Second))
			Expect(typed.Spec.Retry.MaximumInterval.Duration).To(Equal(time.Minute))
			Expect(typed.Spec.Retry.StuckPageRetryInterval.Duration).To(Equal(5 * time.Minute))
			Expect(typed.Spec.CancellationPolicy).To(Equal(batchv1alpha1.CancellationCancel))
		})

		It("defaults rampUp.step and worker.pagesPerPod", func() {
			job := newJob(`
taskQueue: q
processor: {name: P}
parallelism: 4
rampUp: {from: 1, every: 30s}
worker:
  template:` + workerTemplate)
			Expect(apply(job)).To(Succeed())
			got := get(job)
			Expect(nestedInt64(got, "spec", "rampUp", "step")).To(Equal(int64(1)))
			Expect(nestedInt64(got, "spec", "worker", "pagesPerPod")).To(Equal(int64(1)))
		})

		It("keeps the worker pod template's labels and annotations", func() {
			job := newJob(`
taskQueue: q
processor: {name: P}
worker:
  template:
    metadata:
      labels: {app: inflate-prices}
      annotations: {prometheus.io/scrape: "true"}
    spec:
      containers:
      - {name: worker, image: ghcr.io/temporal-batch/example-worker:latest}`)
			Expect(apply(job)).To(Succeed())
			got := get(job)
			metadata, _, err := unstructured.NestedMap(got.Object, "spec", "worker", "template", "metadata")
			Expect(err).NotTo(HaveOccurred())
			Expect(metadata).To(Equal(map[string]any{
				"labels":      map[string]any{"app": "inflate-prices"},
				"annotations": map[string]any{"prometheus.io/scrape": "true"},
			}))
		})

		It("lets server-side apply re-apply a job without a change", func() {
			job := newJob(`
taskQueue: q
processor: {name: P, args: {percent: 3}}`)
			Expect(apply(job)).To(Succeed())
			first := get(job)
			Expect(apply(job)).To(Succeed())
			second := get(job)
			Expect(second.GetGeneration()).To(Equal(first.GetGeneration()))
			Expect(second.GetResourceVersion()).To(Equal(first.GetResourceVersion()))
		})
	})

	Describe("fields fixed at creation", func() {
		// fullSpec sets every field.
		fullSpec := func() string {
			spec, err := admitted.Get(repoRoot, "full")
			Expect(err).NotTo(HaveOccurred())
			return spec
		}

		// update creates the full job, changes it and sends the change as an
		// update (kubectl edit).
		update := func(change func(map[string]any)) (*unstructured.Unstructured, error) {
			job := newJob(fullSpec())
			Expect(apply(job)).To(Succeed())
			got := get(job)
			change(got.Object["spec"].(map[string]any))
			return got, k8sClient.Update(ctx, got)
		}
		set := func(value any, path ...string) func(map[string]any) {
			return func(spec map[string]any) {
				Expect(unstructured.SetNestedField(spec, value, path...)).To(Succeed())
			}
		}
		remove := func(path ...string) func(map[string]any) {
			return func(spec map[string]any) { unstructured.RemoveNestedField(spec, path...) }
		}

		// What stays fixed says why, and what to do instead.
		const (
			taskQueueFixed = "spec.taskQueue is immutable once the job started: the running workflow schedules every page and the failure handler on the queue it started with; create a new BatchJob to change it"
			processorFixed = "spec.processor is immutable once the job started: pages already enqueued carry cursors of this processor and its page size, and the running workflow keeps its delivery, timeouts and arguments; create a new BatchJob to change it"
			workerKept     = "spec.worker cannot be added to or removed from a job once it started: its pages run on the workers it was created with (the operator's Deployment, or workers run elsewhere), and a removed Deployment would stop pages in flight; edit spec.worker.template to change the worker code, or create a new BatchJob"
		)

		DescribeTable("rejects a change",
			func(change func(map[string]any), message string) {
				_, err := update(change)
				Expect(err).To(beInvalidWith(message))
				GinkgoWriter.Println(err.Error())
			},
			Entry("of taskQueue", set("other-queue", "taskQueue"), taskQueueFixed),
			Entry("of processor.name", set("Other", "processor", "name"), processorFixed),
			Entry("of processor.pageSize", set(int64(500), "processor", "pageSize"), processorFixed),
			Entry("of processor.args", set(int64(5), "processor", "args", "percent"), processorFixed),
			Entry("of processor.timeout", set("10m", "processor", "timeout"), processorFixed),
			Entry("of processor.delivery", set("AtMostOnce", "processor", "delivery"), processorFixed),
			Entry("adding processor.lookahead", set(int64(4), "processor", "lookahead"), processorFixed),
			Entry("adding processor.cursors", set([]any{"0:5000", "5000:10000"}, "processor", "cursors"), processorFixed),
			Entry("removing worker", remove("worker"), workerKept),
		)

		It("rejects adding a worker later, and accepts adding a failurePolicy", func() {
			job := newJob(`
taskQueue: q
processor: {name: P}`)
			Expect(apply(job)).To(Succeed())

			got := get(job)
			Expect(unstructured.SetNestedField(got.Object, int64(1), "spec", "failurePolicy", "maxFailedPages")).To(Succeed())
			Expect(k8sClient.Update(ctx, got)).To(Succeed())

			got = get(job)
			worker := newJob("worker:\n  template:" + workerTemplate).Object["spec"].(map[string]any)["worker"]
			Expect(unstructured.SetNestedField(got.Object, worker, "spec", "worker")).To(Succeed())
			Expect(k8sClient.Update(ctx, got)).To(beInvalidWith(workerKept))
		})

		It("accepts a new worker image", func() {
			sent, err := update(func(spec map[string]any) {
				containers, _, _ := unstructured.NestedSlice(spec, "worker", "template", "spec", "containers")
				containers[0].(map[string]any)["image"] = "ghcr.io/temporal-batch/example-worker:v2"
				Expect(unstructured.SetNestedSlice(spec, containers, "worker", "template", "spec", "containers")).To(Succeed())
			})
			Expect(err).NotTo(HaveOccurred())
			containers, _, _ := unstructured.NestedSlice(get(sent).Object, "spec", "worker", "template", "spec", "containers")
			Expect(containers[0].(map[string]any)["image"]).To(Equal("ghcr.io/temporal-batch/example-worker:v2"))
		})

		It("still checks a changed policy field by field", func() {
			_, err := update(set(int64(0), "retry", "maximumAttempts"))
			Expect(err).To(beInvalidWith("spec.retry.maximumAttempts"))
			_, err = update(func(spec map[string]any) {
				set(int64(1), "failurePolicy", "maxFailedPages")(spec)
				set(int64(2), "failurePolicy", "toleratedFailedPages")(spec)
			})
			Expect(err).To(beInvalidWith("spec.failurePolicy.toleratedFailedPages must not be above spec.failurePolicy.maxFailedPages"))
		})

		DescribeTable("rejects a change of lookahead or cursors set at creation",
			func(change func(map[string]any)) {
				job := newJob(`
taskQueue: q
processor: {name: P, lookahead: 4, cursors: ["0:5000", "5000:10000"]}`)
				Expect(apply(job)).To(Succeed())
				got := get(job)
				change(got.Object["spec"].(map[string]any))
				Expect(k8sClient.Update(ctx, got)).To(beInvalidWith(processorFixed))
			},
			Entry("raising lookahead", set(int64(8), "processor", "lookahead")),
			Entry("removing lookahead", remove("processor", "lookahead")),
			Entry("changing a cursor", set([]any{"0:4000", "5000:10000"}, "processor", "cursors")),
			Entry("adding a cursor", set([]any{"0:5000", "5000:10000", "10000:15000"}, "processor", "cursors")),
			Entry("removing cursors", remove("processor", "cursors")),
		)

		DescribeTable("accepts a change",
			func(change func(map[string]any), path []string, want any) {
				sent, err := update(change)
				Expect(err).NotTo(HaveOccurred())
				got := get(sent)
				Expect(got.GetGeneration()).To(BeNumerically(">", 1))
				value, found, err := unstructured.NestedFieldNoCopy(got.Object, append([]string{"spec"}, path...)...)
				Expect(err).NotTo(HaveOccurred())
				if want == nil {
					Expect(found).To(BeFalse())
				} else {
					Expect(value).To(Equal(want))
				}
			},
			Entry("of parallelism", set(int64(16), "parallelism"), []string{"parallelism"}, int64(16)),
			Entry("of parallelism to 0", set(int64(0), "parallelism"), []string{"parallelism"}, int64(0)),
			Entry("of suspend", set(true, "suspend"), []string{"suspend"}, true),
			Entry("of rampUp", set("5s", "rampUp", "every"), []string{"rampUp", "every"}, "5s"),
			Entry("removing rampUp", remove("rampUp"), []string{"rampUp"}, nil),
			Entry("of rateLimit", set("0.5", "rateLimit", "pagesPerSecond"), []string{"rateLimit", "pagesPerSecond"}, "0.5"),
			Entry("removing rateLimit", remove("rateLimit"), []string{"rateLimit"}, nil),
			Entry("of parallelism, suspend, rampUp and rateLimit at once", func(spec map[string]any) {
				set(int64(8), "parallelism")(spec)
				set(true, "suspend")(spec)
				set(int64(2), "rampUp", "from")(spec)
				set("20", "rateLimit", "pagesPerSecond")(spec)
			}, []string{"rampUp", "from"}, int64(2)),
			// A running job takes new policies and new worker code.
			Entry("of retry.maximumAttempts", set(int64(30), "retry", "maximumAttempts"), []string{"retry", "maximumAttempts"}, int64(30)),
			Entry("of retry.stuckPageRetryInterval", set("10s", "retry", "stuckPageRetryInterval"), []string{"retry", "stuckPageRetryInterval"}, "10s"),
			Entry("of retry.nonRetryableErrorTypes", set([]any{"InvalidRecord", "Other"}, "retry", "nonRetryableErrorTypes"),
				[]string{"retry", "nonRetryableErrorTypes"}, []any{"InvalidRecord", "Other"}),
			Entry("of failurePolicy.maxFailedPages", set(int64(10), "failurePolicy", "maxFailedPages"), []string{"failurePolicy", "maxFailedPages"}, int64(10)),
			Entry("removing failurePolicy", remove("failurePolicy"), []string{"failurePolicy"}, nil),
			Entry("of worker.pagesPerPod", set(int64(3), "worker", "pagesPerPod"), []string{"worker", "pagesPerPod"}, int64(3)),
			Entry("of the worker pod labels", set("other", "worker", "template", "metadata", "labels", "app"),
				[]string{"worker", "template", "metadata", "labels", "app"}, "other"),
			// Read when the job is deleted: it may change until then.
			Entry("of cancellationPolicy", set("Abandon", "cancellationPolicy"), []string{"cancellationPolicy"}, "Abandon"),
		)
	})

	Describe("the installed CRD", func() {
		var crd *apiextensionsv1.CustomResourceDefinition
		BeforeEach(func() {
			crd = &apiextensionsv1.CustomResourceDefinition{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "batchjobs.batch.temporalbatch.io"}, crd)).To(Succeed())
		})

		It("has the short name and category", func() {
			Expect(crd.Spec.Names.Plural).To(Equal("batchjobs"))
			Expect(crd.Spec.Names.ShortNames).To(ConsistOf("tbj"))
			Expect(crd.Spec.Names.Categories).To(ConsistOf("temporal"))
			Expect(crd.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped))
		})

		It("has the printer columns and the status subresource", func() {
			Expect(crd.Spec.Versions).To(HaveLen(1))
			v := crd.Spec.Versions[0]
			Expect(v.Name).To(Equal("v1alpha1"))
			Expect(v.Subresources).NotTo(BeNil())
			Expect(v.Subresources.Status).NotTo(BeNil())
			type column struct{ Name, Type, JSONPath string }
			var columns []column
			for _, c := range v.AdditionalPrinterColumns {
				columns = append(columns, column{c.Name, c.Type, c.JSONPath})
			}
			Expect(columns).To(Equal([]column{
				{"Phase", "string", ".status.phase"},
				{"Pages", "integer", ".status.pages.completed"},
				{"Items", "integer", ".status.items.processed"},
				{"Failed", "integer", ".status.items.failed"},
				{"Parallelism", "integer", ".status.parallelism.effective"},
				{"Age", "date", ".metadata.creationTimestamp"},
			}))
		})
	})

	Describe("the samples", func() {
		samplesDir := func() string { return filepath.Join(repoRoot, "config", "samples") }

		sampleFiles := func() []string {
			raw, err := os.ReadFile(filepath.Join(samplesDir(), "kustomization.yaml"))
			Expect(err).NotTo(HaveOccurred())
			var k struct {
				Resources []string `json:"resources"`
			}
			Expect(yaml.Unmarshal(raw, &k)).To(Succeed())
			return k.Resources
		}

		It("lists every sample in the kustomization", func() {
			entries, err := os.ReadDir(samplesDir())
			Expect(err).NotTo(HaveOccurred())
			var files []string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
					files = append(files, e.Name())
				}
			}
			Expect(files).NotTo(BeEmpty())
			Expect(sampleFiles()).To(ConsistOf(files))
		})

		It("accepts every sample", func() {
			for _, name := range sampleFiles() {
				raw, err := os.ReadFile(filepath.Join(samplesDir(), name))
				Expect(err).NotTo(HaveOccurred())
				objs := decodeDocuments(raw)
				Expect(objs).NotTo(BeEmpty(), name)
				for _, obj := range objs {
					Expect(obj.GetKind()).To(Equal("BatchJob"), name)
					obj.SetNamespace(testNamespace)
					Expect(k8sClient.Create(ctx, obj)).To(Succeed(), name)
				}
			}
		})
	})
})

var _ = Describe("config/default", func() {
	It("renders with kustomize into objects the apiserver accepts", func() {
		kubectl := filepath.Join(assetsDir, "kubectl")
		Expect(kubectl).To(BeARegularFile(), "no kubectl next to kube-apiserver: run `make tools`")
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, kubectl, "kustomize", filepath.Join(repoRoot, "config", "default"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred(), stderr.String())

		kinds := map[string]int{}
		for _, obj := range decodeDocuments(out) {
			kinds[obj.GetKind()]++
			if ns := obj.GetNamespace(); ns != "" {
				Expect(ns).To(Equal("temporal-batch-system"), obj.GetName())
			}
			if obj.GetKind() != "CustomResourceDefinition" {
				Expect(obj.GetName()).To(HavePrefix("temporal-batch-"))
			}
			Expect(apply(obj)).To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())
		}
		Expect(kinds).To(HaveKeyWithValue("CustomResourceDefinition", 1))
		Expect(kinds).To(HaveKeyWithValue("Deployment", 1))
		Expect(kinds).To(HaveKeyWithValue("ServiceAccount", 1))
		Expect(kinds).To(HaveKeyWithValue("ClusterRoleBinding", 1))
		Expect(kinds).To(HaveKeyWithValue("RoleBinding", 1))
	})
})

// cursorsYAML is a YAML flow list of n distinct cursors of length characters
// each: the cursor's number, zero-padded.
func cursorsYAML(n, length int) string {
	cursors := make([]string, n)
	for i := range cursors {
		cursors[i] = fmt.Sprintf(`"%0*d"`, length, i)
	}
	return "[" + strings.Join(cursors, ", ") + "]"
}

// decodeDocuments reads every object of a multi-document YAML file.
func decodeDocuments(raw []byte) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}
