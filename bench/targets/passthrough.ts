import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withHugePages } from '../../common/daemon-process.js';
import { forceUnmount, startChild } from '../proc.js';
import type { RunningTarget, Target } from './target.js';

const PASSTHROUGH = fileURLToPath(new URL('../passthrough.js', import.meta.url));

/** bench/passthrough.ts in its own process, over a local backing folder: the ceiling of our FUSE binding. */
export const passthroughTarget: Target = {
  name: 'passthrough',
  async start(): Promise<RunningTarget> {
    const root = await mkdtemp(join(tmpdir(), 'dfsbench-pt-'));
    const backing = join(root, 'backing');
    const mnt = join(root, 'mnt');
    await mkdir(backing);
    await mkdir(mnt);
    const cleanup = async (): Promise<void> => {
      await forceUnmount(mnt).catch(() => undefined);
      await rm(root, { recursive: true, force: true }).catch(() => undefined);
    };
    let child;
    try {
      child = await startChild(process.execPath, [PASSTHROUGH, '--backing', backing, '--mount', mnt], {
        logFile: join(root, 'passthrough.log'),
        ready: (line) => line.includes('"msg":"mounted"'),
        // malloc as the dfs daemons have it (spawnDaemon's huge pages), so the two mounts differ only in dfs.
        env: { GLIBC_TUNABLES: withHugePages(process.env.GLIBC_TUNABLES) },
      });
    } catch (err) {
      await cleanup();
      throw err;
    }
    const p = child;
    return {
      dir: mnt,
      processes: [{ role: 'passthrough', pid: p.pid }],
      info: { backing, mnt },
      diagnose: async () => p.lines.slice(-20).join('\n'),
      stop: async () => {
        await p.stop(15_000);
        await cleanup();
      },
    };
  },
};
