// Configuration from the environment variables the operator injects: the
// same variables, defaults and messages as the Go worker's.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, configFromEnv, connectionTLS, describeConfig, parseGoDuration } from '@temporal-batch/worker';

const minimal = { TEMPORAL_TASK_QUEUE: 'batch-shop-inflate-prices' };

function problems(env: Record<string, string>): string[] {
  try {
    configFromEnv(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('configFromEnv accepted the environment');
}

describe('configFromEnv', () => {
  test('the defaults of environment.json', () => {
    const cfg = configFromEnv(minimal);
    assert.deepEqual(cfg, {
      address: 'localhost:7233',
      namespace: 'default',
      taskQueue: 'batch-shop-inflate-prices',
      pagesPerPod: 1,
      job: '',
      tls: {},
      gracePeriodMs: 30_000,
    });
  });

  test('every variable, as the operator injects them', () => {
    const cfg = configFromEnv({
      TEMPORAL_ADDRESS: 'temporal-frontend.temporal:7233',
      TEMPORAL_NAMESPACE: 'batch',
      TEMPORAL_TASK_QUEUE: ' q ',
      TEMPORAL_BATCH_PAGES_PER_POD: '8',
      TEMPORAL_BATCH_JOB: 'shop/inflate-prices',
      TEMPORAL_BATCH_GRACE_PERIOD: '1m30s',
      TEMPORAL_TLS_SERVER_NAME: 'temporal.example.com',
      TEMPORAL_API_KEY: 'key-123',
    });
    assert.equal(cfg.address, 'temporal-frontend.temporal:7233');
    assert.equal(cfg.namespace, 'batch');
    assert.equal(cfg.taskQueue, 'q', 'values are trimmed');
    assert.equal(cfg.pagesPerPod, 8);
    assert.equal(cfg.job, 'shop/inflate-prices');
    assert.equal(cfg.gracePeriodMs, 90_000);
    assert.deepEqual(cfg.tls, { serverName: 'temporal.example.com' });
    assert.equal(cfg.apiKey, 'key-123');
    assert.equal(JSON.stringify(describeConfig(cfg)).includes('key-123'), false, 'the API key is never logged');
    assert.equal(describeConfig(cfg).gracePeriod, '1m30s');
  });

  test('an empty variable counts as unset', () => {
    assert.equal(configFromEnv({ ...minimal, TEMPORAL_ADDRESS: '', TEMPORAL_BATCH_PAGES_PER_POD: ' ' }).pagesPerPod, 1);
  });

  test('invalid variables are all reported, each with its fix', () => {
    const got = problems({
      TEMPORAL_BATCH_PAGES_PER_POD: '0',
      TEMPORAL_BATCH_GRACE_PERIOD: '30',
      TEMPORAL_TLS_FILES_OPTIONAL: 'maybe',
      TEMPORAL_TLS_CERT_FILE: '/tls/tls.crt',
    });
    assert.deepEqual(got, [
      'TEMPORAL_TASK_QUEUE is not set: set it to the task queue the job schedules pages on (spec.taskQueue)',
      'TEMPORAL_BATCH_PAGES_PER_POD="0" is not a whole number of at least 1: set it to the pages one worker runs at once (spec.worker.pagesPerPod), or unset it for 1',
      'TEMPORAL_BATCH_GRACE_PERIOD="30" is not a positive Go duration: use a value such as 30s or 2m, or unset it for 30s',
      'TEMPORAL_TLS_FILES_OPTIONAL="maybe" is not true or false: set it to true to go on without the TLS files that do not exist',
      'TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE must be set together: set both for mutual TLS, or neither',
    ]);
  });

  test('TLS files that do not exist are unset when optional, and a lone half of the pair is named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    writeFileSync(join(dir, 'tls.crt'), 'not used');
    const logged: string[] = [];
    const cfg = configFromEnv(
      {
        ...minimal,
        TEMPORAL_TLS_FILES_OPTIONAL: 'true',
        TEMPORAL_TLS_CA_FILE: join(dir, 'ca.crt'),
      },
      (_msg, attrs) => logged.push(String(attrs.variable)),
    );
    assert.deepEqual(cfg.tls, {});
    assert.deepEqual(logged, ['TEMPORAL_TLS_CA_FILE']);
    assert.deepEqual(
      problems({
        ...minimal,
        TEMPORAL_TLS_FILES_OPTIONAL: '1',
        TEMPORAL_TLS_CERT_FILE: join(dir, 'tls.crt'),
        TEMPORAL_TLS_KEY_FILE: join(dir, 'tls.key'),
      }),
      [
        `TEMPORAL_TLS_CERT_FILE=${JSON.stringify(join(dir, 'tls.crt'))} exists but TEMPORAL_TLS_KEY_FILE=${JSON.stringify(join(dir, 'tls.key'))} does not: mutual TLS needs both the certificate and its key (tls.crt and tls.key in the credentials Secret), or neither`,
      ],
    );
  });
});

describe('connectionTLS', () => {
  test('plaintext without TLS material; TLS with the system roots for an API key', () => {
    assert.equal(connectionTLS(configFromEnv(minimal)), undefined);
    assert.equal(connectionTLS(configFromEnv({ ...minimal, TEMPORAL_API_KEY: 'k' })), true);
  });

  test('files that hold no PEM are named with their variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    writeFileSync(join(dir, 'ca.crt'), 'garbage');
    assert.throws(
      () => connectionTLS(configFromEnv({ ...minimal, TEMPORAL_TLS_CA_FILE: join(dir, 'ca.crt') })),
      /TEMPORAL_TLS_CA_FILE=".*ca.crt" holds no PEM certificate/,
    );
    assert.throws(
      () => connectionTLS(configFromEnv({ ...minimal, TEMPORAL_TLS_CA_FILE: join(dir, 'missing.crt') })),
      /read TEMPORAL_TLS_CA_FILE=".*missing.crt"/,
    );
  });

  test('a client certificate and its key are read and checked as a pair', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    const crt = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    const other = join(dir, 'other.key');
    try {
      for (const [k, c] of [
        [key, crt],
        [other, join(dir, 'other.crt')],
      ]) {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', k, '-out', c, '-subj', '/CN=worker', '-days', '1'], { stdio: 'ignore' });
      }
    } catch {
      t.skip('openssl is not installed');
      return;
    }
    const tls = connectionTLS(configFromEnv({ ...minimal, TEMPORAL_TLS_CERT_FILE: crt, TEMPORAL_TLS_KEY_FILE: key, TEMPORAL_TLS_SERVER_NAME: 'temporal' }));
    assert.ok(typeof tls === 'object' && tls.clientCertPair);
    assert.equal(tls.serverNameOverride, 'temporal');
    assert.throws(
      () => connectionTLS(configFromEnv({ ...minimal, TEMPORAL_TLS_CERT_FILE: crt, TEMPORAL_TLS_KEY_FILE: other })),
      /do not make a key pair/,
    );
  });
});

describe('parseGoDuration', () => {
  const cases: [string, number | null][] = [
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['10m0s', 600_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['500ms', 500],
    ['250us', 0.25],
    ['2µs', 0.002],
    ['-2s', -2000],
    ['0', 0],
    ['', null],
    ['30', null],
    ['1d', null],
    ['s', null],
    ['1h-2m', null],
    ['3000000h', null],
  ];
  for (const [s, want] of cases) {
    test(JSON.stringify(s), () => assert.equal(parseGoDuration(s), want));
  }
});
