import type { Logger } from '../common/log.js';

/**
 * Keeps a daemon in the foreground until SIGINT or SIGTERM, then closes it cleanly. A second signal
 * exits at once.
 */
export async function runUntilSignal(log: Logger, close: () => Promise<void>): Promise<void> {
  // A daemon outlives a bug in one background task: log it and keep serving.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) process.exit(1);
      stopping = true;
      log.info({ signal }, 'shutting down');
      close()
        .catch((err: unknown) => log.error({ err }, 'shutdown failed'))
        .finally(resolve);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}

/** Parses a byte count with an optional binary suffix: 512M, 10G, 1T. */
export function parseBytes(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text} (try 500M or 10G)`);
  const unit = (match[2] ?? 'B').toUpperCase()[0]!;
  const power = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit as 'B' | 'K' | 'M' | 'G' | 'T'];
  return Math.floor(Number(match[1]) * 1024 ** power);
}
