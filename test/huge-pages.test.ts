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

/** The glibc tunables a running process was started with. */
async function tunablesOf(pid: number): Promise<string[]> {
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  return (environ.find((v) => v.startsWith('GLIBC_TUNABLES='))?.slice('GLIBC_TUNABLES='.length) ?? '').split(':');
}

/** Anonymous memory of a process that sits on huge pages, in KiB. */
async function anonHugeKiB(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^AnonHugePages:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
}

test('the daemons and the mount run with malloc on huge pages: the chunk buffers of a large write sit on them', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster);
  for (const [what, pid] of [['mount', mount.process.pid], ['storage server', cluster.storage[0]!.process!.pid]] as const) {
    const tunables = await tunablesOf(pid);
    t.true(tunables.includes('glibc.malloc.hugetlb=1'), `${what}: GLIBC_TUNABLES=${tunables.join(':')}`);
  }
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
