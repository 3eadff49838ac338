// The wire contract between the BatchOrchestrator workflow and page
// processors, as plain JSON: the same messages as the Go package
// pkg/processor (contract.go), field for field. The golden fixtures in
// testdata/contract/ are the reference; test/contract.test.ts checks these
// types against them in both directions.
//
// The decode functions read a message as the orchestrator sends it and keep
// only the contract's fields; the encode functions write one as the Go
// package does, leaving out the fields Go tags omitempty when they are
// empty, so that a TypeScript worker's messages are byte for byte what a Go
// worker's are.

/** Name of the signal a page sends to the orchestrator workflow to enqueue the pages after it. */
export const ENQUEUE_PAGE_SIGNAL = 'EnqueuePage';

/** The largest cursor, in UTF-8 bytes, the orchestrator accepts. */
export const MAX_CURSOR_BYTES = 4096;
/** The most successors a page can be asked for. */
export const MAX_LOOKAHEAD = 1000;
/**
 * Bounds the cursors of one EnqueuePage batch together, in UTF-8 bytes.
 * {@link Page.enqueueNext} sends the longest prefix that fits: the last cursor
 * sent becomes the frontier and is asked for the rest, so sending fewer never
 * loses data.
 */
export const MAX_ENQUEUE_BYTES = 256 * 1024;
/** Failed items a page result carries in detail; the rest are only counted. */
export const MAX_REPORTED_FAILED_ITEMS = 100;
/** The length, in UTF-8 bytes, a failed item's message is cut to. */
export const MAX_FAILURE_MESSAGE_BYTES = 512;

/** The limits, named as in testdata/contract/limits.json. */
export const LIMITS = {
  maxCursorBytes: MAX_CURSOR_BYTES,
  maxLookahead: MAX_LOOKAHEAD,
  maxEnqueueBytes: MAX_ENQUEUE_BYTES,
  maxReportedFailedItems: MAX_REPORTED_FAILED_ITEMS,
  maxFailureMessageBytes: MAX_FAILURE_MESSAGE_BYTES,
} as const;

/** Identifies the batch job a page belongs to. */
export interface JobRef {
  /** Namespace of the BatchJob resource. */
  namespace: string;
  /** Name of the BatchJob resource. */
  name: string;
  /** The orchestrator workflow: the target of EnqueuePage signals. */
  workflowId: string;
}

/** A page of the data set. */
export interface PageRef {
  /** The page's position in its chain; 0 is the first page. */
  number: number;
  /** The opaque cursor that locates the page. */
  cursor: string;
  /** The number of items asked for (spec.processor.pageSize). */
  size: number;
}

/** The single argument of a page processor activity. */
export interface PageInput {
  job: JobRef;
  page: PageRef;
  /** spec.processor.args, as JSON; absent when the job has none. */
  args?: unknown;
  /**
   * How many successor cursors the orchestrator asks this page to enqueue in
   * one EnqueuePage signal. 0: the page is not its chain's frontier and
   * enqueues nothing. Absent: an orchestrator older than lookahead, which
   * wants one.
   */
  lookahead?: number;
  /** Attempts the page used in earlier runs of the orchestrator, before this activity. */
  priorAttempts?: number;
  /** Attempts of the page's earlier rounds (stuck-page retries, re-drives). */
  totalPriorAttempts?: number;
  /**
   * The job's enqueue token, copied into every EnqueuePage signal. It is a
   * credential: never log or store it.
   */
  enqueueToken?: string;
}

/** Body of the single-cursor EnqueuePage signal. */
export interface EnqueuePage {
  /** The sender's page number plus one. */
  number: number;
  /** The cursor of the page that follows the sender. */
  cursor: string;
  /** The page's PageInput.enqueueToken; absent when it has none. */
  token?: string;
}

/**
 * Body of the EnqueuePage signal that enqueues several successors at once, in
 * the order they follow the sender. Sent only when more than one is asked for.
 */
export interface EnqueuePageBatch {
  /** The sender's page number plus one. */
  number: number;
  cursors: string[];
  /** The page's PageInput.enqueueToken; absent when it has none. */
  token?: string;
}

/**
 * The heartbeat detail a page records once it has signalled its successors,
 * so that a retried attempt does not signal again. It must be the first
 * detail of every heartbeat the page records after that.
 */
export interface HeartbeatMarker {
  enqueuedNext: boolean;
}

/** One item a page could not process; the page itself succeeds. */
export interface FailedItem {
  item: string;
  /** The kind of failure: the key of status.failures.byType. */
  type: string;
  message?: string;
  /** The message may hold secrets or personal data: the orchestrator withholds it. */
  sensitive?: boolean;
}

/**
 * The first detail of a page's application failure: what the processor says
 * about the failure besides its type and message.
 */
export interface ErrorDetails {
  /** The message may hold secrets or personal data: the orchestrator withholds it. */
  sensitive?: boolean;
  /** The attempt failed before it processed or changed any item. */
  nothingProcessed?: boolean;
}

