import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { forceUnmount, run, type RunResult } from '../bench/proc.js';
import { spawnDaemon, type DaemonProcess } from '../common/daemon-process.js';
import type { FuseTraceLine } from '../mount/fuse-trace.js';
import type { HttpTraceLine } from '../protocol/http-client.js';
import type { TestCluster } from './harness.js';

/**
 * A real FUSE mount of a test cluster, run by `dfs mount` in its own process (fuse-native runs every
 * operation on that process's main thread, so workloads must come from elsewhere: the test process or
 * shell tools it starts). Unmounted in every outcome: SIGTERM, then fusermount -uz, then the kernel
 * connection's abort file as a last resort.
 */

export interface TestMount {
  dir: string;
  process: DaemonProcess;
  /** Unmounts (cleanly if it can) and waits for the mount process to exit. */
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** Runs a shell command line (never throws: a failure is a non-zero code). */
export function sh(command: string, options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run('/bin/bash', ['-c', command], options);
}

export async function startMount(
  t: ExecutionContext,
  /** The cluster, or where to reach its name server (a proxy in front of it) and its secret. */
  cluster: Pick<TestCluster, 'url' | 'env'>,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
  /** Mount here instead of a new temp dir. */
  at?: string,
): Promise<TestMount> {
  const dir = at ?? (await mkdtemp(join(tmpdir(), 'dfs-mnt-')));
  let p: DaemonProcess;
  try {
    p = await spawnDaemon({
      args: ['mount', dir, '--name-server', cluster.url, ...extraArgs],
      env: { ...cluster.env, ...env },
    });
  } catch (err) {
    // A mount process that died after mounting but before saying so leaves the kernel's mount behind.
    await forceUnmount(dir);
    if (!at) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  const mount: TestMount = {
    dir,
    process: p,
    async stop() {
      p.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const exited = await Promise.race([p.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 15_000)))]);
      clearTimeout(timer);
      if (!exited) p.kill('SIGKILL');
      await p.exited;
      await forceUnmount(dir);
    },
    async kill() {
      p.kill('SIGKILL');
      await p.exited;
      await forceUnmount(dir);
    },
  };
  t.teardown(async () => {
    if (!t.passed) t.log(`--- mount ${dir} ---\n${p.lines.slice(-40).join('\n')}`);
    await mount.stop();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  });
  return mount;
}

/** Start a mount with this environment to have it trace every FUSE operation (mount/fuse-trace.ts). */
export const TRACE_FUSE = { DFS_TRACE_FUSE: '1' };
/** Start a mount with this environment to have it trace every remote call (protocol/http-client.ts). */
export const TRACE_HTTP = { DFS_TRACE_HTTP: '1' };

/** The remote calls a mount started with TRACE_HTTP has made so far, to paths matching `path` if given. */
export function httpTrace(mount: TestMount, path?: RegExp): HttpTraceLine[] {
  return mount.process.lines
    .filter((line) => line.startsWith('{"trace":"http"'))
    .map((line) => JSON.parse(line) as HttpTraceLine)
    .filter((line) => !path || path.test(new URL(line.url).pathname));
}

/** The FUSE operations named `op` that a mount started with TRACE_FUSE has answered so far. */
export function fuseTrace(mount: TestMount, op: string): FuseTraceLine[] {
  return mount.process.lines
    .filter((line) => line.startsWith('{"trace":"fuse"'))
    .map((line) => JSON.parse(line) as FuseTraceLine)
    .filter((line) => line.op === op);
}

/** Files under a directory (recursively), as relative paths. */
export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      out.push(rel);
      if (entry.isDirectory()) await walk(join(dir, entry.name), rel);
    }
  };
  await walk(root, '');
  return out.sort();
}

export { stat };
