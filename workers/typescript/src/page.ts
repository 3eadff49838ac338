import {
  ENQUEUE_PAGE_SIGNAL,
  MAX_CURSOR_BYTES,
  MAX_ENQUEUE_BYTES,
  MAX_FAILURE_MESSAGE_BYTES,
  MAX_LOOKAHEAD,
  MAX_REPORTED_FAILED_ITEMS,
  decodeHeartbeatMarker,
  encodeEnqueuePage,
  encodePageResult,
  type EnqueuePage,
  type EnqueuePageBatch,
  type FailedItem,
  type HeartbeatMarker,
  type JobRef,
  type PageInput,
  type PageResult,
} from './contract';
import { ErrorType, nonRetryable } from './errors';
import { truncateUTF8, utf8Length } from './text';

/** What a page processor reports about a page it processed successfully. */
export interface Result {
  /**
   * Items processed successfully. Items reported with failItem are counted
   * separately and belong not in this number.
   */
  itemsProcessed: number;
  /**
   * The fallback for processors that cannot enqueue the next page before
   * doing the work: the orchestrator enqueues the next page at this cursor
   * after this page completes, which serialises the job. Ignored once
   * enqueueNext has enqueued.
   */
  nextCursor?: string;
}

/**
 * What a Page needs from the activity running it. The activity adapter builds
 * it from the Temporal activity context; tests build their own.
 */
export interface PageEnvironment {
  /** The activity's attempt, from 1. */
  activityAttempt: number;
  /** The first heartbeat detail of the previous attempt, if any. */
  heartbeatDetails: unknown;
  /** Records a heartbeat with the marker as its only detail. */
  heartbeat(marker: HeartbeatMarker): void;
  /** Signals the current run of a workflow. */
  signal(workflowId: string, signalName: string, body: EnqueuePage | EnqueuePageBatch): Promise<void>;
  /** Aborted when the activity is cancelled. */
  cancellationSignal: AbortSignal;
  /** Warns about something the page carries on through. */
  warn(message: string, attrs?: Record<string, unknown>): void;
}

/**
 * One page of a batch job handed to a page processor, together with the
 * operations a processor performs on it.
 */
export class Page {
  /** Identifies the BatchJob and its orchestrator workflow. */
  readonly job: JobRef;
  /** The page's position in its chain; the first page is 0. */
  readonly number: number;
  /**
   * Locates the page in the data set: spec.processor.firstCursor for page 0,
   * whatever the previous page passed to enqueueNext otherwise.
   */
  readonly cursor: string;
  /** The number of items asked for (spec.processor.pageSize). */
  readonly size: number;
  /** spec.processor.args, parsed from JSON; undefined when the job has none. */
  readonly args: unknown;
  /**
   * The page's attempt, from 1: the activity's attempt, counting on across the
   * runs of the orchestrator workflow. It starts over when the page runs again
   * after it got stuck or was re-driven.
   */
  readonly attempt: number;
  /**
   * The page's attempt over its whole life: attempt plus the attempts of its
   * earlier rounds. Use it to give up on a page tried too often.
   */
  readonly totalAttempt: number;
  /**
   * Aborted when the page is cancelled: the job was cancelled, or the worker
   * stopped and its grace period ran out. Cancellation reaches a page only
   * through heartbeats, so a page must call heartbeat() to see it. Pass it to
   * fetch and other APIs that take an AbortSignal.
   */
  readonly cancellationSignal: AbortSignal;

  readonly #lookahead: number;
  readonly #token: string | undefined;
  readonly #env: PageEnvironment;
  /** True once the next pages were signalled, by this attempt or an earlier one. */
  #enqueued = false;
  /** Serialises enqueueNext so that concurrent callers signal once. */
  #enqueueing: Promise<void> = Promise.resolve();
  /** The true failure count; #failedItems holds at most MAX_REPORTED_FAILED_ITEMS of them. */
  #itemsFailed = 0;
  #failedItems: FailedItem[] = [];

  /**
   * Builds the Page of an activity attempt. It restores the marker an earlier
   * attempt recorded so that enqueueNext does not signal twice.
   */
  constructor(input: PageInput, env: PageEnvironment) {
    this.job = input.job;
    this.number = input.page.number;
    this.cursor = input.page.cursor;
    this.size = input.page.size;
    this.args = input.args;
    this.attempt = env.activityAttempt + Math.max(input.priorAttempts ?? 0, 0);
    this.totalAttempt = this.attempt + Math.max(input.totalPriorAttempts ?? 0, 0);
    // An orchestrator that predates lookahead asks every page for one.
    this.#lookahead = input.lookahead == null ? 1 : Math.min(Math.max(input.lookahead, 0), MAX_LOOKAHEAD);
    this.#token = input.enqueueToken || undefined;
    this.#env = env;
    this.cancellationSignal = env.cancellationSignal;
    if (env.heartbeatDetails !== undefined && env.heartbeatDetails !== null) {
      try {
        this.#enqueued = decodeHeartbeatMarker(env.heartbeatDetails).enqueuedNext;
      } catch (err) {
        // Someone recorded details of another shape. Signalling again is
        // harmless because the orchestrator ignores a page number it has
        // seen; refusing to signal could lose the rest of the chain.
        env.warn('Ignoring unreadable heartbeat details of an earlier attempt', { error: String(err) });
      }
    }
  }

  /**
   * How many successor cursors the orchestrator asks this page for
   * (spec.processor.lookahead, fewer when its queue is full). 0: the page is
   * not its chain's frontier, and enqueueNext does nothing.
   */
  get lookahead(): number {
    return this.#lookahead;
  }

