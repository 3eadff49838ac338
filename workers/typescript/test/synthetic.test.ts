// The synthetic processor against the Go one: cursors, successors, the
// split, ledger lines, failures and a whole job walked the way the
// orchestrator schedules it. Expected values are the Go tests' and what the
// Go code computes.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { EnqueuePage, EnqueuePageBatch, PageInput, PageResult } from '@temporal-batch/worker';
import {
  ledgerLine,
  oversize,
  parseSyntheticCursor,
  splitSynthetic,
  successors,
  syntheticProcessor,
  type SyntheticArgs,
} from '@temporal-batch/worker/synthetic';
import { recordedFailureLines } from '@temporal-batch/worker/record-failures';
import { MockPage, fixture, thrown, wireFailure } from './support';

const workflowId = 'batchjob/demo/synthetic/0';

function syntheticPage(number: number, cursor: string, size: number, args: SyntheticArgs, lookahead?: number): PageInput {
  return {
    job: { namespace: 'demo', name: 'synthetic', workflowId },
    page: { number, cursor, size },
    args,
    ...(lookahead === undefined ? {} : { lookahead }),
  };
}

function tempFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'synthetic-')), name);
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').replace(/\n$/, '').split('\n');
}

function cursorsOf(body: EnqueuePage | EnqueuePageBatch): string[] {
  return 'cursors' in body ? body.cursors : [body.cursor];
}

describe('synthetic cursors', () => {
  test('parse', () => {
    const cases: [string, { offset: number; end: number; bounded: boolean }][] = [
      ['', { offset: 0, end: 100, bounded: false }],
      ['20', { offset: 20, end: 100, bounded: false }],
      ['150', { offset: 150, end: 100, bounded: false }],
      ['20:60', { offset: 20, end: 60, bounded: true }],
      [':25', { offset: 0, end: 25, bounded: true }],
      ['+5', { offset: 5, end: 100, bounded: false }],
      ['007', { offset: 7, end: 100, bounded: false }],
      ['0:0', { offset: 0, end: 0, bounded: true }],
    ];
    for (const [cursor, want] of cases) {
      assert.deepEqual(parseSyntheticCursor(cursor, 100), want, cursor);
    }
  });

  test('invalid cursors fail for good with InvalidCursor and say why', () => {
    const cases: [string, string][] = [
      ['-1', 'offset "-1" is not a decimal item ID, 0 or more'],
      ['abc', 'offset "abc" is not a decimal item ID, 0 or more'],
      ['1.5', 'offset "1.5" is not a decimal item ID, 0 or more'],
      ['10:x', 'end "x" is not a decimal item ID, 0 or more'],
      ['1:2:3', 'end "2:3" is not a decimal item ID, 0 or more'],
      ['10:', 'end "" is not a decimal item ID, 0 or more'],
      ['0:101', 'end 101 is past totalItems'],
      ['50:40', 'end 40 is before offset 50'],
    ];
    for (const [cursor, why] of cases) {
      const err = (() => {
        try {
          parseSyntheticCursor(cursor, 100);
        } catch (e) {
          return e;
        }
      })();
      assert.ok(err instanceof ApplicationFailure, cursor);
      assert.equal(err.type, 'InvalidCursor');
      assert.equal(err.nonRetryable, true);
      assert.equal(
        err.message,
        `cursor ${JSON.stringify(cursor)}: ${why}; a synthetic cursor is "<offset>" or "<offset>:<end>": decimal item IDs, the page's first item and the item its chain stops before (end exclusive, default totalItems), 0 <= offset <= end <= totalItems; an empty offset means 0 (totalItems is 100)`,
      );
    }
  });

  test('successors as the Go code computes them', () => {
    const cases: [string, number, number, number, string[]][] = [
      // cursor, totalItems, size, lookahead, successors
      ['', 100, 10, 1, ['10']],
      ['0', 100, 10, 4, ['10', '20', '30', '40']],
      ['70', 100, 10, 4, ['80', '90']],
      ['90', 100, 10, 4, []],
      ['95', 100, 10, 4, []],
      ['150', 100, 10, 4, []],
      ['0', 100, 10, 0, []],
      ['0:25', 100, 10, 5, ['10:25', '20:25']],
      [':25', 100, 10, 5, ['10:25', '20:25']],
      ['20:20', 100, 10, 3, []],
      ['0', 47, 10, 1000, ['10', '20', '30', '40']],
      ['26:52', 103, 10, 5, ['36:52', '46:52']],
      ['0', 10, 3, 10, ['3', '6', '9']],
    ];
    for (const [cursor, total, size, n, want] of cases) {
      assert.deepEqual(successors(parseSyntheticCursor(cursor, total), size, n), want, `${cursor} size ${size} lookahead ${n}`);
    }
  });

  test('splitSynthetic as TestSplitSynthetic', () => {
    assert.deepEqual(splitSynthetic(103, 4), ['0:26', '26:52', '52:78', '78']);
    assert.deepEqual(splitSynthetic(100, 2), ['0:50', '50']);
    assert.deepEqual(splitSynthetic(10, 1), ['']);
    assert.deepEqual(splitSynthetic(0, 3), ['']);
    assert.deepEqual(splitSynthetic(2, 5), ['0:1', '1']);
  });

  test('oversize pads from the item on to one byte over the limit, still parsing as the same cursor', () => {
    const padded = oversize(['40', '50', '60:90'], 50, 100);
    assert.deepEqual(
      padded.map((c) => c.length),
      [2, 4097, 4097],
    );
    assert.deepEqual(parseSyntheticCursor(padded[2], 100), { offset: 60, end: 90, bounded: true });
  });

  test('ledger line', () => {
    assert.equal(ledgerLine(23, 2, 1), '23 2 1\n');
  });
});

