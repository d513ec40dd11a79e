import { link, mkdir, open, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startCluster } from './harness.js';
import { startMount } from './mount-harness.js';
import { localDir } from './mount-util.js';

/**
 * The differences the differential test (posix-diff.test.ts) found, one deterministic case each, run
 * against a local folder (the reference) and a real mount with the same expectations.
 */

async function trees(t: ExecutionContext): Promise<{ name: string; dir: string }[]> {
  const cluster = await startCluster(t);
  const mnt = await startMount(t, cluster);
  return [
    { name: 'local', dir: await localDir(t) },
    { name: 'mount', dir: mnt.dir },
  ];
}

/** A time long past, so that any update by the file system shows. */
const OLD = 1_000_000_000;

test('open(O_TRUNC) of an empty file and ftruncate to the same size both update the mtime (`: > stamp`)', async (t) => {
  for (const { name, dir } of await trees(t)) {
    const file = join(dir, 'stamp');
    await writeFile(file, '');
    await utimes(file, OLD, OLD);
    await (await open(file, 'w')).close();
    t.true((await stat(file)).mtimeMs > OLD * 1000 + 1000, `${name}: O_TRUNC of an empty file moved the mtime`);

    await writeFile(file, 'twelve bytes');
    await utimes(file, OLD, OLD);
    const fd = await open(file, 'r+');
    await fd.truncate(12);
    t.true((await fd.stat()).mtimeMs > OLD * 1000 + 1000, `${name}: ftruncate to the same size moved the mtime`);
    await fd.close();
    t.true((await stat(file)).mtimeMs > OLD * 1000 + 1000, `${name}: and it stays after close`);
  }
});

test('unlinking (or renaming over) one hard link shows in the other name\'s link count at once, also right after its directory was renamed', async (t) => {
  for (const { name, dir } of await trees(t)) {
    await writeFile(join(dir, 'a'), 'data');
    await mkdir(join(dir, 'd'));
    await link(join(dir, 'a'), join(dir, 'd', 'b'));
    t.is((await stat(join(dir, 'a'))).nlink, 2, `${name}: two links`);
    t.is((await stat(join(dir, 'd', 'b'))).nlink, 2, `${name}: two links through the other name`);
    // The mount forgets what it knew of names under a renamed directory; the kernel still knows `b`.
    await rename(join(dir, 'd'), join(dir, 'e'));
    await unlink(join(dir, 'e', 'b'));
    t.is((await stat(join(dir, 'a'))).nlink, 1, `${name}: one link left`);

    // The same through a rename that replaces one of the names.
    await link(join(dir, 'a'), join(dir, 'e', 'b'));
    t.is((await stat(join(dir, 'a'))).nlink, 2, `${name}: two links again`);
    await rename(join(dir, 'e'), join(dir, 'f'));
    await writeFile(join(dir, 'c'), 'other');
    await rename(join(dir, 'c'), join(dir, 'f', 'b'));
    t.is((await stat(join(dir, 'a'))).nlink, 1, `${name}: one link left after the rename over the other`);
  }
});