  /**
   * Asks the orchestrator to schedule the pages after this one, at the given
   * cursors, in order: the first is the page that directly follows this one.
   * Call it as soon as the cursors are known, before processing the items, so
   * that the next pages run in parallel with this one. At the end of the data,
   * do not call it.
   *
   * At most `lookahead` cursors are sent, and no more than fit in
   * MAX_ENQUEUE_BYTES; the last one sent becomes the chain's frontier and is
   * asked for the rest, so dropping the tail never loses data. When lookahead
   * is 0 nothing is sent. A cursor over MAX_CURSOR_BYTES fails the page for
   * good with CursorTooLarge.
   *
   * It sends one signal and records a heartbeat marker, so it does nothing when
   * called again in the same attempt or in a retry of an attempt that already
   * enqueued. A rejection means the signal was not delivered: let it fail the
   * attempt, which is then retried.
   */
  enqueueNext(...cursors: string[]): Promise<void> {
    if (cursors.length === 0) {
      return Promise.reject(
        nonRetryable(
          ErrorType.InvalidPageInput,
          `page ${this.number} called enqueueNext without a cursor; at the end of the data, do not call it`,
        ),
      );
    }
    const run = this.#enqueueing.then(() => this.#enqueue(cursors));
    this.#enqueueing = run.catch(() => undefined);
    return run;
  }

  async #enqueue(cursors: string[]): Promise<void> {
    if (this.#enqueued || this.#lookahead === 0) return;
    if (!this.job.workflowId) {
      throw nonRetryable(
        ErrorType.InvalidPageInput,
        `page ${this.number} has no job.workflowId to enqueue the next page on`,
      );
    }
    cursors = cursors.slice(0, this.#lookahead);
    let size = 0;
    for (let i = 0; i < cursors.length; i++) {
      const bytes = checkCursor(this.number, cursors[i]);
      size += bytes;
      if (size > MAX_ENQUEUE_BYTES) {
        cursors = cursors.slice(0, i);
        break;
      }
    }
    const body =
      cursors.length > 1
        ? encodeEnqueuePage({ number: this.number + 1, cursors, token: this.#token })
        : encodeEnqueuePage({ number: this.number + 1, cursor: cursors[0], token: this.#token });
    try {
      // No run ID: the signal goes to the workflow's current run, which is the
      // one holding the queue after the orchestrator continued as new.
      await this.#env.signal(this.job.workflowId, ENQUEUE_PAGE_SIGNAL, body);
    } catch (err) {
      // A cancelled page's signal fails with the cancellation, which the SDK
      // must see as it is to report the attempt cancelled.
      if (this.cancellationSignal.aborted) throw err;
      throw new Error(
        `enqueue the ${cursors.length} page(s) after page ${this.number} of workflow ${JSON.stringify(this.job.workflowId)}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    this.#enqueued = true;
    // If the worker dies between the signal and this heartbeat reaching the
    // server, the retry signals again; the orchestrator ignores the duplicate.
    this.#env.heartbeat({ enqueuedNext: true });
  }

  /**
   * Reports that item could not be processed. type names the kind of failure:
   * the key of status.failures.byType. The page itself still succeeds. Every
   * call is counted; the first MAX_REPORTED_FAILED_ITEMS are reported in
   * detail, with the message cut to MAX_FAILURE_MESSAGE_BYTES.
   */
  failItem(item: string, type: string, message: string): void {
    this.#failItem({ item, type, message });
  }

  /**
   * failItem for a message that may hold secrets or personal data: the
   * orchestrator counts the failure by type and withholds the message from
   * status, Events, logs and the failure handler.
   */
  failItemSensitive(item: string, type: string, message: string): void {
    this.#failItem({ item, type, message, sensitive: true });
  }

  #failItem(f: FailedItem): void {
    this.#itemsFailed++;
    if (this.#failedItems.length < MAX_REPORTED_FAILED_ITEMS) {
      this.#failedItems.push({ ...f, message: truncateUTF8(f.message ?? '', MAX_FAILURE_MESSAGE_BYTES) });
    }
  }

  /**
   * Tells Temporal the page is still being processed. A page that runs longer
   * than the job's spec.processor.heartbeatTimeout must call it more often
   * than that. Heartbeats are also how a cancellation reaches a running page.
   * Calling it often is cheap; the SDK throttles what it sends.
   *
   * Use it rather than the SDK's heartbeat(): the details carry the marker
   * that stops a retried attempt from enqueuing the next page twice, and other
   * details would overwrite it.
   */
  heartbeat(): void {
    this.#env.heartbeat({ enqueuedNext: this.#enqueued });
  }

  /** Converts what the processor returned into the wire result. */
  toPageResult(r: Result): PageResult {
    if (!this.#enqueued) checkCursor(this.number, r.nextCursor ?? '');
    return encodePageResult({
      itemsProcessed: r.itemsProcessed,
      itemsFailed: this.#itemsFailed,
      failedItems: [...this.#failedItems],
      // Once enqueued, the next page is in the orchestrator's queue; a cursor
      // here would be a second, possibly different, claim on its number.
      nextCursor: this.#enqueued ? undefined : r.nextCursor,
    });
  }
}

/**
 * Refuses a successor cursor the orchestrator would refuse, so that the page
 * fails visibly instead of its chain ending there. Returns its length in bytes.
 */
function checkCursor(page: number, cursor: string): number {
  const bytes = utf8Length(cursor);
  if (bytes > MAX_CURSOR_BYTES) {
    throw nonRetryable(
      ErrorType.CursorTooLarge,
      `page ${page} produced a cursor of ${bytes} bytes for the page after it; cursors must be at most ${MAX_CURSOR_BYTES} bytes: encode the position more compactly (a key, an offset, a token ID)`,
    );
  }
  return bytes;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
