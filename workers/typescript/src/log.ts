import { DefaultLogger, type LogEntry } from '@temporalio/worker';

/**
 * Logs are JSON lines on standard error, one object per record with time,
 * level, msg and the record's attributes, as the Go workers' slog JSON
 * handler writes them, so that one log pipeline reads both.
 */
export function writeLogLine(level: string, msg: string, attrs: Record<string, unknown> = {}, time = new Date()): void {
  process.stderr.write(`${JSON.stringify({ time: time.toISOString(), level, msg, ...plain(attrs) })}\n`);
}

/** The SDK's logger, writing the same JSON lines. */
export function jsonLogger(): DefaultLogger {
  return new DefaultLogger('INFO', (entry: LogEntry) => {
    const time = new Date(Number(entry.timestampNanos / 1_000_000n));
    // A page-processor worker polls for activities only, by design: the SDK's
    // warning about it would only alarm whoever reads the pod's logs.
    const level = entry.message.startsWith('No workflows registered') ? 'INFO' : entry.level;
    writeLogLine(level, entry.message, entry.meta ?? {}, time);
  });
}

/** Errors as their message (JSON.stringify writes an Error as {}). */
function plain(attrs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    out[k] = v instanceof Error ? v.message : typeof v === 'bigint' ? v.toString() : v;
  }
  return out;
}
