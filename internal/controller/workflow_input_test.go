package controller

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// fullSpecJob sets every spec field that reaches the workflow.
func fullSpecJob(j *batchv1alpha1.BatchJob) {
	j.Generation = 3
	j.Spec = batchv1alpha1.BatchJobSpec{
		TaskQueue: "inflate-prices",
		Processor: batchv1alpha1.ProcessorSpec{
			Name:             "InflateProductPrices",
			PageSize:         200,
			Args:             &apiextensionsv1.JSON{Raw: []byte(`{"percent":3}`)},
			FirstCursor:      "sku-000",
			Timeout:          &metav1.Duration{Duration: 7 * time.Minute},
			HeartbeatTimeout: &metav1.Duration{Duration: 45 * time.Second},
			Delivery:         batchv1alpha1.DeliveryAtMostOnce,
		},
		Parallelism: ptr[int32](12),
		Suspend:     true,
		RampUp:      &batchv1alpha1.RampUpSpec{From: 2, Step: 3, Every: metav1.Duration{Duration: 30 * time.Second}},
		RateLimit:   &batchv1alpha1.RateLimitSpec{PagesPerSecond: "0.5"},
		Priority:    ptr[int32](2),
		Fairness:    &batchv1alpha1.FairnessSpec{Key: "team-a", Weight: "2.5"},
		Retry: batchv1alpha1.RetrySpec{
			InitialInterval:        &metav1.Duration{Duration: 2 * time.Second},
			BackoffCoefficient:     "1.5",
			MaximumInterval:        &metav1.Duration{Duration: 90 * time.Second},
			MaximumAttempts:        7,
			NonRetryableErrorTypes: []string{"InvalidRecord", "Forbidden"},
			StuckPageRetryInterval: &metav1.Duration{Duration: 4 * time.Minute},
		},
		FailurePolicy:      &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromInt32(0)), Handler: "RecordFailures", HandlerTimeout: &metav1.Duration{Duration: 3 * time.Minute}},
		CancellationPolicy: batchv1alpha1.CancellationTerminate,
	}
}

