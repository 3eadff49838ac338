package controller

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	batchv1alpha1 "github.com/temporal-batch/temporal-batch/api/v1alpha1"
	"github.com/temporal-batch/temporal-batch/internal/temporalbatch"
	"github.com/temporal-batch/temporal-batch/pkg/processor"
)

// orchestratorInput turns a job's spec into the workflow's input.
func orchestratorInput(job *batchv1alpha1.BatchJob) (temporalbatch.Input, error) {
	s := job.Spec
	in := temporalbatch.Input{
		Job:       processor.JobRef{Namespace: job.Namespace, Name: job.Name, WorkflowID: workflowID(job)},
		TaskQueue: s.TaskQueue,
		Processor: temporalbatch.ProcessorSpec{
			Name:             s.Processor.Name,
			PageSize:         int(orDefault(s.Processor.PageSize, 100)),
			FirstCursor:      s.Processor.FirstCursor,
			Timeout:          durationOr(s.Processor.Timeout, 5*time.Minute),
			HeartbeatTimeout: durationOr(s.Processor.HeartbeatTimeout, 30*time.Second),
			Delivery:         temporalbatch.Delivery(orDefault(s.Processor.Delivery, batchv1alpha1.DeliveryAtLeastOnce)),
		},
	}
	if s.Processor.Args != nil {
		in.Processor.Args = s.Processor.Args.Raw
	}
	if len(s.Processor.Cursors) > 0 {
		in.Processor.Cursors = slices.Clone(s.Processor.Cursors)
	}
	if la := s.Processor.Lookahead; la != nil {
		// Unset stays 0: the orchestrator then follows the effective parallelism.
		in.Processor.Lookahead = int(*la)
	}
	d, err := desiredSpec(job)
	if err != nil {
		return in, err
	}
	// The policies start in the input, and the first desired state leaves
	// them unset ("the input's"): they are stored and validated once.
	in.Retry, in.FailurePolicy, in.Priority = *d.Retry, *d.FailurePolicy, *d.Priority
	d.Retry, d.FailurePolicy, d.Priority = nil, nil, nil
	in.Desired = d
	return in, specErrors(in.Validate())
}

// priority is spec.priority and spec.fairness, the fairness key defaulting
// to the job's namespace.
func priority(job *batchv1alpha1.BatchJob) (temporalbatch.Priority, error) {
	p := temporalbatch.Priority{FairnessKey: job.Namespace}
	if k := job.Spec.Priority; k != nil {
		p.Key = int(*k)
	}
	if f := job.Spec.Fairness; f != nil {
		if f.Key != "" {
			p.FairnessKey = f.Key
		}
		if f.Weight != "" {
			w, err := parseDecimal("spec.fairness.weight", f.Weight)
			if err != nil {
				return p, err
			}
			p.FairnessWeight = w
		}
	}
	return p, nil
}

// retryPolicy is spec.retry with its defaults.
func retryPolicy(s batchv1alpha1.RetrySpec) (temporalbatch.RetryPolicy, error) {
	r := temporalbatch.RetryPolicy{
		InitialInterval:        durationOr(s.InitialInterval, time.Second),
		BackoffCoefficient:     2,
		MaximumInterval:        durationOr(s.MaximumInterval, time.Minute),
		MaximumAttempts:        orDefault(s.MaximumAttempts, 10),
		NonRetryableErrorTypes: s.NonRetryableErrorTypes,
		StuckPageRetryInterval: durationOr(s.StuckPageRetryInterval, 5*time.Minute),
	}
	if s.BackoffCoefficient != "" {
		c, err := parseDecimal("spec.retry.backoffCoefficient", s.BackoffCoefficient)
		if err != nil {
			return r, err
		}
		r.BackoffCoefficient = c
	}
	return r, nil
}

// failurePolicy is spec.failurePolicy with its defaults; unset is the zero
// policy (no handler, the job fails for failed pages at its end).
func failurePolicy(fp *batchv1alpha1.FailurePolicySpec) (temporalbatch.FailurePolicy, error) {
	var out temporalbatch.FailurePolicy
	if fp == nil {
		return out, nil
	}
	out.Handler = fp.Handler
	out.HandlerTimeout = durationOr(fp.HandlerTimeout, temporalbatch.DefaultHandlerTimeout)
	var err error
	if out.MaxFailedPages, out.MaxFailedPagesPercent, err = countOrPercent("spec.failurePolicy.maxFailedPages", fp.MaxFailedPages); err != nil {
		return out, err
	}
	if out.MaxFailedItems, out.MaxFailedItemsPercent, err = countOrPercent("spec.failurePolicy.maxFailedItems", fp.MaxFailedItems); err != nil {
		return out, err
	}
	if fp.ToleratedFailedPages != nil {
		out.ToleratedFailedPages = int64(*fp.ToleratedFailedPages)
	}
	for _, r := range fp.Rules {
		out.Rules = append(out.Rules, temporalbatch.FailureRule{
			Action:            temporalbatch.FailureAction(r.Action),
			OnErrorTypes:      slices.Clone(r.OnErrorTypes),
			OnMessageContains: r.OnMessageContains,
		})
	}
	return out, nil
}

