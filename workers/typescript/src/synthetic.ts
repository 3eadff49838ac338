// The synthetic page processor, ported from the Go example worker
// (internal/examples/synthetic.go) with the same args, cursors, failures,
// messages and ledger lines, so that a job gives the same results on either.

import { open, stat } from 'node:fs/promises';
import { MAX_CURSOR_BYTES } from './contract';
import { ErrorType, nonRetryable, retryable } from './errors';
import type { Page, Result } from './page';
import { definePageProcessor, type PageProcessor } from './processor';
import { parseGoDuration } from './text';

/** Activity type name of the synthetic processor: the spec.processor.name that selects it. */
export const NAME_SYNTHETIC = 'synthetic';

/** The spec.processor.args of the synthetic processor. */
export interface SyntheticArgs {
  /** The size of the data set, whose items have the IDs 0..totalItems-1. Required. */
  totalItems: number;
  /** A Go duration of simulated work per item. */
  itemDelay?: string;
  /** A Go duration of simulated page fetch, spent before the next page is enqueued. */
  fetchDelay?: string;
  /** Maps an item ID to an error type: that item is reported failed and the page succeeds. */
  failItems?: Record<string, string>;
  /** Maps a page number to how its attempts fail. */
  failPages?: Record<string, PageFailure>;
  /** The path of a file that makes failPages apply while it exists. */
  failWhileExists?: string;
  /** The name of an environment variable that makes failPages apply in processes where it is set and not empty. */
  failWhileEnv?: string;
  /** A file that gets a line "<item> <page> <attempt>" for every item processed. */
  ledger?: string;
  /** Pages whose first attempt throws after enqueuing and before processing, as a processor with a bug would. */
  panicPages?: number[];
  /** When positive, an item ID: successor cursors from it on are padded to one byte over MAX_CURSOR_BYTES. */
  oversizedCursorFrom?: number;
}

/** Makes the first `attempts` attempts of a page fail with type `type`; 0 fails every attempt. */
export interface PageFailure {
  type: string;
  attempts: number;
}

/** The failure of a page attempt that panicPages asks for: the type Go's SDK gives a panic. */
export class PanicError extends Error {
  override name = 'PanicError';
}

/** The synthetic processor, ready to register. */
export const syntheticProcessor: PageProcessor = definePageProcessor(NAME_SYNTHETIC, synthetic);

/**
 * The synthetic processor: it walks a data set that exists only as a count,
 * simulating fetch and processing time and failing items and pages on
 * request, for samples, demos, load tests and end-to-end tests.
 *
 * A page sleeps for fetchDelay, enqueues up to page.lookahead following pages
 * of its chain, and only then applies failPages, so a failing page has already
 * enqueued its successors. It then processes its items, itemDelay each, and
 * writes their ledger lines in a single append.
 */