describe('synthetic pages', () => {
  test('a page enqueues its successor, processes its items, fails the listed ones and writes its ledger once', async () => {
    const ledger = tempFile('ledger');
    writeFileSync(ledger, '5 0 1\n');
    const mock = new MockPage();
    const result = await mock.run(
      syntheticProcessor.activity,
      syntheticPage(2, '20', 10, { totalItems: 100, ledger, failItems: { '23': 'InvalidRecord' } }),
    );
    assert.deepEqual(mock.signals, [{ workflowId, runId: undefined, name: 'EnqueuePage', body: { number: 3, cursor: '30' } }]);
    assert.deepEqual(result, {
      itemsProcessed: 9,
      itemsFailed: 1,
      failedItems: [{ item: '23', type: 'InvalidRecord', message: 'item fails as spec.processor.args.failItems asks' }],
    });
    assert.deepEqual(lines(ledger), ['5 0 1', '20 2 1', '21 2 1', '22 2 1', '24 2 1', '25 2 1', '26 2 1', '27 2 1', '28 2 1', '29 2 1']);
    assert.equal(mock.heartbeats[0] !== undefined, true, 'it heartbeats while it works');
    assert.deepEqual(mock.heartbeats[0], { enqueuedNext: true });
  });

  test('lookahead: a frontier page enqueues up to lookahead successors in one signal', async () => {
    const mock = new MockPage();
    await mock.run(syntheticProcessor.activity, syntheticPage(0, '0:60', 10, { totalItems: 100 }, 3));
    assert.deepEqual(mock.bodies, [{ number: 1, cursors: ['10:60', '20:60', '30:60'] }]);
  });

  test('failPages: the attempt fails after enqueuing, and its retry does not enqueue again', async () => {
    const ledger = tempFile('ledger');
    const args: SyntheticArgs = { totalItems: 100, ledger, failPages: { '0': { type: 'Flaky', attempts: 1 } } };
    const first = new MockPage();
    const err = await thrown(() => first.run(syntheticProcessor.activity, syntheticPage(0, '0:60', 10, args, 3)));
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'Flaky');
    assert.equal(err.nonRetryable, false);
    assert.equal(err.message, 'page 0 attempt 1 fails as spec.processor.args.failPages asks');
    assert.equal(first.signals.length, 1);
    assert.equal(existsSync(ledger), false);

    const retry = new MockPage({ attempt: 2, heartbeatDetails: first.heartbeats.at(-1) });
    const result = await retry.run(syntheticProcessor.activity, syntheticPage(0, '0:60', 10, args, 3));
    assert.equal(result.itemsProcessed, 10);
    assert.deepEqual(retry.signals, []);
    assert.equal(lines(ledger)[0], '0 0 2');
  });

  test('failPages with attempts 0 fail every attempt; failWhileExists and failWhileEnv switch them off', async () => {
    const flag = tempFile('failing');
    const fails = { '4': { type: 'Broken', attempts: 0 } };
    const run = (args: SyntheticArgs, attempt = 7) =>
      new MockPage({ attempt }).run(syntheticProcessor.activity, syntheticPage(4, '40', 10, args));
    assert.equal(((await thrown(() => run({ totalItems: 100, failPages: fails }))) as ApplicationFailure).type, 'Broken');
    assert.equal((await run({ totalItems: 100, failPages: fails, failWhileExists: flag })).itemsProcessed, 10);
    writeFileSync(flag, '');
    assert.ok((await thrown(() => run({ totalItems: 100, failPages: fails, failWhileExists: flag }))) instanceof ApplicationFailure);
    const unset = 'SYNTHETIC_TEST_UNSET_VARIABLE';
    delete process.env[unset];
    assert.equal((await run({ totalItems: 100, failPages: fails, failWhileEnv: unset })).itemsProcessed, 10);
  });

  test('panicPages: the first attempt fails as a Go panic does, after enqueuing and before the ledger', async () => {
    const ledger = tempFile('ledger');
    const args: SyntheticArgs = { totalItems: 100, ledger, panicPages: [2] };
    const first = new MockPage();
    const err = await thrown(() => first.run(syntheticProcessor.activity, syntheticPage(2, '20', 10, args)));
    const f = wireFailure(err);
    assert.equal(f.applicationFailureInfo?.type, 'PanicError');
    assert.equal(f.applicationFailureInfo?.nonRetryable, false);
    assert.match(f.message ?? '', /panicPages/);
    assert.deepEqual(first.bodies, [{ number: 3, cursor: '30' }]);
    assert.equal(existsSync(ledger), false);
    const retry = new MockPage({ attempt: 2, heartbeatDetails: { enqueuedNext: true } });
    assert.equal((await retry.run(syntheticProcessor.activity, syntheticPage(2, '20', 10, args))).itemsProcessed, 10);
    assert.equal(lines(ledger)[0], '20 2 2');
  });

  test('oversizedCursorFrom: the page fails for good with CursorTooLarge and sends nothing', async () => {
    const mock = new MockPage();
    const err = await thrown(() =>
      mock.run(syntheticProcessor.activity, syntheticPage(3, '30', 10, { totalItems: 100, oversizedCursorFrom: 50 }, 2)),
    );
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'CursorTooLarge');
    assert.deepEqual(mock.signals, []);
    const before = new MockPage();
    await before.run(syntheticProcessor.activity, syntheticPage(2, '20', 10, { totalItems: 100, oversizedCursorFrom: 50 }, 2));
    assert.deepEqual(before.bodies, [{ number: 3, cursors: ['30', '40'] }]);
  });

  test('invalid args fail for good with InvalidArgs and the Go messages', async () => {
    const cases: [unknown, number, string][] = [
      [undefined, 10, 'spec.processor.args.totalItems must be set to the size of the data set, 0 or more'],
      [{ totalItems: 10, failPage: {} }, 10, 'decode spec.processor.args: json: unknown field "failPage"'],
      [{ totalItems: 10, itemDelay: 'soon' }, 10, 'spec.processor.args.itemDelay "soon" is not a non-negative Go duration such as 10ms or 2s'],
      [{ totalItems: 10, fetchDelay: '-1s' }, 10, 'spec.processor.args.fetchDelay "-1s" is not a non-negative Go duration such as 10ms or 2s'],
      [{ totalItems: 10, failItems: { '3': '' } }, 10, 'spec.processor.args.failItems["3"] must name an error type'],
      [{ totalItems: 10, failPages: { '0': { type: 'X', attempts: -1 } } }, 10, 'spec.processor.args.failPages["0"] must be {"type": "<error type>", "attempts": <0 or more>}'],
      [{ totalItems: 10, failPages: { '0': { type: 'X', times: 1 } } }, 10, 'decode spec.processor.args: json: unknown field "times"'],
      [{ totalItems: '10' }, 10, 'decode spec.processor.args: json: cannot unmarshal string into Go struct field SyntheticArgs.totalItems of type int64'],
    ];
    for (const [args, size, message] of cases) {
      const err = await thrown(() =>
        new MockPage().run(syntheticProcessor.activity, syntheticPage(0, '', size, args as SyntheticArgs)),
      );
      assert.ok(err instanceof ApplicationFailure, message);
      assert.equal(err.type, 'InvalidArgs');
      assert.equal(err.nonRetryable, true);
      assert.equal(err.message, message);
    }
    const err = await thrown(() => new MockPage().run(syntheticProcessor.activity, syntheticPage(0, '', 0, { totalItems: 10 })));
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'InvalidPageInput');
    assert.equal(err.message, 'page size 0 is not positive');
  });

  test('field names match case-insensitively, as Go decodes them', async () => {
    const result = await new MockPage().run(syntheticProcessor.activity, syntheticPage(0, '', 10, { TotalItems: 5 } as unknown as SyntheticArgs));
    assert.equal(result.itemsProcessed, 5);
  });

  test('a cancelled page stops waiting', async () => {
    const mock = new MockPage();
    setTimeout(() => mock.env.cancel(), 20);
    const err = await thrown(() => mock.run(syntheticProcessor.activity, syntheticPage(0, '', 10, { totalItems: 10, fetchDelay: '1m' })));
    assert.ok(err instanceof CancelledFailure);
  });
});

