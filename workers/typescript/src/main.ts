// The TypeScript example worker: the synthetic processor and the
// RecordFailures failure handler, configured by the TEMPORAL_* environment
// variables the operator injects, as the Go example-worker is. Logs are JSON
// lines on standard error.
//
// Exit codes: 0 after a requested stop (SIGTERM, SIGINT), 2 for an invalid
// configuration, 1 when the worker could not start or failed.

import { ConfigError } from './config';
import { writeLogLine } from './log';
import { recordFailures } from './record-failures';
import { runWorker } from './run';
import { syntheticProcessor } from './synthetic';

async function main(): Promise<number> {
  try {
    // EXAMPLE_FAILURES_FILE is read now, not when failures arrive.
    await runWorker([syntheticProcessor], [recordFailures()]);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      writeLogLine('ERROR', 'Invalid worker configuration', { error: err.message });
      return 2;
    }
    writeLogLine('ERROR', 'Worker failed', { error: err instanceof Error ? err.message : String(err) });
    return 1;
  }
}

main().then((code) => process.exit(code));
