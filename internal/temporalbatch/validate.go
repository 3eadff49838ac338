package temporalbatch

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Validate reports every problem with an input, naming the field and the fix.
// The operator validates at admission; this guards direct starts.
func (in Input) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if in.Job.WorkflowID == "" {
		add("job.workflowId is empty: set it to the orchestrator workflow's ID so processors can signal it")
	}
	if in.TaskQueue == "" {
		add("taskQueue is empty: set the task queue the page processors poll")
	}
	p := in.Processor
	if p.Name == "" {
		add("processor.name is empty: set the page processor's activity type")
	}
	if p.PageSize < 1 || p.PageSize > 100000 {
		add("processor.pageSize is %d: use 1..100000", p.PageSize)
	}
	if p.Timeout <= 0 {
		add("processor.timeout is %s: set a positive start-to-close timeout per page attempt", p.Timeout)
	}
	if p.HeartbeatTimeout < 0 {
		add("processor.heartbeatTimeout is %s: use 0 (disabled) or a positive duration", p.HeartbeatTimeout)
	}
	if p.Delivery != AtLeastOnce && p.Delivery != AtMostOnce {
		add("processor.delivery is %q: use %s or %s", p.Delivery, AtLeastOnce, AtMostOnce)
	}
	if len(p.Args) > MaxArgsBytes {
		add("processor.args is %d bytes of JSON: keep it under %d bytes (64 KiB), it travels in every page's input; pass a reference (a ConfigMap name, an object key) instead of the data", len(p.Args), MaxArgsBytes)
	}
	if len(p.FirstCursor) > MaxCursorBytes {
		add("processor.firstCursor is %d bytes: keep cursors under %d bytes", len(p.FirstCursor), MaxCursorBytes)
	}
	if p.Lookahead < 0 || p.Lookahead > MaxLookahead {
		add("processor.lookahead is %d: use 1..%d (1 enqueues one page at a time), or 0 to follow the parallelism", p.Lookahead, MaxLookahead)
	}
	if len(p.Cursors) > 0 && p.FirstCursor != "" {
		add("processor.cursors and processor.firstCursor are both set: put the first cursor into processor.cursors, or use only firstCursor")
	}
	if len(p.Cursors) > MaxChains {
		add("processor.cursors has %d cursors: use at most %d (each starts a chain; split the data more coarsely)", len(p.Cursors), MaxChains)
	}
	total := 0
	for i, c := range p.Cursors {
		total += len(c)
		if len(c) > MaxCursorBytes {
			add("processor.cursors[%d] is %d bytes: keep cursors under %d bytes", i, len(c), MaxCursorBytes)
		}
	}
	if total > MaxCursorsBytes {
		add("processor.cursors are %d bytes together: keep them under %d bytes", total, MaxCursorsBytes)
	}
	if err := in.Retry.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := in.FailurePolicy.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := in.Priority.validate(); err != nil {
		errs = append(errs, err)
	}
	if in.ContinueAsNewAfterPages < 0 {
		add("continueAsNewAfterPages is %d: use 0 or more", in.ContinueAsNewAfterPages)
	}
	if err := in.Desired.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r RetryPolicy) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.InitialInterval < 0 || r.MaximumInterval < 0 || r.StuckPageRetryInterval < 0 {
		add("retry intervals must not be negative")
	}
	if r.MaximumInterval > 0 && r.InitialInterval > r.MaximumInterval {
		add("retry.initialInterval (%s) exceeds retry.maximumInterval (%s): lower the first or raise the second", r.InitialInterval, r.MaximumInterval)
	}
	if r.BackoffCoefficient != 0 && (r.BackoffCoefficient < 1 || math.IsNaN(r.BackoffCoefficient)) {
		add("retry.backoffCoefficient is %v: use a number >= 1", r.BackoffCoefficient)
	}
	if r.MaximumAttempts < 0 {
		add("retry.maximumAttempts is %d: use 0 (unlimited) or more", r.MaximumAttempts)
	}
	return errors.Join(errs...)
}

func (p Priority) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.Key < 0 || p.Key > MaxPriorityKey {
		add("priority.key is %d: use 1 (highest) to %d, or 0 for the server's default", p.Key, MaxPriorityKey)
	}
	if len(p.FairnessKey) > 64 {
		add("priority.fairnessKey is %d bytes: use at most 64", len(p.FairnessKey))
	}
	if w := p.FairnessWeight; w != 0 && (w < 0.001 || w > 1000 || math.IsNaN(w)) {
		add("priority.fairnessWeight is %v: use 0.001 to 1000, or 0 for the default 1", w)
	}
	return errors.Join(errs...)
}

