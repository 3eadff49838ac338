import { IllegalStateError } from '@temporalio/common';
import { GracefulShutdownPeriodExpiredError, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { configFromEnv, connectionTLS, describeConfig, identity, withDefaults, type Config } from './config';
import { jsonLogger, writeLogLine } from './log';
import { activities, type FailureHandler, type PageProcessor } from './processor';
import { formatGoDuration } from './text';

/** The signals that stop a worker: what Kubernetes sends, and Ctrl-C. */
const stopSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * How long after the grace period a worker whose cancelled pages do not end
 * gives up on them and exits: inside the 10 s the operator adds to the pod's
 * terminationGracePeriodSeconds, so that the worker exits before the kubelet
 * kills it.
 */
const forceMarginMs = 5_000;

/**
 * Connects to Temporal, registers the processors and failure handlers and runs
 * an activity-only worker on the configured task queue until the process
 * receives SIGTERM or SIGINT. It then stops polling and gives the pages in
 * flight the grace period to finish before cancelling them; a cancelled page
 * is retried elsewhere. A second signal during that wait ends the process at
 * once.
 *
 * config defaults to configFromEnv(). The promise resolves after a requested
 * stop and rejects when the worker could not start or failed.
 */
export async function runWorker(
  processors: readonly PageProcessor[],
  handlers: readonly FailureHandler[] = [],
  config?: Config,
): Promise<void> {
  const cfg = config ? withDefaults(config) : configFromEnv(process.env, (msg, attrs) => writeLogLine('INFO', msg, attrs));
  if (!cfg.taskQueue) {
    throw new Error('runWorker: config.taskQueue is empty: set it, or TEMPORAL_TASK_QUEUE when reading the environment');
  }
  const registered = activities([...processors, ...handlers]);
  installRuntime();
  const tls = connectionTLS(cfg);
  const log = (level: string, msg: string, attrs: Record<string, unknown> = {}) =>
    writeLogLine(level, msg, { job: cfg.job, taskQueue: cfg.taskQueue, ...attrs });

  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: cfg.address, tls, apiKey: cfg.apiKey });
  } catch (err) {
    throw new Error(`connect to Temporal at ${cfg.address} (namespace ${cfg.namespace}): ${messageOf(err)}`, { cause: err });
  }
  try {
    const worker = await Worker.create({
      connection,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      identity: identity(cfg),
      activities: registered,
      // No workflowsPath or workflowBundle: the worker polls for activities only.
      maxConcurrentActivityTaskExecutions: cfg.pagesPerPod,
      shutdownGraceTime: cfg.gracePeriodMs,
      shutdownForceTime: cfg.gracePeriodMs + forceMarginMs,
    });
    const onStop = () => {
      for (const s of stopSignals) process.off(s, onStop);
      log('INFO', 'Stopping worker; pages in flight may finish', { gracePeriod: formatGoDuration(cfg.gracePeriodMs) });
    };
    for (const s of stopSignals) process.on(s, onStop);
    log('INFO', 'Starting worker', { config: describeConfig(cfg), activities: Object.keys(registered) });
    try {
      await worker.run();
    } catch (err) {
      if (!(err instanceof GracefulShutdownPeriodExpiredError)) {
        throw new Error(`worker on task queue ${JSON.stringify(cfg.taskQueue)}: ${messageOf(err)}`, { cause: err });
      }
      // The pages were cancelled at the end of the grace period and did not
      // end; Temporal retries them elsewhere once their heartbeats stop.
      log('WARN', 'Pages did not end after they were cancelled; exiting without them', { error: messageOf(err) });
    } finally {
      for (const s of stopSignals) process.off(s, onStop);
    }
    log('INFO', 'Worker stopped');
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * Installs the SDK runtime with JSON logs and the stop signals. The runtime
 * stops the worker on the first signal and then removes its handlers, so a
 * second signal ends the process at once. A runtime the program installed
 * itself is kept.
 */
function installRuntime(): void {
  try {
    Runtime.install({ logger: jsonLogger(), shutdownSignals: stopSignals });
  } catch (err) {
    if (!(err instanceof IllegalStateError)) throw err;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
