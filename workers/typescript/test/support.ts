// Shared by the tests: the golden fixtures, and a page run in the SDK's mock
// activity environment with a fake client that records signals.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import {
  defaultFailureConverter,
  defaultPayloadConverter,
  ensureApplicationFailure,
  type ProtoFailure,
} from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import type { EnqueuePage, EnqueuePageBatch, PageInput } from '@temporal-batch/worker';

/** testdata/contract at the repository root, from dist/test. */
export const fixturesDir = resolve(__dirname, '../../../../testdata/contract');

/** A golden fixture, parsed. */
export function fixture<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(resolve(fixturesDir, name), 'utf8')) as T;
}

/** A page input from page-input.json with some fields replaced. */
export function pageInput(overrides: Partial<PageInput> = {}, file = 'page-input.json'): PageInput {
  return { ...fixture<PageInput>(file), ...overrides };
}

export interface SentSignal {
  workflowId: string;
  runId: string | undefined;
  name: string;
  body: EnqueuePage | EnqueuePageBatch;
}

export interface MockPageOptions {
  /** The activity's attempt; 1 by default. */
  attempt?: number;
  /** What the previous attempt's heartbeat recorded. */
  heartbeatDetails?: unknown;
  /** Makes every signal fail with this error. */
  signalError?: Error;
}

/** A mock activity environment whose client records the signals sent through it. */
export class MockPage {
  readonly signals: SentSignal[] = [];
  readonly heartbeats: unknown[] = [];
  readonly logs: LogEntry[] = [];
  readonly env: MockActivityEnvironment;

  constructor(opts: MockPageOptions = {}) {
    const client = {
      // The worker ties the client's calls to the activity's cancellation.
      withAbortSignal: <R>(_signal: AbortSignal, fn: () => R): R => fn(),
      workflow: {
        getHandle: (workflowId: string, runId?: string) => ({
          signal: async (name: string, body: EnqueuePage | EnqueuePageBatch) => {
            if (opts.signalError) throw opts.signalError;
            // A copy: a later change to the body must not change what was sent.
            this.signals.push({ workflowId, runId, name, body: JSON.parse(JSON.stringify(body)) });
          },
        }),
      },
    } as unknown as Client;
    this.env = new MockActivityEnvironment(
      { attempt: opts.attempt ?? 1, heartbeatDetails: opts.heartbeatDetails },
      { client, logger: new DefaultLogger('WARN', (e) => this.logs.push(e)) },
    );
    this.env.on('heartbeat', (d: unknown) => this.heartbeats.push(d));
  }

  /** Runs an activity function in the environment. */
  run<I, O>(activity: (input: I) => Promise<O>, input: I): Promise<O> {
    return this.env.run(activity, input);
  }

  /** The bodies of the EnqueuePage signals sent. */
  get bodies(): (EnqueuePage | EnqueuePageBatch)[] {
    return this.signals.map((s) => s.body);
  }
}

/** The failure the worker reports to Temporal for an error an activity threw. */
export function wireFailure(err: unknown): ProtoFailure {
  return defaultFailureConverter.errorToFailure(ensureApplicationFailure(err), defaultPayloadConverter);
}

/** The first detail of a reported failure, as the orchestrator reads it: JSON. */
export function firstDetailJSON(f: ProtoFailure): unknown {
  const payload = f.applicationFailureInfo?.details?.payloads?.[0];
  if (!payload?.data) return undefined;
  return JSON.parse(Buffer.from(payload.data).toString('utf8'));
}

/** Runs fn and returns what it threw; fails when it did not throw. */
export async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('it did not throw');
}
