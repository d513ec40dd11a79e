import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * A long-running program started from an argv (`ip netns exec NS node … dfs.js storage-server …`): its
 * output goes to a log file and the last lines stay in memory; it is ready once a line says so. `ip netns
 * exec` and `nsenter` exec the program, so the pid is the daemon's own and kill -9 reaches it.
 */
export interface HostProcess {
  role: string;
  argv: string[];
  child: ChildProcess;
  pid: number;
  /** The parsed JSON line that made it ready, if it was a JSON line. */
  ready: Record<string, unknown>;
  lines: string[];
  exited: Promise<number | null>;
  running(): boolean;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Every process started and not yet exited: killed by the exit handler if a test never stopped it. */
export const liveProcesses = new Set<HostProcess>();

const KEPT_LINES = 2_000;

export interface StartOptions {
  role: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** Ready when this holds for a line (parsed as JSON when it is). Default: a dfs `listening` or `mounted` line. */
  ready?: (line: string, json: Record<string, unknown> | undefined) => boolean;
  onLine?: (line: string) => void;
  /** Whether to keep a line in memory and in the log (default: every line). */
  keep?: (line: string) => boolean;
  timeoutMs?: number;
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const dfsReady = (_line: string, json: Record<string, unknown> | undefined): boolean => json?.msg === 'listening' || json?.msg === 'mounted';

export function startProcess(options: StartOptions): Promise<HostProcess> {
  const [cmd, ...args] = options.argv;
  const child = spawn(cmd!, args, { env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  log.on('error', () => undefined);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  const isReady = options.ready ?? dfsReady;
  const handle: HostProcess = {
    role: options.role,
    argv: options.argv,
    child,
    pid: child.pid ?? -1,
    ready: {},
    lines,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    kill: (signal = 'SIGKILL') => {
      if (handle.running()) child.kill(signal);
    },
    stop: async (graceMs = 5_000) => {
      if (!handle.running()) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
  liveProcesses.add(handle);
  void exited.then(() => {
    liveProcesses.delete(handle);
    log.end();
  });
  return new Promise((resolve, reject) => {
    let ready = false;
    const onLine = (line: string): void => {
      if (options.keep?.(line) ?? true) {
        log.write(`${line}\n`);
        lines.push(line);
        if (lines.length > KEPT_LINES) lines.shift();
      }
      options.onLine?.(line);
      if (ready) return;
      const json = parseJson(line);
      if (!isReady(line, json)) return;
      ready = true;
      handle.ready = json ?? {};
      clearTimeout(timer);
      resolve(handle);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    const timer = setTimeout(() => {
      if (ready) return;
      child.kill('SIGKILL');
      reject(new Error(`${options.role} did not start within ${options.timeoutMs ?? 30_000} ms: ${options.argv.join(' ')}\n${lines.slice(-20).join('\n')}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`${options.role} exited with ${code} before it started: ${options.argv.join(' ')}\n${lines.slice(-20).join('\n')}`));
    });
  });
}