/** What a page processor activity returns. The field names are camelCase on the wire. */
export interface PageResult {
  /** Items processed successfully. */
  itemsProcessed: number;
  /** The true number of failed items; failedItems may be truncated. */
  itemsFailed: number;
  /** At most MAX_REPORTED_FAILED_ITEMS of the failed items; absent when none. */
  failedItems?: FailedItem[];
  /**
   * The fallback for processors that cannot signal: when set and not already
   * signalled, the orchestrator enqueues the next page after this one completes.
   */
  nextCursor?: string;
}

/** One failure sent to a job's failure handler activity. */
export interface FailureReport {
  /** The page number the failure belongs to. */
  page: number;
  cursor?: string;
  /** Set for an item failure; absent for a page that failed. */
  item?: string;
  type: string;
  message?: string;
  /** When the orchestrator recorded the failure: RFC 3339, as Go writes a time. */
  time: string;
}

/** The single argument of a failure handler activity (spec.failurePolicy.handler). */
export interface FailureBatch {
  job: JobRef;
  failures: FailureReport[];
}

/** A message that does not have the contract's shape. */
export class ContractError extends Error {
  override name = 'ContractError';
}

type Fields = Record<string, unknown>;

function object(v: unknown, what: string): Fields {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ContractError(`${what} is not a JSON object`);
  }
  return v as Fields;
}

function str(o: Fields, key: string, what: string, required = true): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new ContractError(`${what}.${key} is missing`);
    return undefined;
  }
  if (typeof v !== 'string') throw new ContractError(`${what}.${key} is not a string`);
  return v;
}

function int(o: Fields, key: string, what: string, required = true): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new ContractError(`${what}.${key} is missing`);
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new ContractError(`${what}.${key} is not a whole number`);
  }
  return v;
}

function bool(o: Fields, key: string, what: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ContractError(`${what}.${key} is not true or false`);
  return v;
}

/** Sets out[key] = v unless v is empty, as Go's omitempty does. */
function omitEmpty<T extends object>(out: T, key: keyof T, v: unknown): void {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return;
  if (Array.isArray(v) && v.length === 0) return;
  (out as Fields)[key as string] = v;
}

export function decodeJobRef(v: unknown, what = 'job'): JobRef {
  const o = object(v, what);
  // Go decodes a missing string as empty; the page fails later, with a
  // message naming the field, if it needs it.
  return {
    namespace: str(o, 'namespace', what, false) ?? '',
    name: str(o, 'name', what, false) ?? '',
    workflowId: str(o, 'workflowId', what, false) ?? '',
  };
}

export function encodeJobRef(j: JobRef): JobRef {
  return { namespace: j.namespace, name: j.name, workflowId: j.workflowId };
}

/** Reads a page processor activity's input. */
export function decodePageInput(v: unknown): PageInput {
  const o = object(v, 'page input');
  const p = object(o.page ?? {}, 'page');
  const input: PageInput = {
    job: decodeJobRef(o.job ?? {}),
    page: {
      number: int(p, 'number', 'page', false) ?? 0,
      cursor: str(p, 'cursor', 'page', false) ?? '',
      size: int(p, 'size', 'page', false) ?? 0,
    },
  };
  if (o.args !== undefined && o.args !== null) input.args = o.args;
  const lookahead = int(o, 'lookahead', 'page input', false);
  if (lookahead !== undefined) input.lookahead = lookahead;
  omitEmpty(input, 'priorAttempts', int(o, 'priorAttempts', 'page input', false));
  omitEmpty(input, 'totalPriorAttempts', int(o, 'totalPriorAttempts', 'page input', false));
  omitEmpty(input, 'enqueueToken', str(o, 'enqueueToken', 'page input', false));
  return input;
}

/** Writes a page input as the orchestrator does. */
export function encodePageInput(in_: PageInput): PageInput {
  const out: PageInput = {
    job: encodeJobRef(in_.job),
    page: { number: in_.page.number, cursor: in_.page.cursor, size: in_.page.size },
  };
  if (in_.args !== undefined && in_.args !== null) out.args = in_.args;
  // Lookahead is a pointer in Go: 0 is sent, absent is not.
  if (in_.lookahead !== undefined && in_.lookahead !== null) out.lookahead = in_.lookahead;
  omitEmpty(out, 'priorAttempts', in_.priorAttempts);
  omitEmpty(out, 'totalPriorAttempts', in_.totalPriorAttempts);
  omitEmpty(out, 'enqueueToken', in_.enqueueToken);
  return out;
}

