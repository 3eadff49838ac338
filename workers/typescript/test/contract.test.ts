// The wire types against the golden fixtures in testdata/contract: every
// fixture read into the TypeScript types and written back is the same JSON,
// key for key and in the same order.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  ENQUEUE_PAGE_SIGNAL,
  Env,
  Defaults,
  LIMITS,
  decodeEnqueuePage,
  decodeErrorDetails,
  decodeFailureBatch,
  decodeHeartbeatMarker,
  decodePageInput,
  decodePageResult,
  encodeErrorDetails,
  encodeFailureBatch,
  encodePageInput,
  encodePageResult,
} from '@temporal-batch/worker';
import { formatGoDuration } from '@temporal-batch/worker/text';
import { fixture, fixturesDir } from './support';

/** How each fixture is read and written back. */
const roundTrips: Record<string, (v: unknown) => unknown> = {
  'page-input.json': (v) => encodePageInput(decodePageInput(v)),
  'page-input-legacy.json': (v) => encodePageInput(decodePageInput(v)),
  'page-input-not-frontier.json': (v) => encodePageInput(decodePageInput(v)),
  'enqueue-single.json': decodeEnqueuePage,
  'enqueue-batch.json': decodeEnqueuePage,
  'heartbeat-marker.json': decodeHeartbeatMarker,
  'page-result.json': (v) => encodePageResult(decodePageResult(v)),
  'page-result-next-cursor.json': (v) => encodePageResult(decodePageResult(v)),
  'error-details.json': (v) => encodeErrorDetails(decodeErrorDetails(v)),
  'failure-batch.json': (v) => encodeFailureBatch(decodeFailureBatch(v)),
  'limits.json': () => LIMITS,
};

describe('golden fixtures', () => {
  test('every fixture is covered by a test', () => {
    const covered = new Set([...Object.keys(roundTrips), 'environment.json']);
    const files = readdirSync(fixturesDir).filter((f) => f.endsWith('.json'));
    assert.deepEqual(
      files.filter((f) => !covered.has(f)),
      [],
      'a fixture no test reads: add it to roundTrips',
    );
  });

  for (const [file, roundTrip] of Object.entries(roundTrips)) {
    test(`${file} reads and writes back unchanged`, () => {
      const want = fixture(file);
      const got = roundTrip(want);
      assert.deepEqual(got, want);
      // Same keys in the same order: what a Go worker writes, byte for byte.
      assert.equal(JSON.stringify(got), JSON.stringify(want));
    });
  }

  test('page-input.json reads as the types say', () => {
    const input = decodePageInput(fixture('page-input.json'));
    assert.equal(input.job.workflowId, 'batchjob/shop/inflate-prices/6f1c2a9e-1d2b-4c8e-9a41-2f7d3b5c8e10');
    assert.deepEqual(input.page, { number: 7, cursor: 'sku-00700', size: 100 });
    assert.deepEqual(input.args, { percent: 3 });
    assert.equal(input.lookahead, 4);
    assert.equal(input.priorAttempts, 1);
    assert.equal(input.totalPriorAttempts, 6);
    assert.equal(input.enqueueToken, '4MXJ7ZQHT2C5VN3K6PWD8RBYGA');
  });

  test('an absent lookahead stays absent and 0 stays 0', () => {
    assert.equal(decodePageInput(fixture('page-input-legacy.json')).lookahead, undefined);
    assert.equal(decodePageInput(fixture('page-input-not-frontier.json')).lookahead, 0);
  });

  test('a page result is written with camelCase fields and without empty ones', () => {
    assert.deepEqual(encodePageResult({ itemsProcessed: 5, itemsFailed: 0, failedItems: [], nextCursor: '' }), {
      itemsProcessed: 5,
      itemsFailed: 0,
    });
  });

  test('the heartbeat marker is one JSON payload, as heartbeat-marker.json', () => {
    const payload = defaultPayloadConverter.toPayload({ enqueuedNext: true });
    assert.equal(Buffer.from(payload.metadata!.encoding!).toString(), 'json/plain');
    assert.deepEqual(JSON.parse(Buffer.from(payload.data!).toString()), fixture('heartbeat-marker.json'));
  });

  test('unreadable messages are refused', () => {
    assert.throws(() => decodePageInput('page'), /not a JSON object/);
    assert.throws(() => decodePageInput({ page: { number: '7' } }), /page\.number is not a whole number/);
    assert.throws(() => decodeHeartbeatMarker({ enqueuedNext: 'yes' }), /not true or false/);
    assert.throws(() => decodeEnqueuePage({ number: 1, cursors: [1] }), /not a list of strings/);
  });

  test('the signal is named EnqueuePage', () => {
    assert.equal(ENQUEUE_PAGE_SIGNAL, 'EnqueuePage');
  });
});

describe('environment.json', () => {
  const envFixture = fixture<Record<string, { default?: string; required?: boolean }>>('environment.json');

  test('names exactly the variables the worker reads', () => {
    assert.deepEqual(Object.values(Env).sort(), Object.keys(envFixture).sort());
  });

  test('gives the defaults the worker applies', () => {
    assert.equal(envFixture[Env.Address].default, Defaults.address);
    assert.equal(envFixture[Env.Namespace].default, Defaults.namespace);
    assert.equal(envFixture[Env.PagesPerPod].default, String(Defaults.pagesPerPod));
    assert.equal(envFixture[Env.GracePeriod].default, formatGoDuration(Defaults.gracePeriodMs));
    assert.equal(envFixture[Env.TLSFilesOptional].default, 'false');
    assert.equal(envFixture[Env.TaskQueue].required, true);
  });
});
