import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { withHugePages } from '../common/daemon-process.js';
import { startCluster } from './harness.js';
import { startMount } from './mount-harness.js';

test('withHugePages adds glibc.malloc.hugetlb=1 to GLIBC_TUNABLES, keeps the rest, and leaves a hugetlb the caller chose', (t) => {
  t.is(withHugePages(undefined), 'glibc.malloc.hugetlb=1');
  t.is(withHugePages(''), 'glibc.malloc.hugetlb=1');
  t.is(withHugePages('glibc.malloc.arena_max=2'), 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
  t.is(withHugePages('glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2'), 'glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2');
});

/** The kernel's transparent huge page mode: always, madvise or never. */
async function thpMode(): Promise<string | undefined> {
  const text = await readFile('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').catch(() => '');
  return /\[(\w+)\]/.exec(text)?.[1];
}

/** Anonymous memory of a process that sits on huge pages, in KiB. */
async function anonHugeKiB(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^AnonHugePages:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
}

test('the daemons and the mount run with malloc on huge pages: the chunk buffers of a large write sit on them', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster);
  const environ = (await readFile(`/proc/${mount.process.pid}/environ`, 'utf8')).split('\0');
  t.true(environ.includes('GLIBC_TUNABLES=glibc.malloc.hugetlb=1'), environ.filter((v) => v.startsWith('GLIBC')).join(' '));
  const storagePid = cluster.storage[0]!.process!.pid;
  t.true((await readFile(`/proc/${storagePid}/environ`, 'utf8')).split('\0').includes('GLIBC_TUNABLES=glibc.malloc.hugetlb=1'));
  const mode = await thpMode();
  if (mode !== 'always' && mode !== 'madvise') {
    t.log(`transparent huge pages are ${mode ?? 'not available'} here: only the environment is checked`);
    return;
  }
  const before = await anonHugeKiB(mount.process.pid);
  // 8 chunks: the mount keeps them in its chunk cache once uploaded.
  await writeFile(join(mount.dir, 'big.bin'), randomBytes(32 * 1024 * 1024));
  const after = await anonHugeKiB(mount.process.pid);
  t.true(after - before >= 8 * 1024, `AnonHugePages of the mount: ${before} KiB before, ${after} KiB after a 32 MiB write`);
});
