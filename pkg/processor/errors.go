package processor

import (
	"errors"
	"fmt"
	"reflect"

	"go.temporal.io/sdk/temporal"
)

// Error types this package and the bundled processors use. They are ordinary
// application error types: status.failures.byType counts pages that failed
// with them.
const (
	// ErrorTypeInvalidArgs marks spec.processor.args a processor cannot use.
	ErrorTypeInvalidArgs = "InvalidArgs"
	// ErrorTypeInvalidCursor marks a cursor a processor cannot interpret.
	ErrorTypeInvalidCursor = "InvalidCursor"
	// ErrorTypeInvalidPageInput marks an activity input that is not a page
	// of a batch job, such as one without a workflow ID.
	ErrorTypeInvalidPageInput = "InvalidPageInput"
	// ErrorTypeCursorTooLarge marks a successor cursor over [MaxCursorBytes]:
	// the orchestrator would refuse it, so the page fails for good rather
	// than ending its chain there.
	ErrorTypeCursorTooLarge = "CursorTooLarge"
)

// NonRetryable returns an error that fails the page for good, whatever the
// job's retry policy says. Use it for errors a retry cannot fix, such as
// invalid arguments. errType is the failure's type; the message is formatted
// as fmt.Errorf formats it, so %w is accepted.
func NonRetryable(errType, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Errorf(format, args...).Error(), errType, nil)
}

// Retryable returns an error of type errType that fails the attempt. The page
// is retried unless errType is listed in the job's
// spec.retry.nonRetryableErrorTypes, which is how a job decides per type
// whether a failure is worth retrying. The message is formatted as fmt.Errorf
// formats it.
func Retryable(errType, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Errorf(format, args...).Error(), errType)
}

// Sensitive marks err's message as one that may hold secrets or personal
// data, such as a database error that quotes a connection string. The page
// fails as err would (same type, same retry behaviour); the orchestrator
// keeps the error type and withholds the message from status, Events, logs
// and the failure handler. Temporal's history of the activity still has
// it, so the workers' logs and the Temporal UI stay the places to read it.
func Sensitive(err error) error {
	return mark(err, func(d *ErrorDetails) { d.Sensitive = true })
}

// NothingProcessed marks err as the failure of an attempt that processed
// or changed none of the page's items, such as a failed fetch. It matters
// under AtMostOnce delivery: such a page is plainly failed and a re-drive
// runs it again, while a page that failed in any other way may have
// processed some of its items, so its outcome is unknown and a re-drive
// runs it only when asked to (kubectl batch redrive --include-unknown).
// The page fails as err would.
func NothingProcessed(err error) error {
	return mark(err, func(d *ErrorDetails) { d.NothingProcessed = true })
}

// markedError is an error with the ErrorDetails a processor gave it; the
// page activity turns it into an ApplicationError carrying them.
type markedError struct {
	err     error
	details ErrorDetails
}

func (e *markedError) Error() string { return e.err.Error() }
func (e *markedError) Unwrap() error { return e.err }

func mark(err error, set func(*ErrorDetails)) error {
	if err == nil {
		return nil
	}
	var m *markedError
	if errors.As(err, &m) {
		d := m.details
		set(&d)
		return &markedError{err: m.err, details: d}
	}
	m = &markedError{err: err}
	set(&m.details)
	return m
}

// withDetails turns a marked error into the ApplicationError the
// orchestrator reads, keeping its type, message and retry behaviour; other
// errors pass unchanged.
func withDetails(err error) error {
	var m *markedError
	if !errors.As(err, &m) {
		return err
	}
	errType, nonRetryable := errorTypeName(m.err), false
	var appErr *temporal.ApplicationError
	if errors.As(m.err, &appErr) {
		errType, nonRetryable = appErr.Type(), appErr.NonRetryable()
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), errType, temporal.ApplicationErrorOptions{
		NonRetryable: nonRetryable,
		Details:      []any{m.details},
	})
}

// errorTypeName is the type Temporal's Go SDK gives a plain Go error: its
// type's name, pointers dereferenced.
func errorTypeName(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
