// The Page a processor receives, run in the SDK's mock activity environment:
// attempts and lookahead from the input, the EnqueuePage signal it sends, the
// heartbeat marker, item failures and the result.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import {
  ErrorType,
  MAX_CURSOR_BYTES,
  MAX_ENQUEUE_BYTES,
  definePageProcessor,
  type Page,
  type PageInput,
  type PageResult,
  type Result,
} from '@temporal-batch/worker';
import { MockPage, fixture, pageInput, thrown } from './support';

/** Runs fn as the page processor of input and returns the page it saw and its result. */
async function runPage(
  input: PageInput,
  fn: (page: Page) => Promise<Result> | Result,
  mock = new MockPage(),
): Promise<{ page: Page; result: PageResult; mock: MockPage }> {
  let seen: Page | undefined;
  const processor = definePageProcessor('test', async (page) => {
    seen = page;
    return fn(page);
  });
  const result = await mock.run(processor.activity, input);
  return { page: seen!, result, mock };
}

const done: Result = { itemsProcessed: 0 };
const batchCursors = ['sku-00800', 'sku-00900', 'sku-01000', 'sku-01100'];

describe('Page from the input', () => {
  test('page-input.json: attempt, total attempt, lookahead, fields', async () => {
    const { page } = await runPage(pageInput(), () => done, new MockPage({ attempt: 2 }));
    assert.equal(page.attempt, 3, 'activity attempt 2 + priorAttempts 1');
    assert.equal(page.totalAttempt, 9, 'attempt 3 + totalPriorAttempts 6');
    assert.equal(page.lookahead, 4);
    assert.equal(page.number, 7);
    assert.equal(page.cursor, 'sku-00700');
    assert.equal(page.size, 100);
    assert.deepEqual(page.args, { percent: 3 });
    assert.equal(page.job.name, 'inflate-prices');
    assert.equal(JSON.stringify(page).includes('4MXJ7ZQHT2C5VN3K6PWD8RBYGA'), false, 'the token is not in the page JSON');
  });

  test('an input without lookahead asks for one; attempts start at the activity attempt', async () => {
    const { page } = await runPage(pageInput({}, 'page-input-legacy.json'), () => done);
    assert.equal(page.lookahead, 1);
    assert.equal(page.attempt, 1);
    assert.equal(page.totalAttempt, 1);
    assert.equal(page.args, undefined);
  });

  test('lookahead is clamped to 0..1000', async () => {
    for (const [given, want] of [
      [0, 0],
      [-3, 0],
      [1000, 1000],
      [5000, 1000],
    ]) {
      const { page } = await runPage(pageInput({ lookahead: given }), () => done);
      assert.equal(page.lookahead, want, `lookahead ${given}`);
    }
  });

  test('negative prior attempts count as none', async () => {
    const { page } = await runPage(pageInput({ priorAttempts: -4, totalPriorAttempts: -1 }), () => done);
    assert.equal(page.attempt, 1);
    assert.equal(page.totalAttempt, 1);
  });

  test('an input that is not a page fails for good', async () => {
    const err = await thrown(() => runPage({ page: 'seven' } as unknown as PageInput, () => done));
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, ErrorType.InvalidPageInput);
    assert.equal(err.nonRetryable, true);
  });
});