interface WalkedPage {
  number: number;
  cursor: string;
  chain: number;
  asked: number;
  enqueued: string[];
  result?: PageResult;
}

/**
 * Runs a whole job as the Go walkJob does: one chain per first cursor, only a
 * chain's frontier asked for lookahead successors, the pages it enqueues
 * numbered in order and the last becoming the frontier; a chain ends when its
 * frontier enqueues nothing. Pages run one at a time, last waiting first.
 */
async function walkJob(firsts: string[], size: number, lookahead: number | undefined, args: SyntheticArgs): Promise<WalkedPage[]> {
  const waiting: WalkedPage[] = firsts.map((cursor, i) => ({ number: i, cursor, chain: i, asked: 0, enqueued: [] }));
  const frontiers = firsts.map((_, i) => i);
  let next = firsts.length;
  const walked: WalkedPage[] = [];
  while (waiting.length > 0) {
    assert.ok(walked.length < 10_000, 'the walk did not end');
    const p = waiting.pop()!;
    const frontier = frontiers[p.chain] === p.number;
    p.asked = lookahead === undefined ? 1 : frontier ? lookahead : 0;
    const mock = new MockPage();
    const asked = lookahead === undefined ? undefined : frontier ? lookahead : 0;
    p.result = await mock.run(syntheticProcessor.activity, syntheticPage(p.number, p.cursor, size, args, asked));
    assert.ok(mock.signals.length <= 1, `page ${p.number} sent ${mock.signals.length} signals`);
    if (mock.signals.length === 1) {
      const s = mock.signals[0];
      assert.equal(s.name, 'EnqueuePage');
      assert.equal(s.workflowId, workflowId);
      assert.equal(s.runId, undefined);
      assert.equal(s.body.number, p.number + 1);
      p.enqueued = cursorsOf(s.body);
    }
    assert.ok(p.enqueued.length <= p.asked, `page ${p.number} was asked for ${p.asked} and enqueued ${p.enqueued}`);
    walked.push(p);
    if (!frontier) continue;
    for (const cursor of p.enqueued) {
      waiting.push({ number: next, cursor, chain: p.chain, asked: 0, enqueued: [] });
      frontiers[p.chain] = next++;
    }
    if (p.enqueued.length === 0) frontiers[p.chain] = -1;
  }
  return walked;
}