export async function synthetic(page: Page): Promise<Result> {
  const args = decodeSyntheticArgs(page.args);
  if (args.totalItems < 0) {
    throw nonRetryable(
      ErrorType.InvalidArgs,
      'spec.processor.args.totalItems must be set to the size of the data set, 0 or more',
    );
  }
  const itemDelay = parseDelay('itemDelay', args.itemDelay);
  const fetchDelay = parseDelay('fetchDelay', args.fetchDelay);
  const failItems = new Map(Object.entries(args.failItems ?? {}));
  for (const [item, type] of failItems) {
    if (type === '') {
      throw nonRetryable(ErrorType.InvalidArgs, `spec.processor.args.failItems[${quote(item)}] must name an error type`);
    }
  }
  const failPages = new Map(Object.entries(args.failPages ?? {}));
  for (const [number, failure] of failPages) {
    if (failure.type === '' || failure.attempts < 0) {
      throw nonRetryable(
        ErrorType.InvalidArgs,
        `spec.processor.args.failPages[${quote(number)}] must be {"type": "<error type>", "attempts": <0 or more>}`,
      );
    }
  }
  if (page.size < 1) {
    // A page of no items would enqueue itself as its own successor forever.
    throw nonRetryable(ErrorType.InvalidPageInput, `page size ${page.size} is not positive`);
  }
  const cursor = parseSyntheticCursor(page.cursor, args.totalItems);

  const hb = new Heartbeater(page);
  await hb.sleep(fetchDelay);
  let next = successors(cursor, page.size, page.lookahead);
  if (next.length > 0) {
    if ((args.oversizedCursorFrom ?? 0) > 0) {
      next = oversize(next, args.oversizedCursorFrom as number, args.totalItems);
    }
    await page.enqueueNext(...next);
  }
  if (page.attempt === 1 && (args.panicPages ?? []).includes(page.number)) {
    throw new PanicError(`page ${page.number} attempt 1 panics as spec.processor.args.panicPages asks`);
  }
  const failure = failPages.get(String(page.number));
  if (failure) {
    let failing = await failureInEffect(args.failWhileExists ?? '');
    if (args.failWhileEnv && !process.env[args.failWhileEnv]) failing = false;
    if (failing && (failure.attempts === 0 || page.attempt <= failure.attempts)) {
      throw retryable(
        failure.type,
        `page ${page.number} attempt ${page.attempt} fails as spec.processor.args.failPages asks`,
      );
    }
  }

  let processed = 0;
  let ledger = '';
  for (let item = cursor.offset; item < pageEnd(cursor, page.size); item++) {
    await hb.sleep(itemDelay);
    const id = String(item);
    const errType = failItems.get(id);
    if (errType !== undefined) {
      page.failItem(id, errType, 'item fails as spec.processor.args.failItems asks');
      continue;
    }
    processed++;
    if (args.ledger) ledger += ledgerLine(item, page.number, page.attempt);
    hb.beat();
  }
  if (ledger !== '') {
    try {
      await appendFile(args.ledger as string, ledger);
    } catch (err) {
      throw new Error(`write ledger: ${(err as Error).message}`, { cause: err });
    }
  }
  return { itemsProcessed: processed };
}

/** The ledger line of an item processed: "<item> <page> <attempt>\n". */
export function ledgerLine(item: number, page: number, attempt: number): string {
  return `${item} ${page} ${attempt}\n`;
}

/** A parsed synthetic cursor: where a page starts and where its chain stops. */
export interface SyntheticCursor {
  /** The ID of the page's first item. */
  offset: number;
  /** The ID after the chain's last item: the cursor's ":<end>", or totalItems without one. */
  end: number;
  /** The cursor carried ":<end>"; successors carry it too. */
  bounded: boolean;
}

const syntheticCursorForm =
  '"<offset>" or "<offset>:<end>": decimal item IDs, ' +
  "the page's first item and the item its chain stops before (end exclusive, default totalItems), " +
  '0 <= offset <= end <= totalItems; an empty offset means 0';

/**
 * Parses a synthetic cursor, "<offset>" or "<offset>:<end>", for a data set of
 * totalItems items. An offset at or past totalItems without an end is an empty
 * page; an explicit end past totalItems or before the offset fails the page
 * for good with InvalidCursor.
 */
export function parseSyntheticCursor(cursor: string, totalItems: number): SyntheticCursor {
  const invalid = (why: string) =>
    nonRetryable(
      ErrorType.InvalidCursor,
      `cursor ${quote(cursor)}: ${why}; a synthetic cursor is ${syntheticCursorForm} (totalItems is ${totalItems})`,
    );
  const c: SyntheticCursor = { offset: 0, end: totalItems, bounded: false };
  const colon = cursor.indexOf(':');
  const offset = colon < 0 ? cursor : cursor.slice(0, colon);
  if (offset !== '') {
    const n = parseItemID(offset);
    if (n === null || n < 0) throw invalid(`offset ${quote(offset)} is not a decimal item ID, 0 or more`);
    c.offset = n;
  }
  if (colon < 0) return c;
  const endText = cursor.slice(colon + 1);
  const n = parseItemID(endText);
  if (n === null || n < 0) throw invalid(`end ${quote(endText)} is not a decimal item ID, 0 or more`);
  if (n > totalItems) throw invalid(`end ${n} is past totalItems`);
  if (n < c.offset) throw invalid(`end ${n} is before offset ${c.offset}`);
  c.end = n;
  c.bounded = true;
  return c;
}

/** Formats a cursor as parseSyntheticCursor reads it. */
export function formatSyntheticCursor(c: SyntheticCursor): string {
  return c.bounded ? `${c.offset}:${c.end}` : `${c.offset}`;
}

/** The ID after the page's last item. */
export function pageEnd(c: SyntheticCursor, size: number): number {
  if (c.offset >= c.end) return c.offset;
  return c.offset + Math.min(size, c.end - c.offset);
}