func TestOrchestratorInput(t *testing.T) {
	const wantID = "batchjob/shop/inflate-prices/7d3c2a10-5b1f-4f0e-9a52-1c2d3e4f5a6b"
	tests := []struct {
		name string
		job  *batchv1alpha1.BatchJob
		want temporalbatch.Input
	}{
		{
			name: "every field mapped",
			job:  planJobFixture(fullSpecJob),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name:             "InflateProductPrices",
					PageSize:         200,
					Args:             json.RawMessage(`{"percent":3}`),
					FirstCursor:      "sku-000",
					Timeout:          7 * time.Minute,
					HeartbeatTimeout: 45 * time.Second,
					Delivery:         temporalbatch.AtMostOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval:        2 * time.Second,
					BackoffCoefficient:     1.5,
					MaximumInterval:        90 * time.Second,
					MaximumAttempts:        7,
					NonRetryableErrorTypes: []string{"InvalidRecord", "Forbidden"},
					StuckPageRetryInterval: 4 * time.Minute,
				},
				// maxFailedPages 0 means "fail on the first failed page", not "never".
				FailurePolicy: temporalbatch.FailurePolicy{MaxFailedPages: ptr[int64](0), Handler: "RecordFailures", HandlerTimeout: 3 * time.Minute},
				Priority:      temporalbatch.Priority{Key: 2, FairnessKey: "team-a", FairnessWeight: 2.5},
				Desired: temporalbatch.DesiredState{
					Generation: 3, Parallelism: 12, Suspend: true,
					RampUp:    &temporalbatch.RampUp{From: 2, Step: 3, Every: 30 * time.Second},
					RateLimit: &temporalbatch.RateLimit{PagesPerSecond: 0.5},
				},
			},
		},
		{
			name: "optional fields omitted, heartbeat timeout 0 disables it",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.Processor.HeartbeatTimeout = &metav1.Duration{}
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 200, Timeout: 5 * time.Minute, Delivery: temporalbatch.AtLeastOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				Desired: temporalbatch.DesiredState{Generation: 1, Parallelism: 10},
			},
		},
		{
			// An object that did not pass through the apiserver's defaulting
			// runs with the CRD's defaults, not with zeros.
			name: "defaulted fields unset: the CRD defaults apply",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec = batchv1alpha1.BatchJobSpec{TaskQueue: "inflate-prices", Processor: batchv1alpha1.ProcessorSpec{Name: "InflateProductPrices"}}
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 100, Timeout: 5 * time.Minute,
					HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				Desired: temporalbatch.DesiredState{Generation: 1, Parallelism: 1},
			},
		},
		{
			name: "several cursors and a lookahead",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.Processor.Cursors = []string{"0:5000", "5000:10000"}
				j.Spec.Processor.Lookahead = ptr[int32](16)
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 200, Timeout: 5 * time.Minute,
					HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
					Cursors: []string{"0:5000", "5000:10000"}, Lookahead: 16,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				Desired: temporalbatch.DesiredState{Generation: 1, Parallelism: 10},
			},
		},
		{
			name: "maxFailedPages omitted: failed pages fail the job only at its end",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{Handler: "RecordFailures"}
				j.Spec.RampUp = &batchv1alpha1.RampUpSpec{From: 1, Every: metav1.Duration{Duration: time.Minute}}
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 200, Timeout: 5 * time.Minute,
					HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				FailurePolicy: temporalbatch.FailurePolicy{Handler: "RecordFailures", HandlerTimeout: temporalbatch.DefaultHandlerTimeout},
				// An omitted rampUp.step counts as 1.
				Desired: temporalbatch.DesiredState{Generation: 1, Parallelism: 10,
					RampUp: &temporalbatch.RampUp{From: 1, Step: 1, Every: time.Minute}},
			},
		},
		{
			name: "toleratedFailedPages up to maxFailedPages",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromInt32(20)), ToleratedFailedPages: ptr[int32](5)}
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 200, Timeout: 5 * time.Minute,
					HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				FailurePolicy: temporalbatch.FailurePolicy{MaxFailedPages: ptr[int64](20), ToleratedFailedPages: 5, HandlerTimeout: temporalbatch.DefaultHandlerTimeout},
				Desired:       temporalbatch.DesiredState{Generation: 1, Parallelism: 10},
			},
		},
		{
			name: "failure rules and limits as percentages",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{
					MaxFailedPages: new(intstr.FromString("10%")), MaxFailedItems: new(intstr.FromString("1%")),
					Rules: []batchv1alpha1.FailureRuleSpec{
						{Action: batchv1alpha1.FailureActionFailJob, OnErrorTypes: []string{"Unauthorized"}},
						{Action: batchv1alpha1.FailureActionIgnore, OnErrorTypes: []string{"Corrupt"}, OnMessageContains: "archived"},
					},
				}
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 200, Timeout: 5 * time.Minute,
					HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				FailurePolicy: temporalbatch.FailurePolicy{
					MaxFailedPagesPercent: ptr[int32](10), MaxFailedItemsPercent: ptr[int32](1), HandlerTimeout: temporalbatch.DefaultHandlerTimeout,
					Rules: []temporalbatch.FailureRule{
						{Action: temporalbatch.ActionFailJob, OnErrorTypes: []string{"Unauthorized"}},
						{Action: temporalbatch.ActionIgnore, OnErrorTypes: []string{"Corrupt"}, OnMessageContains: "archived"},
					},
				},
				Desired: temporalbatch.DesiredState{Generation: 1, Parallelism: 10},
			},
		},
		{
			name: "maxFailedItems as a count",
			job: planJobFixture(func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedItems: new(intstr.FromInt32(7))}
			}),
			want: temporalbatch.Input{
				Job:       processor.JobRef{Namespace: "shop", Name: "inflate-prices", WorkflowID: wantID},
				TaskQueue: "inflate-prices",
				Processor: temporalbatch.ProcessorSpec{
					Name: "InflateProductPrices", PageSize: 200, Timeout: 5 * time.Minute,
					HeartbeatTimeout: 30 * time.Second, Delivery: temporalbatch.AtLeastOnce,
				},
				Retry: temporalbatch.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
					StuckPageRetryInterval: 5 * time.Minute,
				},
				FailurePolicy: temporalbatch.FailurePolicy{MaxFailedItems: ptr[int64](7), HandlerTimeout: temporalbatch.DefaultHandlerTimeout},
				Desired:       temporalbatch.DesiredState{Generation: 1, Parallelism: 10},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.job.Spec.Fairness == nil {
				// Every job has a fairness key: its namespace by default.
				tc.want.Priority = temporalbatch.Priority{FairnessKey: tc.job.Namespace}
			}
			in, err := orchestratorInput(tc.job)
			require.NoError(t, err)
			require.Equal(t, tc.want, in)

			d, err := desiredState(tc.job)
			require.NoError(t, err)
			want := tc.want.Desired
			want.Retry, want.FailurePolicy, want.Priority = &tc.want.Retry, &tc.want.FailurePolicy, &tc.want.Priority
			require.Equal(t, want, d, "desiredState is the input's initial desired state, with the input's policies: an edit of either reaches the running job")
		})
	}
}

func TestOrchestratorInputErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*batchv1alpha1.BatchJob)
		// field must appear in the error; value too, when set.
		field, value string
		// desired: desiredState reports it as well.
		desired bool
	}{
		{
			name:  "backoffCoefficient not a decimal",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Retry.BackoffCoefficient = "two" },
			field: "spec.retry.backoffCoefficient", value: `"two"`, desired: true,
		},
		{
			name:  "backoffCoefficient NaN",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Retry.BackoffCoefficient = "NaN" },
			field: "spec.retry.backoffCoefficient", value: `"NaN"`, desired: true,
		},
		{
			name:  "backoffCoefficient below 1",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Retry.BackoffCoefficient = "0.5" },
			field: "backoffCoefficient", value: "0.5", desired: true,
		},
		{
			name: "pagesPerSecond not a decimal",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.RateLimit = &batchv1alpha1.RateLimitSpec{PagesPerSecond: "fast"}
			},
			field: "spec.rateLimit.pagesPerSecond", value: `"fast"`, desired: true,
		},
		{
			name: "pagesPerSecond infinite",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.RateLimit = &batchv1alpha1.RateLimitSpec{PagesPerSecond: "Inf"}
			},
			field: "spec.rateLimit.pagesPerSecond", value: `"Inf"`, desired: true,
		},
		{
			name:  "pagesPerSecond empty",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.RateLimit = &batchv1alpha1.RateLimitSpec{} },
			field: "spec.rateLimit.pagesPerSecond", desired: true,
		},
		{
			name:  "pagesPerSecond zero",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.RateLimit = &batchv1alpha1.RateLimitSpec{PagesPerSecond: "0"} },
			field: "rateLimit.pagesPerSecond", desired: true,
		},
		{
			name: "rampUp.from above parallelism",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.RampUp = &batchv1alpha1.RampUpSpec{From: 20, Step: 1, Every: metav1.Duration{Duration: time.Second}}
			},
			field: "rampUp.from", value: "20", desired: true,
		},
		{
			name: "toleratedFailedPages above maxFailedPages",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromInt32(1)), ToleratedFailedPages: ptr[int32](2)}
			},
			field:   "spec.failurePolicy.toleratedFailedPages (2) is above spec.failurePolicy.maxFailedPages (1)",
			desired: true,
		},
		{
			name: "maxFailedPages neither a count nor a percentage",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedPages: new(intstr.FromString("few"))}
			},
			field: `spec.failurePolicy.maxFailedPages is "few": use a count, e.g. 3, or a percentage, e.g. 10%`, desired: true,
		},
		{
			name: "maxFailedItems over 100%",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.FailurePolicy = &batchv1alpha1.FailurePolicySpec{MaxFailedItems: new(intstr.FromString("150%"))}
			},
			field: "spec.failurePolicy.maxFailedItems is 150%", desired: true,
		},
		{
			name: "processor.args over 64 KiB",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Processor.Args = &apiextensionsv1.JSON{Raw: []byte(`"` + strings.Repeat("a", 64<<10) + `"`)}
			},
			field: "spec.processor.args is 65538 bytes of JSON: keep it under 65536 bytes (64 KiB)",
		},
		{
			name:  "page timeout zero",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Processor.Timeout = &metav1.Duration{} },
			field: "spec.processor.timeout",
		},
		{
			name:  "lookahead above 1000",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Processor.Lookahead = ptr[int32](1001) },
			field: "spec.processor.lookahead", value: "1001",
		},
		{
			name: "cursors and firstCursor",
			mod: func(j *batchv1alpha1.BatchJob) {
				j.Spec.Processor.FirstCursor = "0"
				j.Spec.Processor.Cursors = []string{"0:5000", "5000:10000"}
			},
			field: "spec.processor.cursors and spec.processor.firstCursor are both set",
		},
		{
			name:  "more cursors than chains",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Processor.Cursors = make([]string, temporalbatch.MaxChains+1) },
			field: "spec.processor.cursors", value: "1001 cursors",
		},
		{
			// 2,049 two-byte characters: the orchestrator counts bytes.
			name:  "a cursor over 4096 bytes",
			mod:   func(j *batchv1alpha1.BatchJob) { j.Spec.Processor.Cursors = []string{"a", strings.Repeat("é", 2049)} },
			field: "spec.processor.cursors[1]", value: "4098 bytes",
		},
		{
			name: "cursors over 256 KiB together",
			mod: func(j *batchv1alpha1.BatchJob) {
				for range 65 {
					j.Spec.Processor.Cursors = append(j.Spec.Processor.Cursors, strings.Repeat("k", 4096))
				}
			},
			field: "spec.processor.cursors are 266240 bytes together", value: "262144",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := planJobFixture(tc.mod)
			_, err := orchestratorInput(job)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field)
			require.Contains(t, err.Error(), tc.value)

			_, err = desiredState(job)
			if tc.desired {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.field)
			} else {
				require.NoError(t, err, "only the part fixed at creation is wrong")
			}
		})
	}
}

