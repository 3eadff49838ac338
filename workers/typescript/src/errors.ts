import { ApplicationFailure } from '@temporalio/common';
import { encodeErrorDetails, type ErrorDetails } from './contract';

/**
 * Error types this package and the synthetic processor use. They are ordinary
 * application failure types: status.failures.byType counts pages that failed
 * with them.
 */
export const ErrorType = {
  /** spec.processor.args a processor cannot use. */
  InvalidArgs: 'InvalidArgs',
  /** A cursor a processor cannot interpret. */
  InvalidCursor: 'InvalidCursor',
  /** An activity input that is not a page of a batch job, such as one without a workflow ID. */
  InvalidPageInput: 'InvalidPageInput',
  /** A successor cursor over MAX_CURSOR_BYTES: the orchestrator would refuse it. */
  CursorTooLarge: 'CursorTooLarge',
} as const;

/**
 * A failure that fails the page for good, whatever the job's retry policy
 * says. Use it for errors a retry cannot fix, such as invalid arguments.
 */
export function nonRetryable(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true });
}

/**
 * A failure of type `type` that fails the attempt. The page is retried unless
 * the type is listed in the job's spec.retry.nonRetryableErrorTypes.
 */
export function retryable(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: false });
}

/**
 * Marks err's message as one that may hold secrets or personal data. The page
 * fails as err would (same type, same retry behaviour); the orchestrator keeps
 * the type and withholds the message from status, Events, logs and the failure
 * handler. Temporal's history of the activity still has it.
 */
export function sensitive(err: unknown): ApplicationFailure {
  return mark(err, { sensitive: true });
}

/**
 * Marks err as the failure of an attempt that processed or changed none of the
 * page's items, such as a failed fetch. Under AtMostOnce delivery such a page
 * is plainly failed and a re-drive runs it again. The page fails as err would.
 */
export function nothingProcessed(err: unknown): ApplicationFailure {
  return mark(err, { nothingProcessed: true });
}

/**
 * The ErrorDetails of the failures sensitive and nothingProcessed made, so
 * that marking one twice keeps both marks.
 */
const marks = new WeakMap<ApplicationFailure, ErrorDetails>();

function mark(err: unknown, add: ErrorDetails): ApplicationFailure {
  const prior = err instanceof ApplicationFailure ? marks.get(err) : undefined;
  const details = encodeErrorDetails({ ...prior, ...add });
  let failure: ApplicationFailure;
  if (err instanceof ApplicationFailure) {
    failure = ApplicationFailure.create({
      message: err.message,
      type: err.type ?? undefined,
      nonRetryable: err.nonRetryable ?? false,
      nextRetryDelay: err.nextRetryDelay,
      category: err.category ?? undefined,
      cause: err.cause instanceof Error ? err.cause : undefined,
      details: [details],
    });
  } else {
    // The type the SDK gives any other thrown error: its class name.
    const e = err instanceof Error ? err : undefined;
    failure = ApplicationFailure.create({
      message: e ? e.message : String(err),
      type: e ? (e.constructor?.name ?? e.name) : undefined,
      nonRetryable: false,
      cause: e?.cause instanceof Error ? e.cause : undefined,
      details: [details],
    });
  }
  if (err instanceof Error && err.stack) failure.stack = err.stack;
  marks.set(failure, details);
  return failure;
}

/**
 * The ErrorDetails of a failure, as the orchestrator reads them: its first
 * detail, or none.
 */
export function errorDetailsOf(failure: ApplicationFailure): ErrorDetails {
  const first = failure.details?.[0];
  return typeof first === 'object' && first !== null ? encodeErrorDetails(first as ErrorDetails) : {};
}
