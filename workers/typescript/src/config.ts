import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { TLSConfig as SdkTLSConfig } from '@temporalio/worker';
import { formatGoDuration, parseGoDuration } from './text';

/**
 * Environment variables a worker reads its configuration from: the same as
 * the Go package's. The operator injects them into the worker pods it runs;
 * set them yourself to run a worker elsewhere.
 */
export const Env = {
  Address: 'TEMPORAL_ADDRESS',
  Namespace: 'TEMPORAL_NAMESPACE',
  TaskQueue: 'TEMPORAL_TASK_QUEUE',
  PagesPerPod: 'TEMPORAL_BATCH_PAGES_PER_POD',
  Job: 'TEMPORAL_BATCH_JOB',
  TLSCertFile: 'TEMPORAL_TLS_CERT_FILE',
  TLSKeyFile: 'TEMPORAL_TLS_KEY_FILE',
  TLSCAFile: 'TEMPORAL_TLS_CA_FILE',
  TLSServerName: 'TEMPORAL_TLS_SERVER_NAME',
  APIKey: 'TEMPORAL_API_KEY',
  GracePeriod: 'TEMPORAL_BATCH_GRACE_PERIOD',
  /**
   * When true, a TLS file variable that names an absent file counts as unset
   * (logged) rather than an error. The operator sets it with the files of its
   * credentials Secret, which holds only some of them.
   */
  TLSFilesOptional: 'TEMPORAL_TLS_FILES_OPTIONAL',
} as const;

/** Defaults applied to settings that are not set. */
export const Defaults = {
  address: 'localhost:7233',
  namespace: 'default',
  pagesPerPod: 1,
  gracePeriodMs: 30_000,
} as const;

/** The files of a worker's TLS material. */
export interface TLSFiles {
  /** Client certificate for mutual TLS; both it and keyFile or neither. */
  certFile?: string;
  keyFile?: string;
  /** PEM certificates that sign the server's certificate; unset means the system roots. */
  caFile?: string;
  /** Overrides the name checked in the server's certificate. */
  serverName?: string;
}

/** How a worker connects to Temporal and how much work it takes on. */
export interface Config {
  /** The Temporal frontend host:port. */
  address: string;
  /** The Temporal namespace of the job's orchestrator. */
  namespace: string;
  /** The job's spec.taskQueue, where the pages are scheduled. */
  taskQueue: string;
  /** Pages this process runs at once (spec.worker.pagesPerPod). */
  pagesPerPod: number;
  /** The BatchJob as <namespace>/<name>; only labels logs and the worker identity. */
  job: string;
  /** TLS material; none means plaintext, unless apiKey is set, which turns TLS on with the system roots. */
  tls: TLSFiles;
  /** Authenticates to Temporal Cloud or another server that accepts API keys. Never logged. */
  apiKey?: string;
  /**
   * How long pages in flight may run on after the worker is asked to stop,
   * before they are cancelled, in milliseconds.
   */
  gracePeriodMs: number;
}

/** An invalid configuration; its message lists every invalid variable with how to fix it, one a line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** Where configFromEnv logs a TLS file it treats as not configured. */
export type InfoLogger = (message: string, attrs: Record<string, unknown>) => void;

/**
 * Reads the worker configuration from the environment variables in Env. An
 * empty variable counts as unset. It throws a ConfigError listing every
 * invalid variable. With TEMPORAL_TLS_FILES_OPTIONAL=true, a TLS file that
 * does not exist counts as not configured, and is logged; the files are
 * otherwise read when the worker connects.
 */