// The orchestrator names its input's fields; the condition a user reads
// names the spec's, on one line.
func TestOrchestratorInputErrorsNameSpecFields(t *testing.T) {
	job := planJobFixture(func(j *batchv1alpha1.BatchJob) {
		j.Spec.Processor.FirstCursor = "0"
		j.Spec.Processor.Cursors = []string{"0:5000"}
		j.Spec.Processor.Lookahead = ptr[int32](2000)
		j.Spec.Retry.InitialInterval = &metav1.Duration{Duration: 2 * time.Minute}
	})
	_, err := orchestratorInput(job)
	require.EqualError(t, err, "spec.processor.lookahead is 2000: use 1..1000 (1 enqueues one page at a time), or 0 to follow the parallelism; "+
		"spec.processor.cursors and spec.processor.firstCursor are both set: put the first cursor into spec.processor.cursors, or use only firstCursor; "+
		"spec.retry.initialInterval (2m0s) exceeds spec.retry.maximumInterval (1m0s): lower the first or raise the second")

	_, err = desiredState(planJobFixture(func(j *batchv1alpha1.BatchJob) {
		j.Spec.Parallelism = ptr[int32](20000)
	}))
	require.EqualError(t, err, "spec.parallelism is 20000: use 0..10000")

	require.NoError(t, specErrors(nil))
}