/**
 * The cursors of up to n pages that follow the page at c in its chain:
 * offset+k*size for k = 1..n, while before the chain's end. They keep c's end
 * when c carried one.
 */
export function successors(c: SyntheticCursor, size: number, n: number): string[] {
  const next: string[] = [];
  for (let k = 1; k <= n; k++) {
    const step = k * size;
    if (c.offset >= c.end || step >= c.end - c.offset) break;
    next.push(formatSyntheticCursor({ ...c, offset: c.offset + step }));
  }
  return next;
}

/**
 * Cursors for spec.processor.cursors that split a data set of totalItems items
 * into `chains` parts of about equal size (fewer when there are fewer items).
 */
export function splitSynthetic(totalItems: number, chains: number): string[] {
  const parts = Math.min(Math.max(chains, 1), totalItems);
  if (parts <= 1) return [''];
  const cursors: string[] = [];
  // The first totalItems % parts parts get one item more.
  const q = Math.floor(totalItems / parts);
  const r = totalItems % parts;
  let start = 0;
  for (let i = 1; i < parts; i++) {
    const end = i * q + Math.min(i, r);
    cursors.push(formatSyntheticCursor({ offset: start, end, bounded: true }));
    start = end;
  }
  cursors.push(formatSyntheticCursor({ offset: start, end: 0, bounded: false }));
  return cursors;
}

/** Pads the cursors at or past item `from` with leading zeros to one byte over MAX_CURSOR_BYTES. */
export function oversize(cursors: string[], from: number, totalItems: number): string[] {
  return cursors.map((c) => {
    try {
      if (parseSyntheticCursor(c, totalItems).offset >= from) return '0'.repeat(MAX_CURSOR_BYTES + 1 - c.length) + c;
    } catch {
      // Left as it is, as in Go.
    }
    return c;
  });
}

/**
 * Parses a decimal item ID as Go's strconv.ParseInt(s, 10, 64) does, sign
 * and leading zeros allowed; null when it is not one, or is past
 * Number.MAX_SAFE_INTEGER, the largest item ID this port counts to.
 */