export function configFromEnv(
  env: Record<string, string | undefined> = process.env,
  logInfo: InfoLogger = () => undefined,
): Config {
  const get = (name: string): string => (env[name] ?? '').trim();
  const cfg: Config = {
    address: get(Env.Address),
    namespace: get(Env.Namespace),
    taskQueue: get(Env.TaskQueue),
    pagesPerPod: 0,
    job: get(Env.Job),
    tls: dropEmpty({
      certFile: get(Env.TLSCertFile),
      keyFile: get(Env.TLSKeyFile),
      caFile: get(Env.TLSCAFile),
      serverName: get(Env.TLSServerName),
    }),
    apiKey: get(Env.APIKey) || undefined,
    gracePeriodMs: 0,
  };
  const problems: string[] = [];
  if (cfg.taskQueue === '') {
    problems.push(`${Env.TaskQueue} is not set: set it to the task queue the job schedules pages on (spec.taskQueue)`);
  }
  const pages = get(Env.PagesPerPod);
  if (pages !== '') {
    const n = /^[+-]?\d+$/.test(pages) ? Number(pages) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) {
      problems.push(
        `${Env.PagesPerPod}=${quote(pages)} is not a whole number of at least 1: set it to the pages one worker runs at once (spec.worker.pagesPerPod), or unset it for ${Defaults.pagesPerPod}`,
      );
    } else {
      cfg.pagesPerPod = n;
    }
  }
  const grace = get(Env.GracePeriod);
  if (grace !== '') {
    const ms = parseGoDuration(grace);
    if (ms === null || ms <= 0) {
      problems.push(
        `${Env.GracePeriod}=${quote(grace)} is not a positive Go duration: use a value such as 30s or 2m, or unset it for ${formatGoDuration(Defaults.gracePeriodMs)}`,
      );
    } else {
      cfg.gracePeriodMs = ms;
    }
  }
  let absent: string[] = [];
  const optional = get(Env.TLSFilesOptional);
  if (optional !== '') {
    const b = parseGoBool(optional);
    if (b === null) {
      problems.push(
        `${Env.TLSFilesOptional}=${quote(optional)} is not true or false: set it to true to go on without the TLS files that do not exist`,
      );
    } else if (b) {
      const dropped = dropAbsentFiles(cfg.tls, logInfo);
      absent = dropped.absent;
      problems.push(...dropped.problems);
    }
  }
  if (!cfg.tls.certFile !== !cfg.tls.keyFile) {
    if (absent.length > 0) {
      let [have, haveFile, missing, missingFile]: string[] = [Env.TLSCertFile, cfg.tls.certFile ?? '', Env.TLSKeyFile, get(Env.TLSKeyFile)];
      if (!cfg.tls.certFile) {
        [have, haveFile, missing, missingFile] = [Env.TLSKeyFile, cfg.tls.keyFile ?? '', Env.TLSCertFile, get(Env.TLSCertFile)];
      }
      problems.push(
        `${have}=${quote(haveFile)} exists but ${missing}=${quote(missingFile)} does not: mutual TLS needs both the certificate and its key (tls.crt and tls.key in the credentials Secret), or neither`,
      );
    } else {
      problems.push(`${Env.TLSCertFile} and ${Env.TLSKeyFile} must be set together: set both for mutual TLS, or neither`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return withDefaults(cfg);
}

/** Fills in the settings left unset, so that a Config built by hand behaves like one read from the environment. */
export function withDefaults(c: Partial<Config> & Pick<Config, 'taskQueue'>): Config {
  return {
    address: c.address || Defaults.address,
    namespace: c.namespace || Defaults.namespace,
    taskQueue: c.taskQueue,
    pagesPerPod: c.pagesPerPod && c.pagesPerPod >= 1 ? c.pagesPerPod : Defaults.pagesPerPod,
    job: c.job ?? '',
    tls: c.tls ?? {},
    ...(c.apiKey ? { apiKey: c.apiKey } : {}),
    gracePeriodMs: c.gracePeriodMs || Defaults.gracePeriodMs,
  };
}

/** The Config as it may be logged: without the API key. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    address: c.address,
    namespace: c.namespace,
    taskQueue: c.taskQueue,
    pagesPerPod: c.pagesPerPod,
    job: c.job,
    tls: tlsEnabled(c.tls) || !!c.apiKey,
    apiKey: !!c.apiKey,
    gracePeriod: formatGoDuration(c.gracePeriodMs),
  };
}

/**
 * Names the worker in Temporal's UI and pending-activity details: the pod name
 * (the hostname) and the job it works for.
 */
export function identity(c: Config): string {
  const id = `${process.pid}@${hostname()}`;
  return c.job ? `${id}@${c.job}` : id;
}

/**
 * The TLS option of NativeConnection.connect: the files read and checked, with
 * errors that name the variable and file at fault; true for an API key without
 * TLS material, so that the key never travels in plaintext; undefined for
 * plaintext.
 */
export function connectionTLS(c: Config): SdkTLSConfig | true | undefined {
  const t = c.tls;
  if (!tlsEnabled(t)) return c.apiKey ? true : undefined;
  const out: SdkTLSConfig = {};
  if (t.serverName) out.serverNameOverride = t.serverName;
  if (t.caFile) {
    const ca = readVariableFile(Env.TLSCAFile, t.caFile);
    if (!hasPEMBlock(ca, (type) => type === 'CERTIFICATE')) {
      throw new ConfigError([
        `${Env.TLSCAFile}=${quote(t.caFile)} holds no PEM certificate: point it at the CA bundle that signs the server's certificate`,
      ]);
    }
    out.serverRootCACertificate = ca;
  }
  if (t.certFile || t.keyFile) {
    const crt = readVariableFile(Env.TLSCertFile, t.certFile ?? '');
    const key = readVariableFile(Env.TLSKeyFile, t.keyFile ?? '');
    if (!hasPEMBlock(crt, (type) => type === 'CERTIFICATE')) {
      throw new ConfigError([
        `${Env.TLSCertFile}=${quote(t.certFile ?? '')} holds no PEM certificate: point it at the client certificate (tls.crt)`,
      ]);
    }
    if (!hasPEMBlock(key, (type) => type.endsWith('PRIVATE KEY'))) {
      throw new ConfigError([
        `${Env.TLSKeyFile}=${quote(t.keyFile ?? '')} holds no PEM private key: point it at the client certificate's key (tls.key)`,
      ]);
    }
    let matches = false;
    let why = 'the key is not the certificate\'s';
    try {
      matches = new X509Certificate(crt).checkPrivateKey(createPrivateKey(key));
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    if (!matches) {
      throw new ConfigError([
        `client certificate ${Env.TLSCertFile}=${quote(t.certFile ?? '')} and key ${Env.TLSKeyFile}=${quote(t.keyFile ?? '')} do not make a key pair: ${why}`,
      ]);
    }
    out.clientCertPair = { crt, key };
  }
  return out;
}

function tlsEnabled(t: TLSFiles): boolean {
  return !!(t.certFile || t.keyFile || t.caFile || t.serverName);
}

function dropEmpty(t: TLSFiles): TLSFiles {
  const out: TLSFiles = {};
  for (const [k, v] of Object.entries(t) as [keyof TLSFiles, string | undefined][]) {
    if (v) out[k] = v;
  }
  return out;
}

/** Unsets the TLS files that do not exist, logging each, and returns their variables. */
function dropAbsentFiles(t: TLSFiles, logInfo: InfoLogger): { absent: string[]; problems: string[] } {
  const files: [string, keyof TLSFiles, string][] = [
    [Env.TLSCertFile, 'certFile', 'no client certificate, so no mutual TLS'],
    [Env.TLSKeyFile, 'keyFile', 'no client key, so no mutual TLS'],
    [Env.TLSCAFile, 'caFile', "the system's roots verify the server's certificate"],
  ];
  const absent: string[] = [];
  const problems: string[] = [];
  for (const [env, key, meaning] of files) {
    const file = t[key];
    if (!file) continue;
    try {
      statSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        logInfo('TLS file not found: not configured', { variable: env, file, meaning });
        absent.push(env);
        delete t[key];
      } else {
        problems.push(`${env}=${quote(file)} cannot be checked: ${(err as Error).message}`);
      }
    }
  }
  return { absent, problems };
}

function readVariableFile(env: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError([`read ${env}=${quote(file)}: ${(err as Error).message}`]);
  }
}

function hasPEMBlock(data: Buffer, wanted: (type: string) => boolean): boolean {
  for (const m of data.toString('latin1').matchAll(/-----BEGIN ([^-\r\n]+)-----/g)) {
    if (wanted(m[1])) return true;
  }
  return false;
}

/** Parses a boolean as Go's strconv.ParseBool does; null when it is not one. */
function parseGoBool(s: string): boolean | null {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return null;
}

/** Quotes a value as Go's %q does for printable text. */
function quote(s: string): string {
  return JSON.stringify(s);
}