describe('a whole job, as TestSyntheticWalkSeveralChains', () => {
  const cases: { name: string; total: number; cursors: string[]; lookahead?: number; wantPages: number }[] = [
    { name: 'four chains, lookahead 5', total: 103, cursors: splitSynthetic(103, 4), lookahead: 5, wantPages: 12 },
    { name: 'uneven chains, lookahead 3', total: 103, cursors: [':25', '25:60', '60'], lookahead: 3, wantPages: 12 },
    { name: 'three chains, lookahead 1', total: 100, cursors: splitSynthetic(100, 3), lookahead: 1, wantPages: 12 },
    { name: 'two chains, lookahead 1000', total: 250, cursors: splitSynthetic(250, 2), lookahead: 1000, wantPages: 26 },
    { name: 'empty parts', total: 50, cursors: ['0:0', '0:20', '20:20', '20'], lookahead: 4, wantPages: 7 },
    { name: 'one chain, orchestrator without lookahead', total: 47, cursors: [''], wantPages: 5 },
  ];
  for (const tc of cases) {
    test(tc.name, async () => {
      const ledger = tempFile('ledger');
      const pages = await walkJob(tc.cursors, 10, tc.lookahead, { totalItems: tc.total, ledger });
      assert.equal(pages.length, tc.wantPages);
      if ((tc.lookahead ?? 1) > 1) assert.ok(pages.some((p) => p.enqueued.length > 1), 'lookahead at work');
      const seen = new Map<string, number>();
      for (const line of lines(ledger)) {
        const item = line.split(' ')[0];
        seen.set(item, (seen.get(item) ?? 0) + 1);
      }
      for (let item = 0; item < tc.total; item++) assert.equal(seen.get(String(item)), 1, `item ${item}`);
      assert.equal(seen.size, tc.total);
      assert.equal(pages.reduce((n, p) => n + (p.result?.itemsProcessed ?? 0), 0), tc.total);
    });
  }
});

describe('RecordFailures', () => {
  test('one JSON line per failure: the job, then the failure fields, as the Go handler writes them', () => {
    const got = recordedFailureLines(fixture('failure-batch.json'));
    const job = '{"namespace":"shop","name":"inflate-prices","workflowId":"batchjob/shop/inflate-prices/6f1c2a9e-1d2b-4c8e-9a41-2f7d3b5c8e10"}';
    assert.equal(
      got,
      `{"job":${job},"page":7,"cursor":"sku-00700","item":"sku-00712","type":"InvalidRecord","message":"price is negative","time":"2026-11-29T10:15:30Z"}\n` +
        `{"job":${job},"page":9,"cursor":"sku-00900","type":"UpstreamSchema","message":"column price_cents missing","time":"2026-11-29T10:15:31.5Z"}\n`,
    );
  });
});
