import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout (pino). A daemon's first `listening` line carries its URL, which is how
 * `dfs up` and the test harness learn an ephemeral port.
 */
export function createLogger(name: string, level = process.env.DFS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid, name } });
}

/** A logger that drops everything (library use, tests of pure logic). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * The readiness line (`listening` with a URL, `mounted` with a folder), always written whatever the log
 * level, in the same JSON shape as the logs: `dfs up` and the test harness wait for it.
 */
export function announce(log: Logger, msg: 'listening' | 'mounted', fields: Record<string, unknown>): void {
  if (log.isLevelEnabled('info')) log.info(fields, msg);
  else process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, ...fields, msg })}\n`);
}