describe('enqueueNext', () => {
  test('several cursors send enqueue-batch.json to the current run of the job workflow', async () => {
    const { mock, result } = await runPage(pageInput(), async (page) => {
      await page.enqueueNext(...batchCursors);
      return { itemsProcessed: 100 };
    });
    assert.equal(mock.signals.length, 1);
    const [s] = mock.signals;
    assert.equal(s.name, 'EnqueuePage');
    assert.equal(s.workflowId, 'batchjob/shop/inflate-prices/6f1c2a9e-1d2b-4c8e-9a41-2f7d3b5c8e10');
    assert.equal(s.runId, undefined, 'no run ID: the current run');
    assert.equal(JSON.stringify(s.body), JSON.stringify(fixture('enqueue-batch.json')));
    assert.deepEqual(mock.heartbeats, [{ enqueuedNext: true }]);
    assert.deepEqual(result, { itemsProcessed: 100, itemsFailed: 0 });
  });

  test('one cursor sends enqueue-single.json', async () => {
    const { mock } = await runPage(pageInput(), async (page) => {
      await page.enqueueNext('sku-00800');
      return done;
    });
    assert.equal(JSON.stringify(mock.bodies), JSON.stringify([fixture('enqueue-single.json')]));
  });

  test('more cursors than asked for are cut to the lookahead; one asked for is the single form', async () => {
    const more = [...batchCursors, 'sku-01200', 'sku-01300'];
    const four = await runPage(pageInput(), async (page) => {
      await page.enqueueNext(...more);
      return done;
    });
    assert.deepEqual(four.mock.bodies, [fixture('enqueue-batch.json')]);
    const one = await runPage(pageInput({ lookahead: 1 }), async (page) => {
      await page.enqueueNext(...more);
      return done;
    });
    assert.deepEqual(one.mock.bodies, [fixture('enqueue-single.json')]);
  });

  test('without a token the body has none', async () => {
    const { mock } = await runPage(pageInput({}, 'page-input-legacy.json'), async (page) => {
      await page.enqueueNext('100');
      return done;
    });
    assert.deepEqual(mock.bodies, [{ number: 1, cursor: '100' }]);
  });

  test('a page not asked for successors sends nothing', async () => {
    const { mock, result } = await runPage(pageInput({}, 'page-input-not-frontier.json'), async (page) => {
      await page.enqueueNext('sku-00900');
      return { itemsProcessed: 1, nextCursor: 'sku-00900' };
    });
    assert.deepEqual(mock.signals, []);
    assert.deepEqual(mock.heartbeats, []);
    assert.equal(result.nextCursor, 'sku-00900', 'not enqueued: the result cursor is kept, as in Go');
  });

  test('a second call, or a concurrent one, sends nothing more', async () => {
    const { mock } = await runPage(pageInput(), async (page) => {
      await Promise.all([page.enqueueNext('a', 'b'), page.enqueueNext('c')]);
      await page.enqueueNext('d');
      return done;
    });
    assert.deepEqual(mock.bodies.map((b) => ('cursors' in b ? b.cursors : b.cursor)), [['a', 'b']]);
  });

  test('a retry of an attempt that enqueued sends nothing and drops the result cursor', async () => {
    const mock = new MockPage({ attempt: 2, heartbeatDetails: { enqueuedNext: true } });
    const { result } = await runPage(
      pageInput(),
      async (page) => {
        await page.enqueueNext('sku-00800');
        page.heartbeat();
        return { itemsProcessed: 3, nextCursor: 'sku-00800' };
      },
      mock,
    );
    assert.deepEqual(mock.signals, []);
    assert.deepEqual(mock.heartbeats, [{ enqueuedNext: true }], 'heartbeat keeps the restored marker');
    assert.deepEqual(result, { itemsProcessed: 3, itemsFailed: 0 });
  });

  test('unreadable heartbeat details are logged and the page signals', async () => {
    const mock = new MockPage({ attempt: 2, heartbeatDetails: 42 });
    await runPage(
      pageInput(),
      async (page) => {
        await page.enqueueNext('sku-00800');
        return done;
      },
      mock,
    );
    assert.equal(mock.signals.length, 1);
    assert.ok(mock.logs.some((e) => e.message.includes('unreadable heartbeat details')));
  });

  test('the cursors are cut to the longest prefix within MAX_ENQUEUE_BYTES', async () => {
    const big = Array.from({ length: 70 }, (_, i) => String(i).padStart(MAX_CURSOR_BYTES, 'x'));
    const { mock } = await runPage(pageInput({ lookahead: 100 }), async (page) => {
      await page.enqueueNext(...big);
      return done;
    });
    const body = mock.bodies[0];
    assert.ok('cursors' in body);
    assert.equal(body.cursors.length, MAX_ENQUEUE_BYTES / MAX_CURSOR_BYTES);
    assert.deepEqual(body.cursors, big.slice(0, 64));
  });

  test('a cursor over MAX_CURSOR_BYTES in UTF-8 fails the page for good and sends nothing', async () => {
    // 2049 characters, 4098 bytes.
    const wide = 'é'.repeat(2049);
    const mock = new MockPage();
    const err = await thrown(() =>
      runPage(
        pageInput(),
        async (page) => {
          await page.enqueueNext('sku-00800', wide);
          return done;
        },
        mock,
      ),
    );
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'CursorTooLarge');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /cursor of 4098 bytes/);
    assert.deepEqual(mock.signals, []);
    // Exactly the limit is fine.
    const ok = await runPage(pageInput(), async (page) => {
      await page.enqueueNext('é'.repeat(2048));
      return done;
    });
    assert.equal(ok.mock.signals.length, 1);
  });

  test('no cursor fails the page for good', async () => {
    const err = await thrown(() =>
      runPage(pageInput(), async (page) => {
        await page.enqueueNext();
        return done;
      }),
    );
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, ErrorType.InvalidPageInput);
    assert.equal(err.nonRetryable, true);
  });

  test('a job without a workflow ID fails the page for good', async () => {
    const input = pageInput();
    const err = await thrown(() =>
      runPage({ ...input, job: { ...input.job, workflowId: '' } }, async (page) => {
        await page.enqueueNext('x');
        return done;
      }),
    );
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, ErrorType.InvalidPageInput);
  });

  test('a signal that fails fails the attempt, retryably, and records no marker', async () => {
    const mock = new MockPage({ signalError: new Error('connection refused') });
    const err = await thrown(() =>
      runPage(
        pageInput(),
        async (page) => {
          await page.enqueueNext('sku-00800');
          return done;
        },
        mock,
      ),
    );
    assert.ok(err instanceof Error && !(err instanceof ApplicationFailure));
    assert.match(err.message, /enqueue the 1 page\(s\) after page 7 of workflow "batchjob\/shop\/.*": connection refused/);
    assert.deepEqual(mock.heartbeats, []);
  });
});

