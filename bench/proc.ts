import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { isMounted, mountLine } from '../mount/mountinfo.js';

/**
 * Process helpers of the benchmark harness and of the tests' multi-host harness (test/cluster/): run a
 * command, start a long-lived child and wait for its readiness, read a process's peak memory, and free a
 * FUSE mount.
 */

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  cwd?: string;
  /** Added to this process's environment, or with `cleanEnv` the whole environment (as systemd gives a unit). */
  env?: NodeJS.ProcessEnv;
  cleanEnv?: boolean;
  /** Written to its stdin. */
  input?: string;
}

function environment(options: { env?: NodeJS.ProcessEnv; cleanEnv?: boolean }): NodeJS.ProcessEnv {
  return options.cleanEnv ? { ...options.env } : { ...process.env, ...options.env };
}

/** Runs a program to completion (never throws; a timeout or a signal is a non-zero code). */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: environment(options) },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr || (err && code !== 0 ? err.message : '')) });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** Runs a program and throws with its output when it fails. */
export async function mustRun(cmd: string, args: string[], options: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
  return r.stdout;
}

export interface Child {
  child: ChildProcess;
  pid: number;
  /** The last lines of its output (all of them are in its log file). */
  lines: string[];
  exited: Promise<number | null>;
  running(): boolean;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildOptions {
  logFile: string;
  /** Ready once this holds for a line of its output (at once without it). */
  ready?: (line: string) => boolean;
  onLine?: (line: string) => void;
  /** Whether a line goes to the log and the kept lines (default: every line). */
  keep?: (line: string) => boolean;
  /** How many last lines stay in memory (500). */
  keptLines?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cleanEnv?: boolean;
  /** A pipe to its stdin (`child.stdin`) instead of /dev/null. */
  stdin?: boolean;
  /** Called as soon as it is spawned, before it is ready (to register it for a last-resort kill). */
  onSpawn?: (child: Child) => void;
  /** What it is, for errors (default: its command line). */
  label?: string;
}

/**
 * Starts a long-lived program with its output appended to `logFile`, and resolves once `ready` holds for
 * one of its output lines (or at once without `ready`). Rejects with its last output if it exits first or
 * stays unready past the timeout.
 */
export function startChild(cmd: string, args: string[], options: ChildOptions): Promise<Child> {
  const child = spawn(cmd, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: environment(options) });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  log.on('error', () => undefined);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  void exited.then(() => log.end());
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const handle: Child = {
    child,
    pid: child.pid ?? -1,
    lines,
    exited,
    running,
    kill: (signal = 'SIGKILL') => {
      if (running()) child.kill(signal);
    },
    stop: async (graceMs = 10_000) => {
      if (!running()) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
  options.onSpawn?.(handle);
  const label = options.label ?? `${cmd} ${args.join(' ')}`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const kept = options.keptLines ?? 500;
  return new Promise((resolve, reject) => {
    let ready = !options.ready;
    const onLine = (line: string): void => {
      if (options.keep?.(line) ?? true) {
        log.write(`${line}\n`);
        lines.push(line);
        if (lines.length > kept) lines.shift();
      }
      options.onLine?.(line);
      if (!ready && options.ready!(line)) {
        ready = true;
        clearTimeout(timer);
        resolve(handle);
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    const timer = setTimeout(() => {
      if (ready) return;
      child.kill('SIGKILL');
      reject(new Error(`${label} was not ready within ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code} before it was ready:\n${lines.slice(-20).join('\n')}`));
    });
    if (ready) {
      clearTimeout(timer);
      resolve(handle);
    }
  });
}

/** Peak resident memory of a live process in bytes (VmHWM), or undefined once it is gone. */
export async function peakRss(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Polls until `dir` is a mount point. */
export async function waitMounted(dir: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isMounted(dir))) {
    if (Date.now() > deadline) throw new Error(`${dir} did not get mounted within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Frees a FUSE mount however it can: fusermount -u, then lazily (-uz), then by aborting its own kernel
 * connection (a hung mount), and at last umount -l.
 */
export async function forceUnmount(dir: string): Promise<void> {
  const line = await mountLine(dir);
  if (!line) return;
  const minor = line[2]?.split(':')[1];
  await run('fusermount', ['-u', dir], { timeoutMs: 10_000 });
  if (!(await isMounted(dir))) return;
  await run('fusermount', ['-uz', dir], { timeoutMs: 10_000 });
  // Only this mount's own connection is touched.
  if (minor !== undefined) await writeFile(`/sys/fs/fuse/connections/${minor}/abort`, '1').catch(() => undefined);
  if (await isMounted(dir)) await run('umount', ['-l', dir], { timeoutMs: 10_000 });
}

/** Whether a process exists (EPERM: it does, as another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
