import { startChild, type Child } from '../../bench/proc.js';

/**
 * A long-running program of a host, started from an argv (`ip netns exec NS node … dfs.js storage-server …`)
 * with exactly the environment it is given: its output goes to a log file and the last lines stay in
 * memory; it is ready once a line says so. `ip netns exec` and `nsenter` exec the program, so the pid is
 * the daemon's own and kill -9 reaches it.
 */
export interface HostProcess extends Child {
  role: string;
  argv: string[];
  /** The parsed JSON line that made it ready, if it was a JSON line. */
  ready: Record<string, unknown>;
}

/** Every process started and not yet exited: killed by the exit handler if a test never stopped it. */
export const liveProcesses = new Set<Child>();

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

export async function startProcess(options: StartOptions): Promise<HostProcess> {
  const [cmd, ...args] = options.argv;
  const isReady = options.ready ?? dfsReady;
  let readyLine: Record<string, unknown> = {};
  const child = await startChild(cmd!, args, {
    logFile: options.logFile,
    env: options.env,
    cleanEnv: true,
    stdin: true,
    keptLines: 2_000,
    label: `${options.role} (${options.argv.join(' ')})`,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(options.keep ? { keep: options.keep } : {}),
    ...(options.onLine ? { onLine: options.onLine } : {}),
    ready: (line) => {
      const json = parseJson(line);
      if (!isReady(line, json)) return false;
      readyLine = json ?? {};
      return true;
    },
    onSpawn: (spawned) => {
      liveProcesses.add(spawned);
      void spawned.exited.then(() => liveProcesses.delete(spawned));
    },
  });
  return Object.assign(child, { role: options.role, argv: options.argv, ready: readyLine });
}
