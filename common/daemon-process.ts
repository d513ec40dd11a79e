import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI entry, for starting daemons as child processes of `dfs up` and of tests. */
export const CLI_ENTRY = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  /** The URL from a daemon's `listening` log line, or the folder from a mount's `mounted` line. */
  url: string;
  /** Fields of the `listening` line (id, dataDir …). */
  ready: Record<string, unknown>;
  /** The last log lines (all of them are in the log file, when there is one). */
  lines: string[];
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export interface SpawnOptions {
  args: string[];
  /** A script to run instead of the dfs CLI (a test's helper process that logs `listening` the same way). */
  script?: string;
  env?: NodeJS.ProcessEnv;
  /** Append the daemon's output here instead of keeping it in memory. */
  logFile?: string;
  /** How long to wait for the `listening` line. */
  startTimeoutMs?: number;
  /** Flags for node itself (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
}

/**
 * GLIBC_TUNABLES with glibc.malloc.hugetlb=1 added (unless the caller set it): malloc then asks for
 * transparent huge pages (glibc 2.35 and later; older ones ignore the name, and it does nothing where THP
 * is off). A chunk buffer is 4 MiB: on 4 KiB pages every fresh one is 1,024 page faults, and on a virtual
 * machine those cost more than the copy into it (measured here, 128 fresh 4 MiB buffers: 131,000 faults
 * and 1.4–1.8 s; with huge pages 36,000 and 0.6 s). glibc reads the variable only when a process starts,
 * so whoever starts the daemons sets it: spawnDaemon, and deploy/dfs.env for the systemd units.
 */
export function withHugePages(tunables: string | undefined): string {
  const set = (tunables ?? '').split(':').filter((t) => t !== '');
  if (set.some((t) => t.startsWith('glibc.malloc.hugetlb='))) return set.join(':');
  return [...set, 'glibc.malloc.hugetlb=1'].join(':');
}

/** Most log lines kept in memory per daemon (the tail is what a failing test wants). */
const KEPT_LINES = 2_000;

/**
 * Starts `dfs <args>` (or `script <args>`) as a child process and resolves once it logs `listening` with its URL (ports may be
 * ephemeral) or `mounted` with its folder. Rejects, with the output so far, if it exits or stays silent past the timeout.
 */
export function spawnDaemon(options: SpawnOptions): Promise<DaemonProcess> {
  const env = { ...process.env, ...options.env };
  const what = options.script ? basename(options.script) : `dfs ${options.args[0]}`;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script ?? CLI_ENTRY, ...options.args], {
    env: { ...env, GLIBC_TUNABLES: withHugePages(env.GLIBC_TUNABLES) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const log: WriteStream | undefined = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  const keep = (line: string): void => {
    log?.write(`${line}\n`);
    lines.push(line);
    if (lines.length > KEPT_LINES) lines.shift();
  };
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  void exited.then(() => log?.end());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start in time:\n${lines.slice(-20).join('\n')}`));
    }, options.startTimeoutMs ?? 30_000);
    let started = false;
    createInterface({ input: child.stderr! }).on('line', keep);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      if (started) return;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      // Daemons log `listening` with their URL; a mount logs `mounted` with its folder.
      const url = parsed.msg === 'listening' ? parsed.url : parsed.msg === 'mounted' ? parsed.mountpoint : undefined;
      if (typeof url !== 'string') return;
      started = true;
      clearTimeout(timer);
      resolve({
        child,
        pid: child.pid!,
        url,
        ready: parsed,
        lines,
        exited,
        kill: (signal = 'SIGKILL') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
        stop: async (graceMs = 5_000) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(killer);
        },
      });
    });
    void exited.then((code) => {
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it started:\n${lines.slice(-20).join('\n')}`));
    });
  });
}
