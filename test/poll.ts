/** Waiting in tests: for a moment, or until something holds. */

import { sleep } from '../bench/proc.js';

export { sleep };

/**
 * Polls `probe` until `check` holds for what it returned, or fails with what it last saw (long server
 * lists shortened) and the last error the probe threw.
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (check(last)) return last;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const seen = JSON.stringify(last, (k, v: unknown) => (k === 'servers' && Array.isArray(v) && v.length > 8 ? `[${v.length}]` : v));
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last saw ${seen}${lastError ? ` (${String(lastError)})` : ''}`);
}
