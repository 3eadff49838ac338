// Byte lengths and durations as the Go package measures them.

/** The length of s in UTF-8 bytes: how Go's len(string) and the orchestrator count. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Cuts s to at most n UTF-8 bytes without splitting a character, so that a
 * truncated message is still valid text in status and logs.
 */
export function truncateUTF8(s: string, n: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= n) return s;
  // Back off over continuation bytes (10xxxxxx) to the start of a character.
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
  return b.subarray(0, n).toString('utf8');
}

const unitNanos: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const maxNanos = 2 ** 63 - 1;

/**
 * Parses a duration as Go's time.ParseDuration does ("30s", "1m30s", "10m0s",
 * "1.5h", "-2ms", "0") and returns it in milliseconds; null when it is not
 * one.
 */
export function parseGoDuration(s: string): number | null {
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return null;
  let nanos = 0;
  const part = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== '') {
    const m = part.exec(rest);
    // A number needs digits on one side of the point, and a unit.
    if (!m || (m[1] === '' && (m[2] === undefined || m[2] === ''))) return null;
    const value = Number(`${m[1] || '0'}.${m[2] || '0'}`);
    nanos += value * unitNanos[m[3]];
    if (nanos > maxNanos) return null;
    rest = rest.slice(m[0].length);
  }
  return (sign * nanos) / 1e6;
}

/** Formats milliseconds as Go's time.Duration.String does for whole and fractional seconds. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out = '';
  if (rest < 1000) {
    out = `${+rest.toFixed(6)}ms`;
  } else {
    const h = Math.floor(rest / 3_600_000);
    rest -= h * 3_600_000;
    const m = Math.floor(rest / 60_000);
    rest -= m * 60_000;
    const s = +(rest / 1000).toFixed(9);
    if (h > 0) out += `${h}h`;
    if (h > 0 || m > 0) out += `${m}m`;
    out += `${s}s`;
  }
  return neg ? `-${out}` : out;
}
