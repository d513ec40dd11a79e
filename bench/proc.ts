import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

/**
 * Process helpers of the benchmark harness: run a command, start a long-lived child and wait for its
 * readiness, read a process's peak memory, and free a FUSE mount.
 */

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (never throws; a timeout or a signal is a non-zero code). */
export function run(cmd: string, args: string[], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...options.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr || (err && code !== 0 ? err.message : '')) });
      },
    );
  });
}

/** Runs a program and throws with its output when it fails. */
export async function mustRun(cmd: string, args: string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<string> {
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
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a long-lived program with its output appended to `logFile`, and resolves once `ready` holds for
 * one of its output lines (or at once without `ready`). Rejects with its last output if it exits first or
 * stays unready past the timeout.
 */
export function startChild(
  cmd: string,
  args: string[],
  options: { logFile: string; ready?: (line: string) => boolean; onLine?: (line: string) => void; timeoutMs?: number; env?: NodeJS.ProcessEnv },
): Promise<Child> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  void exited.then(() => log.end());
  const handle: Child = {
    child,
    pid: child.pid ?? -1,
    lines,
    exited,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
  return new Promise((resolve, reject) => {
    let ready = !options.ready;
    const onLine = (line: string): void => {
      log.write(`${line}\n`);
      lines.push(line);
      if (lines.length > 500) lines.shift();
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
      reject(new Error(`${cmd} ${args.join(' ')} was not ready in time:\n${lines.slice(-20).join('\n')}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')} exited with ${code} before it was ready:\n${lines.slice(-20).join('\n')}`));
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

function mountinfoEscape(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The mountinfo line of a mount point, if mounted (reading it never touches the mount). */
async function mountLine(dir: string): Promise<string[] | undefined> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const escaped = mountinfoEscape(dir);
  return info
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[4] === escaped);
}

export async function isMounted(dir: string): Promise<boolean> {
  return (await mountLine(dir)) !== undefined;
}

/** Polls until `dir` is a mount point. */
export async function waitMounted(dir: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isMounted(dir))) {
    if (Date.now() > deadline) throw new Error(`${dir} did not get mounted within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Frees a FUSE mount however it can: umount, then lazily, then by aborting its own kernel connection. */
export async function forceUnmount(dir: string): Promise<void> {
  const line = await mountLine(dir);
  if (!line) return;
  const minor = line[2]?.split(':')[1];
  await run('fusermount', ['-u', dir], { timeoutMs: 10_000 });
  if (!(await isMounted(dir))) return;
  await run('umount', ['-l', dir], { timeoutMs: 10_000 });
  if (minor !== undefined) await writeFile(`/sys/fs/fuse/connections/${minor}/abort`, '1').catch(() => undefined);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
