// Error helpers, checked as the orchestrator sees them: the failure the
// worker reports to Temporal, its type, retry behaviour and first detail.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { errorDetailsOf, nonRetryable, nothingProcessed, retryable, sensitive } from '@temporal-batch/worker';
import { firstDetailJSON, fixture, wireFailure } from './support';

describe('error helpers', () => {
  test('nonRetryable and retryable set the type and retry behaviour', () => {
    const a = wireFailure(nonRetryable('InvalidArgs', 'totalItems is missing'));
    assert.equal(a.message, 'totalItems is missing');
    assert.equal(a.applicationFailureInfo?.type, 'InvalidArgs');
    assert.equal(a.applicationFailureInfo?.nonRetryable, true);
    const b = wireFailure(retryable('Throttled', 'slow down'));
    assert.equal(b.applicationFailureInfo?.type, 'Throttled');
    assert.equal(b.applicationFailureInfo?.nonRetryable, false);
    assert.equal(firstDetailJSON(b), undefined, 'no details: the orchestrator reads none');
  });

  test('sensitive and nothingProcessed together give error-details.json as the first detail', () => {
    const err = nothingProcessed(sensitive(nonRetryable('Unreachable', 'dial postgres://admin:secret@db')));
    const f = wireFailure(err);
    assert.equal(f.applicationFailureInfo?.type, 'Unreachable');
    assert.equal(f.applicationFailureInfo?.nonRetryable, true);
    assert.equal(f.message, 'dial postgres://admin:secret@db');
    assert.equal(JSON.stringify(firstDetailJSON(f)), JSON.stringify(fixture('error-details.json')));
    assert.equal(f.applicationFailureInfo?.details?.payloads?.length, 1);
  });

  test('one mark alone leaves the other out, as Go omits it', () => {
    assert.deepEqual(firstDetailJSON(wireFailure(sensitive(retryable('Rejected', 'card declined')))), { sensitive: true });
    assert.deepEqual(firstDetailJSON(wireFailure(nothingProcessed(new Error('fetch failed')))), { nothingProcessed: true });
  });

  test('a plain error keeps the type the SDK gives it and stays retryable', () => {
    const f = wireFailure(sensitive(new TypeError('bad row')));
    assert.equal(f.applicationFailureInfo?.type, 'TypeError');
    assert.equal(f.applicationFailureInfo?.nonRetryable, false);
    assert.equal(f.message, 'bad row');
    assert.equal(wireFailure(new TypeError('bad row')).applicationFailureInfo?.type, 'TypeError');
  });

  test('errorDetailsOf reads the details back', () => {
    const err = sensitive(nothingProcessed(retryable('X', 'y')));
    assert.ok(err instanceof ApplicationFailure);
    assert.deepEqual(errorDetailsOf(err), { sensitive: true, nothingProcessed: true });
    assert.deepEqual(errorDetailsOf(retryable('X', 'y')), {});
  });
});
