import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningTarget, Target } from './target.js';

/** A plain local folder: the disk and the kernel's own file system, the baseline of everything. */
export const localTarget: Target = {
  name: 'local',
  async start(): Promise<RunningTarget> {
    const dir = await mkdtemp(join(tmpdir(), 'dfsbench-local-'));
    return {
      dir,
      processes: [],
      info: { dir },
      diagnose: async () => '',
      stop: () => rm(dir, { recursive: true, force: true }).catch(() => undefined),
    };
  },
};