/** Reads the body of an EnqueuePage signal, single or batch. */
export function decodeEnqueuePage(v: unknown): EnqueuePage | EnqueuePageBatch {
  const o = object(v, 'EnqueuePage signal');
  const number = int(o, 'number', 'EnqueuePage signal') as number;
  const token = str(o, 'token', 'EnqueuePage signal', false);
  if (o.cursors !== undefined) {
    if (!Array.isArray(o.cursors) || o.cursors.some((c) => typeof c !== 'string')) {
      throw new ContractError('EnqueuePage signal.cursors is not a list of strings');
    }
    return encodeEnqueuePage({ number, cursors: o.cursors as string[], token });
  }
  return encodeEnqueuePage({ number, cursor: str(o, 'cursor', 'EnqueuePage signal', false) ?? '', token });
}

/** Writes the body of an EnqueuePage signal as the Go package does. */
export function encodeEnqueuePage(b: EnqueuePage | EnqueuePageBatch): EnqueuePage | EnqueuePageBatch {
  if ('cursors' in b) {
    const out: EnqueuePageBatch = { number: b.number, cursors: [...b.cursors] };
    omitEmpty(out, 'token', b.token);
    return out;
  }
  const out: EnqueuePage = { number: b.number, cursor: b.cursor };
  omitEmpty(out, 'token', b.token);
  return out;
}

/**
 * Reads heartbeat details an earlier attempt recorded. It throws on details of
 * another shape, as Go's decoding into HeartbeatMarker fails.
 */
export function decodeHeartbeatMarker(v: unknown): HeartbeatMarker {
  const o = object(v, 'heartbeat details');
  return { enqueuedNext: bool(o, 'enqueuedNext', 'heartbeat details') ?? false };
}

export function decodeFailedItem(v: unknown, what = 'failed item'): FailedItem {
  const o = object(v, what);
  return encodeFailedItem({
    item: str(o, 'item', what, false) ?? '',
    type: str(o, 'type', what, false) ?? '',
    message: str(o, 'message', what, false),
    sensitive: bool(o, 'sensitive', what),
  });
}

export function encodeFailedItem(f: FailedItem): FailedItem {
  const out: FailedItem = { item: f.item, type: f.type };
  omitEmpty(out, 'message', f.message);
  omitEmpty(out, 'sensitive', f.sensitive);
  return out;
}

export function decodeErrorDetails(v: unknown): ErrorDetails {
  const o = object(v, 'error details');
  return encodeErrorDetails({
    sensitive: bool(o, 'sensitive', 'error details'),
    nothingProcessed: bool(o, 'nothingProcessed', 'error details'),
  });
}

export function encodeErrorDetails(d: ErrorDetails): ErrorDetails {
  const out: ErrorDetails = {};
  omitEmpty(out, 'sensitive', d.sensitive);
  omitEmpty(out, 'nothingProcessed', d.nothingProcessed);
  return out;
}

export function decodePageResult(v: unknown): PageResult {
  const o = object(v, 'page result');
  const failed = o.failedItems ?? [];
  if (!Array.isArray(failed)) throw new ContractError('page result.failedItems is not a list');
  return encodePageResult({
    itemsProcessed: int(o, 'itemsProcessed', 'page result', false) ?? 0,
    itemsFailed: int(o, 'itemsFailed', 'page result', false) ?? 0,
    failedItems: failed.map((f, i) => decodeFailedItem(f, `page result.failedItems[${i}]`)),
    nextCursor: str(o, 'nextCursor', 'page result', false),
  });
}

/** Writes a page result as the Go package does: itemsProcessed and itemsFailed always, the rest when set. */
export function encodePageResult(r: PageResult): PageResult {
  const out: PageResult = { itemsProcessed: r.itemsProcessed, itemsFailed: r.itemsFailed };
  omitEmpty(out, 'failedItems', r.failedItems?.map(encodeFailedItem));
  omitEmpty(out, 'nextCursor', r.nextCursor);
  return out;
}

/** Reads a failure handler's input. */
export function decodeFailureBatch(v: unknown): FailureBatch {
  const o = object(v, 'failure batch');
  const failures = o.failures ?? [];
  if (!Array.isArray(failures)) throw new ContractError('failure batch.failures is not a list');
  return {
    job: decodeJobRef(o.job ?? {}),
    failures: failures.map((f, i) => {
      const what = `failure batch.failures[${i}]`;
      const r = object(f, what);
      return encodeFailureReport({
        page: int(r, 'page', what, false) ?? 0,
        cursor: str(r, 'cursor', what, false),
        item: str(r, 'item', what, false),
        type: str(r, 'type', what, false) ?? '',
        message: str(r, 'message', what, false),
        time: str(r, 'time', what, false) ?? '',
      });
    }),
  };
}

export function encodeFailureReport(f: FailureReport): FailureReport {
  // Keys in the order Go writes them: page, cursor, item, type, message, time.
  const out = { page: f.page } as FailureReport;
  omitEmpty(out, 'cursor', f.cursor);
  omitEmpty(out, 'item', f.item);
  out.type = f.type;
  omitEmpty(out, 'message', f.message);
  out.time = f.time;
  return out;
}

export function encodeFailureBatch(b: FailureBatch): FailureBatch {
  return { job: encodeJobRef(b.job), failures: b.failures.map(encodeFailureReport) };
}
