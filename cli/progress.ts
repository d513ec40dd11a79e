import cliProgress from 'cli-progress';
import type { TransferProgress } from '../client/dfs-client.js';
import { formatBytes } from './output.js';

/** Files smaller than this finish before a bar is worth drawing. */
const BAR_THRESHOLD = 8 * 1024 * 1024;

/**
 * A progress bar on standard error for a large transfer, when standard error is a terminal; otherwise
 * nothing (scripts and pipes get clean output).
 */
export function progressBar(label: string, total: number): { update: TransferProgress; stop: () => void } {
  if (!process.stderr.isTTY || total < BAR_THRESHOLD) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% {done}/{size} {speed}`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(total, 0, { done: formatBytes(0), size: formatBytes(total), speed: '' });
  return {
    update: (done) => {
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      bar.update(done, { done: formatBytes(done), speed: `${formatBytes(done / seconds)}/s` });
    },
    stop: () => bar.stop(),
  };
}
