package processor

import (
	"fmt"

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
