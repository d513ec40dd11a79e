import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnDaemon, type DaemonProcess } from '../../common/daemon-process.js';
import { BenchCluster } from '../dfs-cluster.js';
import { forceUnmount } from '../proc.js';
import type { RunningTarget, Target } from './target.js';

/** The dfs mount (`dfs mount`, its own process) over a fresh local cluster of 3 storage servers, replication 2. */
export function dfsTarget(options: { name?: string; storageServers?: number; replicas?: number; mountArgs?: string[]; nameServerArgs?: string[] } = {}): Target {
  return {
    name: options.name ?? 'dfs',
    async start(): Promise<RunningTarget> {
      const root = await mkdtemp(join(tmpdir(), 'dfsbench-dfs-'));
      const mnt = join(root, 'mnt');
      await mkdir(mnt);
      const cluster = new BenchCluster({ dir: root, storageServers: options.storageServers ?? 3, replicas: options.replicas ?? 2, nameServerArgs: options.nameServerArgs });
      let mount: DaemonProcess | undefined;
      const stop = async (): Promise<void> => {
        if (mount) {
          // SIGTERM: the mount flushes open files and unmounts itself; then whatever is left is forced.
          await mount.stop(30_000).catch(() => undefined);
        }
        await forceUnmount(mnt).catch(() => undefined);
        await cluster.stop().catch(() => undefined);
        await rm(root, { recursive: true, force: true }).catch(() => undefined);
      };
      try {
        await cluster.start();
        mount = await spawnDaemon({ args: ['mount', mnt, '--name-server', cluster.url, ...(options.mountArgs ?? [])], env: cluster.env, logFile: join(cluster.logDir, 'mount.log') });
      } catch (err) {
        await stop();
        throw err;
      }
      const m = mount;
      return {
        dir: mnt,
        processes: [{ role: 'mount', pid: m.pid }, ...cluster.processes()],
        info: { nameServer: cluster.url, storageServers: options.storageServers ?? 3, replicas: options.replicas ?? 2, mountArgs: options.mountArgs ?? [], nameServerArgs: options.nameServerArgs ?? [] },
        diagnose: async () => {
          const mountLog = (await readFile(join(cluster.logDir, 'mount.log'), 'utf8').catch(() => '')).trimEnd().split('\n').slice(-20).join('\n');
          const exited = m.child.exitCode !== null || m.child.signalCode !== null ? ` (mount process exited: ${m.child.exitCode ?? m.child.signalCode})` : '';
          return `--- mount${exited} ---\n${mountLog}\n${await cluster.logTails()}`;
        },
        stop,
      };
    },
  };
}
