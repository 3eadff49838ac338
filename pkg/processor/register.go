package processor

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
)

// Register registers fn as the page processor activity type name on r, which
// is usually the worker [Run] passes to its register function. name is the
// BatchJob's spec.processor.name.
func Register(r worker.ActivityRegistry, name string, fn Func) {
	a := &pageActivity{process: fn}
	r.RegisterActivityWithOptions(a.Execute, activity.RegisterOptions{Name: name})
}

// FailureHandlerFunc receives the failures the orchestrator recorded since it
// last called the handler. The orchestrator retries it on error, so a handler
// must tolerate seeing a batch twice.
type FailureHandlerFunc func(ctx context.Context, batch FailureBatch) error

// RegisterFailureHandler registers fn as the failure handler activity type name
// on r. name is the BatchJob's spec.failurePolicy.handler.
func RegisterFailureHandler(r worker.ActivityRegistry, name string, fn FailureHandlerFunc) {
	r.RegisterActivityWithOptions(func(ctx context.Context, batch FailureBatch) error {
		return fn(ctx, batch)
	}, activity.RegisterOptions{Name: name})
}

// pageActivity adapts a Func to the page-processor activity contract.
type pageActivity struct {
	process Func
}

// Execute runs one attempt of a page.
func (a *pageActivity) Execute(ctx context.Context, in PageInput) (PageResult, error) {
	page := newPage(ctx, in)
	res, err := a.process(ctx, page)
	if err != nil {
		return PageResult{}, withDetails(err)
	}
	return page.pageResult(res)
}