describe('item failures and the result', () => {
  test('a page with item failures returns page-result.json', async () => {
    const { result } = await runPage(pageInput(), (page) => {
      page.failItem('sku-00712', 'InvalidRecord', 'price is negative');
      page.failItemSensitive('sku-00745', 'Rejected', 'card 4111 1111 1111 1111 declined');
      return { itemsProcessed: 97 };
    });
    // page-result.json says itemsFailed 3 with two described, as a page past
    // the 100-item limit would; a page reports the count it saw.
    assert.deepEqual(result, { ...fixture<PageResult>('page-result.json'), itemsFailed: 2 });
  });

  test('a page that cannot signal returns page-result-next-cursor.json', async () => {
    const { result } = await runPage(pageInput(), () => ({ itemsProcessed: 100, nextCursor: 'sku-00800' }));
    assert.equal(JSON.stringify(result), JSON.stringify(fixture('page-result-next-cursor.json')));
  });

  test('a result cursor over the limit fails the page for good', async () => {
    const err = await thrown(() => runPage(pageInput(), () => ({ itemsProcessed: 1, nextCursor: 'x'.repeat(4097) })));
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'CursorTooLarge');
  });

  test('every failure is counted, the first 100 described, messages cut to 512 bytes on a character boundary', async () => {
    const { result } = await runPage(pageInput(), (page) => {
      // 1 + 2 * 300 bytes: the cut at 512 falls inside an "é".
      page.failItem('first', 'Long', 'a' + 'é'.repeat(300));
      for (let i = 1; i < 150; i++) page.failItem(`item-${i}`, 'Bad', '');
      return { itemsProcessed: 0 };
    });
    assert.equal(result.itemsFailed, 150);
    assert.equal(result.failedItems?.length, 100);
    const first = result.failedItems![0];
    assert.equal(first.message, 'a' + 'é'.repeat(255));
    assert.equal(Buffer.byteLength(first.message!), 511);
    assert.deepEqual(result.failedItems![1], { item: 'item-1', type: 'Bad' }, 'an empty message is left out');
  });

  test('a processor that returns no count fails the attempt', async () => {
    const err = await thrown(() => runPage(pageInput(), () => undefined as unknown as Result));
    assert.ok(err instanceof TypeError);
    assert.match(err.message, /itemsProcessed/);
  });
});

describe('heartbeat and cancellation', () => {
  test('heartbeat records the marker as it stands, as the only detail', async () => {
    const { mock } = await runPage(pageInput(), async (page) => {
      page.heartbeat();
      await page.enqueueNext('sku-00800');
      page.heartbeat();
      return done;
    });
    assert.deepEqual(mock.heartbeats, [{ enqueuedNext: false }, { enqueuedNext: true }, { enqueuedNext: true }]);
  });

  test('cancellation reaches the page through its AbortSignal', async () => {
    const mock = new MockPage();
    const err = await thrown(() =>
      runPage(
        pageInput(),
        async (page) => {
          setTimeout(() => mock.env.cancel(), 10);
          await new Promise((_, reject) =>
            page.cancellationSignal.addEventListener('abort', () => reject(page.cancellationSignal.reason)),
          );
          return done;
        },
        mock,
      ),
    );
    assert.ok(err instanceof CancelledFailure);
  });
});