function parseItemID(s: string): number | null {
  if (!/^[+-]?[0-9]+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** Whether failPages apply: always without a failWhileExists file, else while that file exists. */
async function failureInEffect(path: string): Promise<boolean> {
  if (path === '') return true;
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new Error(`spec.processor.args.failWhileExists: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Appends data to the file at path with a single write. With O_APPEND,
 * concurrent pages in any number of processes on one machine then never
 * interleave their lines.
 */
export async function appendFile(path: string, data: string): Promise<void> {
  const f = await open(path, 'a', 0o644);
  try {
    const buf = Buffer.from(data, 'utf8');
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await f.write(buf, written);
      written += bytesWritten;
    }
  } finally {
    await f.close();
  }
}

/** Parses an optional non-negative Go duration argument, in milliseconds. */
function parseDelay(arg: string, value: string | undefined): number {
  if (!value) return 0;
  const ms = parseGoDuration(value);
  if (ms === null || ms < 0) {
    throw nonRetryable(
      ErrorType.InvalidArgs,
      `spec.processor.args.${arg} ${quote(value)} is not a non-negative Go duration such as 10ms or 2s`,
    );
  }
  return ms;
}

/**
 * How often the processor heartbeats while it works: well inside the default
 * 30 s heartbeat timeout, and rarely enough that a page of instant items does
 * not spend its time on heartbeats.
 */
const heartbeatIntervalMs = 1000;

/** Heartbeats a page at most every heartbeatIntervalMs. */
class Heartbeater {
  #last = -Infinity;
  constructor(private readonly page: Page) {}

  beat(): void {
    const now = performance.now();
    if (now - this.#last >= heartbeatIntervalMs) {
      this.page.heartbeat();
      this.#last = now;
    }
  }

  /**
   * Waits for ms or until the page is cancelled, heartbeating meanwhile so that
   * a delay longer than the heartbeat timeout does not time the page out.
   */
  sleep(ms: number): Promise<void> | void {
    const signal = this.page.cancellationSignal;
    signal.throwIfAborted();
    if (ms <= 0) return;
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        clearInterval(ticker);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        done();
        resolve();
      }, ms);
      const ticker = setInterval(() => this.beat(), heartbeatIntervalMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Decodes the args strictly, refusing fields the processor does not know, as the Go processor does. */
export function decodeSyntheticArgs(raw: unknown): SyntheticArgs {
  const args: SyntheticArgs = { totalItems: -1 };
  if (raw === undefined || raw === null) return args;
  const fail = (why: string) => nonRetryable(ErrorType.InvalidArgs, `decode spec.processor.args: ${why}`);
  const o = strictObject(raw, 'SyntheticArgs', syntheticFields, fail);
  for (const [field, v] of o) {
    const at = `SyntheticArgs.${field}`;
    switch (field) {
      case 'totalItems':
      case 'oversizedCursorFrom':
        args[field] = wholeNumber(v, at, 'int64', fail);
        break;
      case 'itemDelay':
      case 'fetchDelay':
      case 'failWhileExists':
      case 'failWhileEnv':
      case 'ledger':
        args[field] = text(v, at, fail);
        break;
      case 'failItems': {
        const m: Record<string, string> = {};
        for (const [k, t] of Object.entries(jsonObject(v, at, 'map[string]string', fail))) {
          if (t !== null) m[k] = text(t, `${at}`, fail);
          else m[k] = '';
        }
        args.failItems = m;
        break;
      }
      case 'failPages': {
        const m: Record<string, PageFailure> = {};
        for (const [k, pf] of Object.entries(jsonObject(v, at, 'map[string]examples.PageFailure', fail))) {
          const f: PageFailure = { type: '', attempts: 0 };
          if (pf !== null) {
            for (const [pk, pv] of strictObject(pf, 'PageFailure', pageFailureFields, fail)) {
              if (pk === 'type') f.type = text(pv, `${at}.type`, fail);
              else f.attempts = wholeNumber(pv, `${at}.attempts`, 'int32', fail);
            }
          }
          m[k] = f;
        }
        args.failPages = m;
        break;
      }
      case 'panicPages': {
        if (!Array.isArray(v)) throw fail(`json: cannot unmarshal ${jsonType(v)} into Go struct field ${at} of type []int64`);
        args.panicPages = v.map((p) => wholeNumber(p, at, 'int64', fail));
        break;
      }
    }
  }
  return args;
}

const syntheticFields = [
  'totalItems',
  'itemDelay',
  'fetchDelay',
  'failItems',
  'failPages',
  'failWhileExists',
  'failWhileEnv',
  'ledger',
  'panicPages',
  'oversizedCursorFrom',
] as const;
const pageFailureFields = ['type', 'attempts'] as const;

type Fail = (why: string) => Error;

/**
 * The fields of a JSON object matched to known names as Go's encoding/json
 * matches them (exact, else case-insensitive), nulls skipped as Go leaves the
 * field unchanged; an unknown field is an error.
 */
function strictObject<F extends string>(v: unknown, goType: string, fields: readonly F[], fail: Fail): [F, unknown][] {
  const o = jsonObject(v, goType, goType, fail);
  const out: [F, unknown][] = [];
  for (const [key, value] of Object.entries(o)) {
    const field = fields.find((f) => f === key) ?? fields.find((f) => f.toLowerCase() === key.toLowerCase());
    if (field === undefined) throw fail(`json: unknown field ${quote(key)}`);
    if (value !== null) out.push([field, value]);
  }
  return out;
}

function jsonObject(v: unknown, at: string, goType: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw fail(`json: cannot unmarshal ${jsonType(v)} into Go value of type ${goType}${at === goType ? '' : ` (${at})`}`);
  }
  return v as Record<string, unknown>;
}

function wholeNumber(v: unknown, at: string, goType: 'int64' | 'int32', fail: Fail): number {
  const limit = goType === 'int32' ? 2 ** 31 : 2 ** 53;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -limit || v >= limit) {
    throw fail(`json: cannot unmarshal ${jsonType(v)} into Go struct field ${at} of type ${goType}`);
  }
  return v;
}

function text(v: unknown, at: string, fail: Fail): string {
  if (typeof v !== 'string') throw fail(`json: cannot unmarshal ${jsonType(v)} into Go struct field ${at} of type string`);
  return v;
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'number') return `number ${v}`;
  return typeof v;
}

/** Quotes a value as Go's %q does for printable text. */
function quote(s: string): string {
  return JSON.stringify(s);
}
