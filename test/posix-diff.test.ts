import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startCluster } from './harness.js';
import { startMount } from './mount-harness.js';
import { localDir } from './mount-util.js';
import { Divergence, runDifferential } from './posix-check.js';

/**
 * Differential POSIX test (as JuiceFS .github/scripts/hypo/fs.py): the same seeded random operations on
 * a local folder and on a real mount, compared after every step (posix-check.ts says what is compared
 * and what is left out, and why). Each seed gets its own cluster and mount, and a chunk size of its own
 * so that small files span several chunks. At the end a second mount must show the same tree.
 *
 *   SEED=1234 npx ava dist/test/posix-diff.test.js     # replay one seed (SEED=random for a new one)
 *   STEPS=500 ...                                        # steps per seed (default 150)
 *   POSIX_DIFF_LOG=1 ...                                 # every step of every seed into $TMPDIR/dfs-posix-diff-SEED.log
 *
 * Every difference it found is a named case in posix-cases.test.ts.
 */

const CHUNK_SIZES = [16 * 1024, 4 * 1024 * 1024, 10_000];
const DEFAULT_SEEDS = [1, 2, 3, 4, 5];
const STEPS = Number(process.env.STEPS ?? 150);

function seeds(): number[] {
  const seed = process.env.SEED;
  if (seed === undefined || seed === '') return DEFAULT_SEEDS;
  if (seed === 'random') return [Math.floor(Math.random() * 2 ** 31)];
  return seed.split(',').map(Number);
}

for (const seed of seeds()) {
  const chunkSize = CHUNK_SIZES[seed % CHUNK_SIZES.length]!;
  test.serial(`seed ${seed}: ${STEPS} random operations give the same results and trees locally and on the mount (chunk size ${chunkSize})`, async (t) => {
    t.timeout(Math.max(180_000, STEPS * 2_000));
    const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', String(chunkSize)] });
    const mnt = await startMount(t, cluster);
    const second = await startMount(t, cluster);
    const local = join(await localDir(t), 'w');
    const mounted = join(mnt.dir, 'w');
    await mkdir(local, { mode: 0o755 });
    await mkdir(mounted, { mode: 0o755 });
    const started = Date.now();
    try {
      const report = await runDifferential({ seed, steps: STEPS, chunkSize, local, mount: mounted, verify: join(second.dir, 'w'), ...(process.env.POSIX_DIFF_LOG ? { logFile: join(tmpdir(), `dfs-posix-diff-${seed}.log`) } : {}) });
      t.log(`SEED=${seed}: ${report.steps} steps (${report.skipped} skipped) in ${Date.now() - started} ms; errors ${JSON.stringify(report.errors)}`);
      t.pass();
    } catch (err) {
      if (!(err instanceof Divergence)) t.log(`SEED=${seed} (replay with SEED=${seed})`);
      throw err;
    }
  });
}
