import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { median, summarize, type RunFigure } from '../bench/report.js';
import { quickSizes, sizesFrom, type Sizes } from '../bench/sizes.js';
import { prepareSources, type Sources } from '../bench/sources.js';
import { runWorkloads, WORKLOADS, type Figure } from '../bench/workloads.js';

/** The benchmark harness's own logic: workloads check what they wrote, and reports count only valid figures. No timings are asserted. */

const tiny: Sizes = { ...quickSizes, fileBytes: 2 * 1024 * 1024, files: 30, dirs: 4, renames: 40, appends: 10, tarFiles: 25 };

async function withDirs(run: (work: string, scratch: string) => Promise<void>): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dfsbench-test-work-'));
  const scratch = await mkdtemp(join(tmpdir(), 'dfsbench-test-src-'));
  try {
    await run(work, scratch);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

async function collect(dir: string, src: Sources): Promise<Figure[]> {
  const figures: Figure[] = [];
  await runWorkloads(dir, src, tiny, (f) => figures.push(f), { stepTimeoutS: 120, progress: () => undefined, dropCaches: false });
  return figures;
}

test('every workload runs on a local folder, checks out, and leaves nothing behind', async (t) => {
  await withDirs(async (work, scratch) => {
    const src = await prepareSources(scratch, tiny);
    t.is(src.treeFiles.length, tiny.files);
    t.is(src.tarEntries.length, tiny.tarFiles);
    const figures = await collect(work, src);
    t.deepEqual(
      figures.map((f) => f.workload),
      [...WORKLOADS],
    );
    for (const f of figures) {
      t.true(f.valid, `${f.workload}: ${f.error}`);
      t.true(typeof f.value === 'number' && f.value > 0, f.workload);
    }
    t.deepEqual(await readdir(work), []);
  });
});

test('a run whose data does not match its source is marked invalid and scores nothing', async (t) => {
  await withDirs(async (work, scratch) => {
    const src = await prepareSources(scratch, tiny);
    // As if the target had returned other bytes than were written.
    const wrong: Sources = {
      ...src,
      bigSha256: '0'.repeat(64),
      treeFiles: src.treeFiles.map((f, i) => (i === 7 ? { ...f, sha256: '1'.repeat(64) } : f)),
      tarEntries: src.tarEntries.map((e, i) => (i === 3 && e.sha256 ? { ...e, sha256: '2'.repeat(64) } : e)),
    };
    const figures = await collect(work, wrong);
    const byName = new Map(figures.map((f) => [f.workload, f]));
    for (const w of ['seq-write', 'seq-read', 'cp-r', 'cat'] as const) {
      t.false(byName.get(w)!.valid, w);
      t.is(byName.get(w)!.value, null, w);
      t.regex(byName.get(w)!.error ?? '', /SHA-256/, w);
    }
    if (src.tarEntries[3]!.sha256) t.false(byName.get('untar')!.valid);
    t.true(byName.get('append')!.valid);
  });
});

test('summaries take medians of valid figures only, and ratios of medians', (t) => {
  const fig = (target: string, rep: number, value: number | null, valid = true): RunFigure => ({ bench: 'fs', workload: 'cat', unit: 'files/s', value, seconds: 1, count: 1, valid, target, rep });
  const figures = [fig('dfs', 1, 10), fig('dfs', 2, 30), fig('dfs', 3, 1000, false), fig('moosefs', 1, 40), fig('moosefs', 2, 40), fig('passthrough', 1, null, false)];
  const [s] = summarize(figures, ['dfs', 'moosefs', 'passthrough'], WORKLOADS);
  t.is(s!.medians.dfs, 20);
  t.is(s!.medians.moosefs, 40);
  t.is(s!.medians.passthrough, null);
  t.is(s!.runs.dfs, '2/3');
  t.is(s!.ratios['dfs/moosefs'], 0.5);
  t.is(s!.ratios['dfs/passthrough'], null);
  // A target that did not run has no ratio column; one that did has its own.
  t.false('dfs/moosefs-fsync' in s!.ratios);
  const [withFsync] = summarize([...figures, fig('moosefs-fsync', 1, 80)], ['dfs', 'moosefs', 'moosefs-fsync'], WORKLOADS);
  t.is(withFsync!.ratios['dfs/moosefs-fsync'], 0.25);
  t.is(median([3, 1, 2]), 2);
  t.is(median([]), null);
});

test('sizes come from flags, with --quick as the base', (t) => {
  const s = sizesFrom({ quick: true, 'file-size': '8M', files: '100' });
  t.is(s.fileBytes, 8 * 1024 * 1024);
  t.is(s.files, 100);
  t.is(s.dirs, quickSizes.dirs);
  t.is(sizesFrom({}).fileBytes, 512 * 1024 * 1024);
  t.throws(() => sizesFrom({ 'file-size': 'lots' }));
});
