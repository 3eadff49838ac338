import { Context } from '@temporalio/activity';
import {
  ContractError,
  decodeFailureBatch,
  decodePageInput,
  type FailureBatch,
  type PageInput,
  type PageResult,
} from './contract';
import { ErrorType, nonRetryable } from './errors';
import { Page, type PageEnvironment, type Result } from './page';

/**
 * Processes one page of a batch job. It is called once per attempt of the
 * page; a failed attempt is retried according to the job's retry policy, so it
 * must be safe to run again on the same page.
 *
 * The expected shape: fetch the page at page.cursor, await page.enqueueNext
 * with the cursors of the following pages (unless this is the last page),
 * process the items, report items that could not be processed with
 * page.failItem, and return the number of items processed.
 *
 * Throwing fails the attempt. Throw nonRetryable(...) for errors a retry cannot
 * fix and retryable(...) to give an error a type the job's
 * retry.nonRetryableErrorTypes can name; any other error fails the attempt
 * with its class name as the type.
 */
export type PageProcessorFunction = (page: Page) => Promise<Result> | Result;

/** Receives the failures the orchestrator recorded since it last called the handler. */
export type FailureHandlerFunction = (batch: FailureBatch) => Promise<void> | void;

/** An activity to register on a worker: its type name and its function. */
export interface ActivityRegistration<I, O> {
  /** The activity type name: spec.processor.name or spec.failurePolicy.handler. */
  readonly name: string;
  /** The activity function, taking the wire input and returning the wire output. */
  readonly activity: (input: I) => Promise<O>;
}

export type PageProcessor = ActivityRegistration<PageInput, PageResult>;
export type FailureHandler = ActivityRegistration<FailureBatch, void>;

/**
 * Makes fn the page processor activity `name` (the BatchJob's
 * spec.processor.name).
 */
export function definePageProcessor(name: string, fn: PageProcessorFunction): PageProcessor {
  return {
    name,
    activity: async (input: unknown): Promise<PageResult> => {
      const page = new Page(decodeInput(input), activityEnvironment(Context.current()));
      const result = await fn(page);
      if (typeof result !== 'object' || result === null || !Number.isSafeInteger(result.itemsProcessed)) {
        throw new TypeError(
          `page processor ${JSON.stringify(name)} returned ${JSON.stringify(result)}; it must return { itemsProcessed: <whole number>, nextCursor?: <string> }`,
        );
      }
      return page.toPageResult(result);
    },
  };
}

/**
 * Makes fn the failure handler activity `name` (the BatchJob's
 * spec.failurePolicy.handler). The orchestrator retries it when it throws, so
 * it must tolerate seeing a batch twice.
 */
export function defineFailureHandler(name: string, fn: FailureHandlerFunction): FailureHandler {
  return {
    name,
    activity: async (batch: unknown): Promise<void> => {
      await fn(decodeFailureBatch(batch));
    },
  };
}

/** The activities object Worker.create takes: name to function. */
export function activities(
  registrations: readonly ActivityRegistration<never, unknown>[],
): Record<string, (input: never) => Promise<unknown>> {
  const out: Record<string, (input: never) => Promise<unknown>> = {};
  for (const r of registrations) {
    if (Object.hasOwn(out, r.name)) {
      throw new Error(`two activities are named ${JSON.stringify(r.name)}: give each processor and failure handler its own name`);
    }
    out[r.name] = r.activity;
  }
  return out;
}

function decodeInput(input: unknown) {
  try {
    return decodePageInput(input);
  } catch (err) {
    if (err instanceof ContractError) {
      throw nonRetryable(ErrorType.InvalidPageInput, `not a page of a batch job: ${err.message}`);
    }
    throw err;
  }
}

/** The PageEnvironment of the running activity. */
export function activityEnvironment(ctx: Context): PageEnvironment {
  return {
    activityAttempt: ctx.info.attempt,
    heartbeatDetails: ctx.info.heartbeatDetails,
    heartbeat: (marker) => ctx.heartbeat(marker),
    signal: async (workflowId, signalName, body) => {
      // The worker's own client, on the worker's connection and namespace.
      await ctx.client.workflow.getHandle(workflowId).signal(signalName, body);
    },
    cancellationSignal: ctx.cancellationSignal,
    warn: (message, attrs) => ctx.log.warn(message, attrs),
  };
}