// countOrPercent reads a limit written as a count (3) or a percentage
// ("10%"); unset is neither.
func countOrPercent(field string, v *intstr.IntOrString) (*int64, *int32, error) {
	switch {
	case v == nil:
		return nil, nil, nil
	case v.Type == intstr.Int:
		n := int64(v.IntVal)
		return &n, nil, nil
	}
	pct, err := strconv.ParseInt(strings.TrimSuffix(v.StrVal, "%"), 10, 32)
	if err != nil || !strings.HasSuffix(v.StrVal, "%") {
		return nil, nil, fmt.Errorf("%s is %q: use a count, e.g. 3, or a percentage, e.g. 10%%", field, v.StrVal)
	}
	p := int32(pct)
	return nil, &p, nil
}

// inputFieldPath matches a field path in the orchestrator's validation
// errors that names a spec field of the same name: "processor.lookahead",
// "retry.maximumInterval", or a leading "parallelism " or "taskQueue ".
var inputFieldPath = regexp.MustCompile(`(^|[^\w.])((?:taskQueue|processor|retry|failurePolicy|parallelism|rampUp|rateLimit)[.\[])|^((?:taskQueue|processor|retry|failurePolicy|parallelism|rampUp|rateLimit) )`)

// specErrors puts the orchestrator's validation errors on one line (they
// become the Failed condition's message) and names the fields as the user
// wrote them: "processor.lookahead is 1001" reads "spec.processor.lookahead
// is 1001". Admission refuses all of these that a user can write; they reach
// here from an object stored before the CRD had the check, or one that did
// not pass through the apiserver.
func specErrors(err error) error {
	if err == nil {
		return nil
	}
	var msgs []string
	var walk func(error)
	walk = func(err error) {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		msgs = append(msgs, inputFieldPath.ReplaceAllString(err.Error(), "${1}spec.${2}${3}"))
	}
	walk(err)
	return errors.New(strings.Join(msgs, "; "))
}

// desiredState is the mutable part of the spec, tagged with the generation.
// It always carries the retry and failure policies, so that an edit of
// either, or the removal of spec.failurePolicy, replaces the running ones.
func desiredState(job *batchv1alpha1.BatchJob) (temporalbatch.DesiredState, error) {
	d, err := desiredSpec(job)
	if err != nil {
		return d, err
	}
	return d, specErrors(d.Validate())
}

// desiredSpec is desiredState before the orchestrator's validation: only
// values that cannot be read at all are errors.
func desiredSpec(job *batchv1alpha1.BatchJob) (temporalbatch.DesiredState, error) {
	s := job.Spec
	d := temporalbatch.DesiredState{Generation: job.Generation, Parallelism: int(parallelism(job)), Suspend: s.Suspend}
	retry, err := retryPolicy(s.Retry)
	if err != nil {
		return d, err
	}
	fp, err := failurePolicy(s.FailurePolicy)
	if err != nil {
		return d, err
	}
	d.Retry, d.FailurePolicy = &retry, &fp
	pr, err := priority(job)
	if err != nil {
		return d, err
	}
	d.Priority = &pr
	if r := s.RampUp; r != nil {
		d.RampUp = &temporalbatch.RampUp{From: int(r.From), Step: int(max(r.Step, 1)), Every: r.Every.Duration}
	}
	if rl := s.RateLimit; rl != nil {
		pps, err := parseDecimal("spec.rateLimit.pagesPerSecond", rl.PagesPerSecond)
		if err != nil {
			return d, err
		}
		d.RateLimit = &temporalbatch.RateLimit{PagesPerSecond: pps}
	}
	return d, nil
}

// The CRD schema defaults every field below; these fallbacks only matter for
// objects that did not pass through the apiserver, and match its defaults.

func parallelism(job *batchv1alpha1.BatchJob) int32 {
	if job.Spec.Parallelism == nil {
		return 1
	}
	return *job.Spec.Parallelism
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func parseDecimal(field, s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s is %q: use a decimal such as \"2\" or \"0.5\"", field, s)
	}
	return v, nil
}
