// The RecordFailures failure handler, ported from the Go example worker
// (internal/examples/failure_handler.go): same name, same log records, same
// JSON lines.

import { encodeFailureReport, encodeJobRef, type FailureBatch } from './contract';
import { writeLogLine } from './log';
import { defineFailureHandler, type FailureHandler } from './processor';
import { appendFile } from './synthetic';

/** Activity type name of the failure handler: the spec.failurePolicy.handler that selects it. */
export const NAME_RECORD_FAILURES = 'RecordFailures';

/**
 * The environment variable that, when set, makes RecordFailures append every
 * failure to that file as a JSON line.
 */
export const ENV_FAILURES_FILE = 'EXAMPLE_FAILURES_FILE';

/**
 * The RecordFailures failure handler: it logs every failure it receives and,
 * when file is set, appends it there as a JSON line, the failure's fields plus
 * the job, so that tests and demos can see exactly what the orchestrator
 * reported. The orchestrator retries a handler that fails, so a batch may be
 * recorded more than once.
 */
export function recordFailures(file = process.env[ENV_FAILURES_FILE] ?? ''): FailureHandler {
  return defineFailureHandler(NAME_RECORD_FAILURES, async (batch) => {
    const job = `${batch.job.namespace}/${batch.job.name}`;
    for (const f of batch.failures) {
      writeLogLine('INFO', 'Batch failure', {
        job,
        workflowId: batch.job.workflowId,
        page: f.page,
        cursor: f.cursor ?? '',
        item: f.item ?? '',
        type: f.type,
        message: f.message ?? '',
        time: f.time,
      });
    }
    const lines = recordedFailureLines(batch);
    if (file === '' || lines === '') return;
    // One append per batch keeps the batch's lines together when several
    // workers record to the same file.
    try {
      await appendFile(file, lines);
    } catch (err) {
      throw new Error(`record failures to ${file}: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** The lines RecordFailures appends for a batch, one JSON object per failure, as Go's json.Encoder writes them. */
export function recordedFailureLines(batch: FailureBatch): string {
  return batch.failures
    .map((f) => `${goJSON({ job: encodeJobRef(batch.job), ...encodeFailureReport(f) })}\n`)
    .join('');
}

/** JSON.stringify with the escapes Go's encoding/json adds: <, >, & and the line separators. */
function goJSON(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
