import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { spawnDaemon, type DaemonProcess } from '../common/daemon-process.js';
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

export function sh(command: string, options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      '/bin/bash',
      ['-c', command],
      { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...options.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function isMounted(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === dir);
}

/** Frees a mount however it can: fusermount -u, -uz, and at last the abort file of its own connection. */
export async function forceUnmount(dir: string): Promise<void> {
  if (!(await isMounted(dir))) return;
  const minor = await connectionOf(dir);
  await sh(`fusermount -u ${JSON.stringify(dir)}`, { timeoutMs: 10_000 });
  if (!(await isMounted(dir))) return;
  await sh(`fusermount -uz ${JSON.stringify(dir)}`, { timeoutMs: 10_000 });
  if (minor !== undefined) {
    // Only this mount's own connection is touched.
    await writeFile(`/sys/fs/fuse/connections/${minor}/abort`, '1').catch(() => undefined);
  }
}

/** The FUSE connection number of a mount (the device minor in mountinfo). */
async function connectionOf(dir: string): Promise<string | undefined> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const line = info.split('\n').find((l) => l.split(' ')[4] === dir);
  const dev = line?.split(' ')[2];
  return dev?.split(':')[1];
}

export async function startMount(
  t: ExecutionContext,
  cluster: TestCluster,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
  /** Mount here instead of a new temp dir. */
  at?: string,
): Promise<TestMount> {
  const dir = at ?? (await mkdtemp(join(tmpdir(), 'dfs-mnt-')));
  const p = await spawnDaemon({
    args: ['mount', dir, '--name-server', cluster.url, ...extraArgs],
    env: { ...cluster.env, ...env },
  });
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