func (fp FailurePolicy) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m := fp.MaxFailedPages; m != nil && *m < 0 {
		add("failurePolicy.maxFailedPages is %d: use 0 or more, or omit it to fail the job for failed pages only at its end", *m)
	}
	if t := fp.ToleratedFailedPages; t < 0 {
		add("failurePolicy.toleratedFailedPages is %d: use 0 or more", t)
	} else if m := fp.MaxFailedPages; m != nil && *m >= 0 && t > *m {
		add("failurePolicy.toleratedFailedPages (%d) is above failurePolicy.maxFailedPages (%d): the job would fail before it ends with that many failed pages; lower toleratedFailedPages or raise maxFailedPages", t, *m)
	}
	if t := fp.HandlerTimeout; t < 0 || (t > 0 && t < time.Second) {
		add("failurePolicy.handlerTimeout is %s: use 1s or more, or omit it for %s", t, DefaultHandlerTimeout)
	}
	if p := fp.MaxFailedPagesPercent; p != nil && (*p < 0 || *p > 100) {
		add("failurePolicy.maxFailedPages is %d%%: use 0%%..100%%", *p)
	}
	if p := fp.MaxFailedItemsPercent; p != nil && (*p < 0 || *p > 100) {
		add("failurePolicy.maxFailedItems is %d%%: use 0%%..100%%", *p)
	}
	if fp.MaxFailedPages != nil && fp.MaxFailedPagesPercent != nil {
		add("failurePolicy.maxFailedPages is both a count and a percentage: use one")
	}
	if fp.MaxFailedItems != nil && fp.MaxFailedItemsPercent != nil {
		add("failurePolicy.maxFailedItems is both a count and a percentage: use one")
	}
	if m := fp.MaxFailedItems; m != nil && *m < 0 {
		add("failurePolicy.maxFailedItems is %d: use 0 or more", *m)
	}
	if len(fp.Rules) > MaxFailureRules {
		add("failurePolicy.rules has %d rules: use at most %d", len(fp.Rules), MaxFailureRules)
	}
	for i, r := range fp.Rules {
		switch r.Action {
		case ActionFailJob, ActionFailPage, ActionIgnore, ActionRetry:
		default:
			add("failurePolicy.rules[%d].action is %q: use FailJob, FailPage, Ignore or Retry", i, r.Action)
		}
		if len(r.OnErrorTypes) == 0 {
			add("failurePolicy.rules[%d].onErrorTypes is empty: name at least one error type", i)
		}
		for j, prev := range fp.Rules[:i] {
			if slices.Equal(prev.OnErrorTypes, r.OnErrorTypes) && prev.OnMessageContains == r.OnMessageContains {
				add("failurePolicy.rules[%d] matches what failurePolicy.rules[%d] matches, which wins: remove one or tell them apart by onMessageContains", i, j)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Validate reports problems with a desired-state message.
func (d DesiredState) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.Retry != nil {
		if err := d.Retry.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.FailurePolicy != nil {
		if err := d.FailurePolicy.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.Priority != nil {
		if err := d.Priority.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.Parallelism < 0 || d.Parallelism > 10000 {
		add("parallelism is %d: use 0..10000", d.Parallelism)
	}
	if r := d.RampUp; r != nil {
		// Parallelism 0 is a pause: the ramp-up may start above it, and the
		// effective parallelism is min(parallelism, ramp-up level), 0.
		switch {
		case d.Parallelism > 0 && (r.From < 1 || r.From > d.Parallelism):
			add("rampUp.from is %d: use 1..parallelism (%d)", r.From, d.Parallelism)
		case r.From < 1:
			add("rampUp.from is %d: use 1 or more", r.From)
		}
		if r.Step < 1 {
			add("rampUp.step is %d: use 1 or more", r.Step)
		}
		if r.Every <= 0 {
			add("rampUp.every is %s: use a positive duration", r.Every)
		}
	}
	if rl := d.RateLimit; rl != nil && (rl.PagesPerSecond <= 0 || math.IsNaN(rl.PagesPerSecond) || math.IsInf(rl.PagesPerSecond, 0)) {
		add("rateLimit.pagesPerSecond is %v: use a positive number, or omit rateLimit", rl.PagesPerSecond)
	}
	return errors.Join(errs...)
}
