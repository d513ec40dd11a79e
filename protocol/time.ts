/**
 * Times travel as decimal strings of nanoseconds since the epoch: exact (a JS number is not, past 2^53)
 * and what stat(2) reports.
 */
export type NsTime = string;

const epochOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** The current time in nanoseconds, with sub-millisecond resolution. */
export function nowNs(): NsTime {
  return (epochOffsetNs + process.hrtime.bigint()).toString();
}

export function msToNs(ms: number): NsTime {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1_000_000))).toString();
}

export function nsToMs(ns: NsTime): number {
  const big = BigInt(ns);
  return Number(big / 1_000_000n) + Number(big % 1_000_000n) / 1_000_000;
}

export function nsToDate(ns: NsTime): Date {
  return new Date(nsToMs(ns));
}

/** Seconds and nanoseconds, as `utimes`-style callers and timespecs want them. */
export function nsToTimespec(ns: NsTime): { sec: number; nsec: number } {
  const big = BigInt(ns);
  return { sec: Number(big / 1_000_000_000n), nsec: Number(big % 1_000_000_000n) };
}

export const NS_TIME_PATTERN = /^-?\d{1,20}$/;
