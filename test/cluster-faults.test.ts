import { rm } from 'node:fs/promises';
import test from 'ava';
import { DfsError } from '../protocol/errors.js';
import type { FileInfo } from '../protocol/name-api.js';
import type { DirEntry } from '../protocol/schemas.js';
import { badChunksOnDisk, chunkIntact, chunksOnDisk, corruptChunk, diskFree, fillDisk, sleep, uploadsOnDisk, type NetCluster, type StorageHost } from './cluster/hosts.js';
import { disks, errorCode, logLines, startNetCluster, unreadable, waitDisksExact, writeStream, type Written } from './cluster/fixture.js';
import { databaseProblems } from './store-checks.js';

/**
 * Faults of hosts and disks on the multi-host harness (test/cluster/): a storage server killed in the middle
 * of an upload, the name server killed in the middle of a burst of writes, disks that fill up, chunk files
 * that rot, and two of three storage servers gone at once. Every byte is checked by SHA-256, and every
 * disk is checked against what the files reference.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** The promise's outcome, or a failure saying it hung, after `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bad chunk files (bytes that do not hash to the name) on every storage host's disk, by host name. */
async function badChunks(cluster: NetCluster): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const s of cluster.storage) {
    const bad = await badChunksOnDisk(s.dataDir);
    if (bad.length > 0) out[s.name] = bad.map((h) => h.slice(0, 12));
  }
  return out;
}

/** The regular files in a directory (one level). */
async function filesIn(cluster: NetCluster, dir: string): Promise<DirEntry[]> {
  const { entries } = await cluster.agent.ns<{ entries: DirEntry[] }>('list', { path: dir });
  return entries.filter((e) => e.attr.type === 'file');
}

/** The storage hosts whose disks hold a chunk. */
async function holders(cluster: NetCluster, hash: string): Promise<StorageHost[]> {
  const onDisk = await disks(cluster);
  return cluster.storage.filter((_, i) => onDisk[i]!.has(hash));
}

test.serial('kill -9 of a storage server in the middle of an upload: no torn chunk on any disk, writes go on elsewhere, nothing acknowledged is lost, and replication converges once it is back', async (t) => {
  const cluster = await startNetCluster(t, { nameExtra: ['--chunk-size', '1M', '--upload-grace', '4000', '--delete-grace', '300'] });
  const agent = cluster.agent;
  await agent.ns('mkdir', { path: '/up' });
  // Files of several chunks, streaming from three writers at once: chunk uploads are in flight all the time.
  const stream = writeStream(cluster, { writers: 3, dir: '/up', minSize: 3 * MiB, maxSize: 6 * MiB });
  t.teardown(() => stream.stop());
  await cluster.waitFor('writes before the kill', async () => stream.acked.length, (n) => n >= 3, 90_000);

  // The victim: a storage host with a chunk being written to its disk right now (a temp file in its tmp dir).
  const inFlight = await cluster.waitFor(
    'a chunk upload in flight on a storage host',
    () => Promise.all(cluster.storage.map((s) => uploadsOnDisk(s.dataDir))),
    (lists) => lists.some((l) => l.length > 0),
    60_000,
    2,
  );
  const victim = cluster.storage[inFlight.findIndex((l) => l.length > 0)]!;
  const killedAt = Date.now();
  await cluster.killStorage(victim.n);
  const ackedAtKill = stream.acked.length;
  const cutOff = await uploadsOnDisk(victim.dataDir);
  t.log(`${victim.name} killed with ${inFlight[victim.n - 1]!.length} chunk write(s) in flight (${cutOff.length} temp file(s) left behind by the kill); ${ackedAtKill} writes acknowledged before`);

  // No partial chunk under a valid name on the killed host's disk (nor anywhere else).
  t.deepEqual(await badChunksOnDisk(victim.dataDir), [], 'the killed host holds no torn chunk under a chunk name');

  // The writers retry elsewhere: writes go on.
  await cluster.waitFor('writes acknowledged after the kill', async () => stream.ackedAfter(killedAt), (n) => n >= 4, 120_000);
  await cluster.waitFor('the killed server to be dead', () => cluster.stateOf(victim), (s) => s === 'dead', 30_000, 100);
  await stream.stop();
  t.log(`${stream.acked.length} writes acknowledged, ${stream.acked.length - ackedAtKill} after the kill (slowest ${stream.slowest()} ms); ${stream.failed.length} failed`);
  t.deepEqual(
    stream.failed.map((f) => `${f.path}: ${f.code} ${f.error}`),
    [],
    'no write failed: the client retried another server',
  );

  // With the victim still down: every acknowledged write reads back whole from the two hosts left (each
  // acknowledged chunk was on two servers), and no disk holds a bad chunk.
  t.deepEqual(await unreadable(cluster, stream.acked), [], 'every acknowledged write reads back whole with the victim down');
  t.deepEqual(await badChunks(cluster), {}, 'no disk holds a chunk whose bytes do not match its name');

  // Back again: restoration, trimming, collection of what the cut-off uploads left: the disks converge.
  const restartedAt = Date.now();
  await cluster.startStorage(victim.n);
  await cluster.waitAlive(3, 30_000);
  t.deepEqual(await uploadsOnDisk(victim.dataDir), [], 'the restart cleared the temp files of cut-off writes');
  // The hosts that stayed up dropped the temp files of the uploads the kill cut off (as head or further down a chain).
  await cluster.waitFor('no temp file of a cut-off upload left on any disk', () => Promise.all(cluster.storage.map((s) => uploadsOnDisk(s.dataDir))), (l) => l.every((x) => x.length === 0), 30_000, 250);
  await waitDisksExact(cluster, stream.acked.map((w) => w.path), 90_000);
  t.log(`disks exact ${Date.now() - restartedAt} ms after the restart`);
  t.deepEqual(await badChunks(cluster), {}, 'no disk holds a torn or corrupt chunk after the restart');
  t.deepEqual(await unreadable(cluster, stream.acked), [], 'every acknowledged write reads back whole');
  for (const w of stream.acked) t.true((await cluster.info(w.path)).fullyReplicated, w.path);
});

test.serial('kill -9 of the name server during a burst of writes, restarted on the same database: acknowledged writes whole, no file points at a missing chunk, leaked uploads collected', async (t) => {
  const cluster = await startNetCluster(t, { nameExtra: ['--chunk-size', '256K', '--upload-grace', '3000', '--delete-grace', '300'] });
  const agent = cluster.agent;
  await agent.ns('mkdir', { path: '/burst' });
  const stream = writeStream(cluster, { writers: 4, dir: '/burst', minSize: 300 * KiB, maxSize: 1536 * KiB });
  t.teardown(() => stream.stop());

  // Chunks on the disks while the name server is down: every one that no file references at the end was
  // uploaded and never committed (leaked by the crash), and must have been collected.
  const duringOutage = new Set<string>();
  for (let round = 0; round < 2; round++) {
    const before = stream.acked.length;
    await cluster.waitFor('writes before the kill', async () => stream.acked.length, (n) => n >= before + 6, 90_000);
    // Kill it while chunks are being uploaded.
    await cluster.waitFor('a chunk upload in flight', () => Promise.all(cluster.storage.map((s) => uploadsOnDisk(s.dataDir))), (l) => l.some((x) => x.length > 0), 60_000, 2);
    const killedAt = Date.now();
    await cluster.killNameServer();
    const ackedAtKill = stream.acked.length;
    // Uploads already under way finish on the storage servers; nothing can be committed meanwhile.
    await sleep(1_500);
    for (const disk of await disks(cluster)) for (const hash of disk) duringOutage.add(hash);
    await cluster.startNameServer();
    const restartedAt = Date.now();
    await cluster.waitAlive(3, 30_000);
    await cluster.waitFor('writes acknowledged after the restart', async () => stream.ackedAfter(restartedAt), (n) => n >= 6, 90_000);
    t.log(`round ${round}: name server down ${restartedAt - killedAt} ms; ${ackedAtKill - before} writes acknowledged before the kill, ${stream.failed.filter((f) => f.at >= killedAt).length} failed since`);
  }
  await stream.stop();
  t.true(
    stream.failed.length > 0,
    'the kills cut off writes in flight',
  );
  t.log(`${stream.acked.length} writes acknowledged, ${stream.failed.length} failed: ${[...new Set(stream.failed.map((f) => f.code ?? f.error))].join(', ')}`);

  // Every acknowledged write is there, whole.
  t.deepEqual(await unreadable(cluster, stream.acked), [], 'every acknowledged write reads back whole');

  // Every file there is (acknowledged or cut off and committed anyway, or created and never committed): every
  // chunk has a live server and the whole file reads. One cut off is absent, empty, or the whole write.
  const files = await filesIn(cluster, '/burst');
  const paths = files.map((e) => `/burst/${e.name}`);
  const acked = new Map(stream.acked.map((w) => [w.path, w]));
  const failed = new Map(stream.failed.map((f) => [f.path, f]));
  t.deepEqual(
    stream.acked.filter((w) => !paths.includes(w.path)).map((w) => w.path),
    [],
    'every acknowledged file is listed',
  );
  const pointless: string[] = [];
  const torn: string[] = [];
  for (const path of paths) {
    const info = await cluster.info(path);
    for (const c of info.chunks) if (c.servers.length === 0) pointless.push(`${path}: chunk ${c.hash.slice(0, 12)} has no live server`);
    try {
      const r = await agent.read(path);
      const w = acked.get(path);
      const f = failed.get(path);
      if (w && r.sha !== w.sha) torn.push(`${path}: acknowledged, reads SHA-256 ${r.sha}, wrote ${w.sha}`);
      if (!w && r.size !== 0 && r.size !== f?.size) torn.push(`${path}: cut off (${f?.error}), reads ${r.size} bytes, the write had ${f?.size}`);
    } catch (err) {
      torn.push(`${path}: ${(err as Error).message}`);
    }
  }
  t.deepEqual(pointless, [], 'no file points at a chunk without a live copy');
  t.deepEqual(torn, [], 'every file reads whole (or is empty, for a create never committed)');

  // Leaked uploads are collected: the disks end up holding exactly the referenced chunks, twice.
  const leakedStart = Date.now();
  await waitDisksExact(cluster, paths, 60_000);
  const referenced = new Set((await Promise.all(paths.map((p) => cluster.info(p)))).flatMap((i) => i.chunks.map((c) => c.hash)));
  const leaked = [...duringOutage].filter((h) => !referenced.has(h));
  t.log(`${leaked.length} chunks were on disk during the outages but are referenced by no file; disks exact ${Date.now() - leakedStart} ms after the last check began`);
  t.true(leaked.length > 0, 'the crashes left uploaded chunks no commit references');
  const onDisk = await disks(cluster);
  t.deepEqual(
    leaked.filter((h) => onDisk.some((d) => d.has(h))).map((h) => h.slice(0, 12)),
    [],
    'every leaked chunk was collected from every disk',
  );
  for (const path of paths) t.true((await cluster.info(path)).fullyReplicated, path);
  t.deepEqual(await badChunks(cluster), {});
  // And the database itself is consistent (read beside the running name server).
  t.deepEqual(await databaseProblems(cluster.nameHost.env.get('DFS_DB')!), []);
});

test.serial('disks fill up: writes go to the servers with room while there are any, then fail with ENOSPC; nothing stored is damaged, and deleting makes room again', async (t) => {
  // Small tmpfs data dirs, so the disks really fill: one small, two larger. Every chunk is exactly 1 MiB.
  const sizes = ['8M', '40M', '40M'];
  const cluster = await startNetCluster(t, {
    nameExtra: ['--chunk-size', '1M', '--upload-grace', '3000', '--delete-grace', '300'],
    storageTmpfs: (n) => sizes[n - 1],
  });
  const agent = cluster.agent;
  await agent.ns('mkdir', { path: '/fill' });
  const small = cluster.storage[0]!;
  const acked: Written[] = [];
  const failures: { path: string; size: number; code: string | undefined; message: string; full: boolean; free: number[]; freeBefore: number[] }[] = [];
  // Full, for a cluster that keeps two copies of every chunk: fewer than two disks have room for a chunk.
  const full = (free: readonly number[]): boolean => free.filter((f) => f >= MiB).length < cluster.options.replicas;
  let n = 0;
  const write = async (): Promise<boolean> => {
    const path = `/fill/f${n++}.bin`;
    const size = between(1, 2) * MiB;
    const freeBefore = await Promise.all(cluster.storage.map((s) => diskFree(s.dataDir)));
    try {
      const r = await agent.write(path, size);
      acked.push({ ...r, at: Date.now() });
      return true;
    } catch (err) {
      const free = await Promise.all(cluster.storage.map((s) => diskFree(s.dataDir)));
      failures.push({ path, size, freeBefore, free, code: err instanceof DfsError ? err.code : undefined, message: (err as Error).message, full: full(free) });
      return false;
    }
  };

  // Fill the small disk.
  for (let i = 0; i < 30 && (await diskFree(small.dataDir)) >= MiB; i++) t.true(await write(), `a write with room on every server: ${JSON.stringify(failures.at(-1))}`);
  t.true((await diskFree(small.dataDir)) < MiB, 'the small disk is full');
  // The name server learns it from the storage server's next health check.
  await cluster.waitFor('the name server to see the small disk full', async () => (await cluster.status()).servers.find((s) => s.id === small.id)?.free, (free) => free !== undefined && free < MiB, 10_000, 100);
  const smallChunks = await chunksOnDisk(small.dataDir);
  t.log(`${small.name} full after ${acked.length} writes: ${smallChunks.size} chunks on it`);

  // Writes go on, on the other two.
  const fullAt = acked.length;
  for (let i = 0; i < 4; i++) t.true(await write(), `a write while two servers have room: ${JSON.stringify(failures.at(-1))}`);
  const newChunks = new Set((await Promise.all(acked.slice(fullAt).map((w) => cluster.info(w.path)))).flatMap((i) => i.chunks.map((c) => c.hash)));
  for (const hash of newChunks) {
    t.deepEqual(
      (await holders(cluster, hash)).map((h) => h.name),
      cluster.storage.slice(1).map((h) => h.name),
      `new chunk ${hash.slice(0, 12)} has its two copies on the servers with room`,
    );
  }

  // Until the cluster is full (no two disks with room for a chunk): then writes fail, with ENOSPC, and do not hang.
  for (let i = 0; i < 40; i++) {
    const ok = await within(150_000, 'a write to full disks', write());
    if (!ok && failures.at(-1)!.full && failures.filter((f) => f.full).length >= 3) break;
  }
  const status = await cluster.waitFor('the name server to see the disks full', () => cluster.status(), (x) => full(x.servers.map((s) => s.free)), 10_000, 100);
  t.log(`${acked.length} writes acknowledged; then ${failures.length} failed: ${failures.map((f) => `${f.code} (${f.size / MiB} MiB; free ${f.free.map((x) => (x / MiB).toFixed(2)).join('/')} MiB)`).join(', ')}; free now ${status.servers.map((s) => s.free).join(', ')}`);
  t.true(full(await Promise.all(cluster.storage.map((s) => diskFree(s.dataDir)))), 'fewer than two disks have room for a chunk');
  const whenFull = failures.filter((f) => f.full);
  t.true(whenFull.length >= 3, 'writes were tried with the disks full');
  t.deepEqual(
    whenFull.map((f) => f.code),
    whenFull.map(() => 'ENOSPC'),
    'a write to full disks fails with ENOSPC',
  );
  t.deepEqual(
    failures.map((f) => `${f.path}: ${f.code} ${f.message}`).filter((f) => !f.includes(': ENOSPC ')),
    [],
    'every write that failed for want of room failed with ENOSPC',
  );
  t.is(await errorCode(agent.write('/fill/one-more.bin', MiB)), 'ENOSPC', 'one more write: ENOSPC');
  // A write is refused only for want of room: k chunks of 1 MiB, two copies each on different servers, fit
  // when the disks' free chunk slots (statfs, as the storage servers see them), each counted up to k, add up
  // to 2k, before the write and after it.
  const fits = (free: number[], size: number): boolean => {
    const k = size / MiB;
    return free.reduce((sum, f) => sum + Math.min(Math.floor(f / MiB), k), 0) >= cluster.options.replicas * k;
  };
  t.deepEqual(
    failures.filter((f) => fits(f.freeBefore, f.size) && fits(f.free, f.size)).map((f) => `${f.path} (${f.size / MiB} MiB): ${f.code} ${f.message}; free before ${f.freeBefore.join('/')}, after ${f.free.join('/')}`),
    [],
    'no write was refused while the servers had room for its copies',
  );

  // Nothing stored before is damaged.
  t.deepEqual(await badChunks(cluster), {}, 'no disk holds a torn chunk');
  t.deepEqual(await unreadable(cluster, acked), [], 'every acknowledged write reads back whole');
  for (const w of acked) t.true((await cluster.info(w.path)).fullyReplicated, `${w.path} has its two copies`);

  // Deleting files makes room: a write succeeds again, and the disks hold exactly what the files reference
  // (the copies of failed writes collected too).
  const deleted = acked.splice(0, 6);
  for (const w of deleted) await agent.ns('unlink', { path: w.path });
  await cluster.waitFor('room on two servers again', () => cluster.status(), (s) => s.servers.filter((x) => x.free >= 2 * MiB).length >= 2, 30_000, 250);
  const again = await agent.write('/fill/again.bin', 2 * MiB);
  acked.push({ ...again, at: Date.now() });
  await waitDisksExact(cluster, acked.map((w) => w.path), 60_000);
  t.deepEqual(await unreadable(cluster, acked), []);
  t.deepEqual(await badChunks(cluster), {});

  // The disks filled by something else on the hosts, behind the name server's back (it learns of it at its
  // next check of each): a write is refused with ENOSPC all the same, and nothing stored is harmed. Three
  // times, as the name server may or may not have heard of the full disks by the time the write comes.
  const behind: (string | undefined)[] = [];
  for (let round = 0; round < 3; round++) {
    const fillers = await Promise.all(cluster.storage.map((s) => fillDisk(s.dataDir)));
    behind.push(await within(150_000, 'a write to disks filled behind the name server’s back', errorCode(agent.write(`/fill/behind${round}.bin`, MiB))));
    for (const f of fillers) await rm(f);
    await cluster.waitFor('room on two servers again', () => cluster.status(), (x) => x.servers.filter((s) => s.free >= 2 * MiB).length >= 2, 30_000, 100);
  }
  t.deepEqual(behind, ['ENOSPC', 'ENOSPC', 'ENOSPC'], 'a write to disks filled by another program fails with ENOSPC');
  t.deepEqual(await badChunks(cluster), {});
  t.deepEqual(await unreadable(cluster, acked), [], 'every acknowledged write still reads back whole');
  // Room again: writes succeed, and the disks end up holding what the files reference.
  acked.push({ ...(await agent.write('/fill/after.bin', MiB)), at: Date.now() });
  await waitDisksExact(cluster, acked.map((w) => w.path), 60_000);
  t.deepEqual(await unreadable(cluster, acked), []);
});

test.serial('a corrupt chunk copy on disk: a read returns the right bytes, and the bad copy is reported, removed and copied again', async (t) => {
  // No scrub here: only the read can find the corruption.
  const cluster = await startNetCluster(t, { nameExtra: ['--chunk-size', '1M', '--delete-grace', '300'], storageExtra: () => ['--scrub-rate', '0'] });
  const agent = cluster.agent;
  const file = await agent.write('/f.bin', 4 * MiB + 123_456);
  await cluster.waitConverged();
  const info = await cluster.info('/f.bin');
  t.is(info.chunks.length, 5);
  const before = (await cluster.status()).activity;
  // The copies readers try first, of two chunks.
  const victims = [info.chunks[0]!, info.chunks[3]!].map((c) => ({ hash: c.hash, host: cluster.storageById(c.servers[0]!.id) }));
  for (const v of victims) {
    await corruptChunk(v.host.dataDir, v.hash);
    t.false(await chunkIntact(v.host.dataDir, v.hash), `${v.hash.slice(0, 12)} corrupt on ${v.host.name}`);
  }

  const read = await agent.read('/f.bin');
  t.is(read.sha, file.sha, 'the read returns the right bytes');
  t.is(read.size, file.size);

  // Reported, dropped, copied again: two good copies of each, the bad copy gone (or good again).
  await cluster.waitFor(
    'the bad copies gone and two good copies of each chunk',
    async () =>
      Promise.all(
        victims.map(async (v) => {
          const where = await holders(cluster, v.hash);
          const good = (await Promise.all(where.map((h) => chunkIntact(h.dataDir, v.hash)))).filter((g) => g === true).length;
          return { holders: where.length, good, victim: await chunkIntact(v.host.dataDir, v.hash) };
        }),
      ),
    (all) => all.every((s) => s.holders === 2 && s.good === 2 && s.victim !== false),
    45_000,
    200,
  );
  await waitDisksExact(cluster, ['/f.bin'], 45_000);
  const after = await cluster.status();
  t.log(`copies made ${after.activity.copiesMade - before.copiesMade}, deletes ${after.activity.deletes - before.deletes}`);
  t.true(after.activity.copiesMade - before.copiesMade >= 1, 'repair made copies');
  const repaired = await cluster.info('/f.bin');
  t.true(repaired.fullyReplicated);
  for (const c of repaired.chunks) {
    for (const s of c.servers) t.true(await chunkIntact(cluster.storageById(s.id).dataDir, c.hash), `the copy the name server lists on ${cluster.storageById(s.id).name} is good`);
  }
  t.deepEqual(await badChunks(cluster), {});
  t.deepEqual(await unreadable(cluster, [file]), []);
});

test.serial('the background scrub finds a corrupt copy of a chunk nobody reads, and repair restores it', async (t) => {
  const cluster = await startNetCluster(t, { nameExtra: ['--chunk-size', '1M', '--delete-grace', '300'], storageExtra: () => ['--scrub-rate', '64M'] });
  const agent = cluster.agent;
  // The first copy to reach a disk is corrupted the moment it is there: before the scrub can have read it
  // once (a scrub rests a minute between passes over a disk; a chunk read in one pass is next read in the next).
  const writing = agent.write('/cold.bin', 2 * MiB);
  let victim: { host: StorageHost; hash: string; at: number } | undefined;
  for (const deadline = Date.now() + 60_000; !victim && Date.now() < deadline; ) {
    const onDisk = await disks(cluster);
    const i = onDisk.findIndex((d) => d.size > 0);
    if (i >= 0) {
      const host = cluster.storage[i]!;
      const hash = [...onDisk[i]!][0]!;
      await corruptChunk(host.dataDir, hash);
      victim = { host, hash, at: Date.now() };
    } else await sleep(1);
  }
  const file = await writing;
  if (!victim) throw new Error('no chunk reached a disk');
  const bad = victim;
  const info = await cluster.info('/cold.bin');
  t.true(
    info.chunks.some((c) => c.hash === bad.hash),
    'the corrupted chunk is one of the file',
  );
  t.log(`corrupted ${bad.hash.slice(0, 12)} on ${bad.host.name}`);

  // Nobody reads: only the scrub can find it. Then the copy is dropped and made again from the good one.
  const found = await cluster.waitFor(
    'the scrub to find the corrupt copy, and two good copies again',
    async () => {
      const where = await holders(cluster, bad.hash);
      const good = (await Promise.all(where.map((h) => chunkIntact(h.dataDir, bad.hash)))).filter((g) => g === true).length;
      const status = await cluster.status();
      return { holders: where.length, good, victim: await chunkIntact(bad.host.dataDir, bad.hash), under: status.underReplicated, copiesMade: status.activity.copiesMade };
    },
    (s) => s.holders === 2 && s.good === 2 && s.victim !== false && s.under === 0,
    100_000,
    250,
  );
  t.log(`repaired ${Date.now() - bad.at} ms after the corruption: ${JSON.stringify(found)}`);
  const scrubbed = logLines(bad.host.process!.lines, 'scrub found a corrupt chunk; moved aside and reported').filter((l) => l.hash === bad.hash);
  t.is(scrubbed.length, 1, 'the scrub on the corrupt copy’s host found it');
  t.true(found.copiesMade >= 1, 'repair made a copy');
  await waitDisksExact(cluster, ['/cold.bin'], 45_000);
  t.deepEqual(await badChunks(cluster), {});
  t.deepEqual(await unreadable(cluster, [file]), []);
});

test.serial('two of three storage servers killed: every file with a live copy of each chunk reads whole, the others fail fast, and full replication comes back with them', async (t) => {
  const cluster = await startNetCluster(t, { nameExtra: ['--chunk-size', '1M', '--delete-grace', '300', '--upload-grace', '5000'] });
  const agent = cluster.agent;
  await agent.ns('mkdir', { path: '/d' });
  const files: Written[] = [];
  // Files of one chunk and files of several: some will keep a copy of every chunk on any one host, some not.
  for (let i = 0; i < 16; i++) {
    const size = i % 2 === 0 ? between(200 * KiB, MiB) : between(2 * MiB + 1, 4 * MiB);
    files.push({ ...(await agent.write(`/d/f${i}.bin`, size)), at: Date.now() });
  }
  await waitDisksExact(cluster, files.map((f) => f.path), 45_000);
  const infos = new Map<string, FileInfo>();
  for (const f of files) infos.set(f.path, await cluster.info(f.path));
  // The survivor: the host that leaves both kinds of file, readable and not.
  const readableWith = (host: StorageHost): Written[] => files.filter((f) => infos.get(f.path)!.chunks.every((c) => c.servers.some((s) => s.id === host.id)));
  const survivor = cluster.storage.find((s) => readableWith(s).length > 0 && readableWith(s).length < files.length);
  if (!survivor) throw new Error('no host leaves both readable and unreadable files');
  const readable = readableWith(survivor);
  const lost = files.filter((f) => !readable.includes(f));
  const killed = cluster.storage.filter((s) => s !== survivor);
  // The disks agree with the name server on what the survivor holds.
  const survivorDisk = await chunksOnDisk(survivor.dataDir);
  for (const f of readable) for (const c of infos.get(f.path)!.chunks) t.true(survivorDisk.has(c.hash));

  await Promise.all(killed.map((s) => cluster.killStorage(s.n)));
  const killedAt = Date.now();
  t.log(`killed ${killed.map((s) => s.name).join(' and ')}; ${survivor.name} holds a copy of every chunk of ${readable.length} of ${files.length} files`);

  // Right away (before the name server calls them dead) and once they are dead: the files with a live copy
  // of every chunk read whole; the others fail with an error, promptly.
  const check = async (when: string): Promise<void> => {
    for (const f of readable) {
      const started = Date.now();
      const r = await within(30_000, `reading ${f.path}`, agent.read(f.path)).catch((err: Error) => ({ sha: err.message, size: -1 }));
      t.is(r.sha, f.sha, `${when}: ${f.path} reads whole (${Date.now() - started} ms)`);
    }
    for (const f of lost) {
      const started = Date.now();
      const code = await within(30_000, `reading ${f.path}`, errorCode(agent.read(f.path))).catch((err: Error) => err.message);
      const ms = Date.now() - started;
      t.true(code !== undefined && !code.includes('hung'), `${when}: ${f.path} fails (${code}, ${ms} ms)`);
      t.is(code, 'EIO', `${when}: ${f.path} fails with EIO`);
    }
  };
  await check('right after the kill');
  await cluster.waitFor('both to be dead', () => cluster.status(), (s) => s.storage.dead === 2, 30_000, 100);
  t.log(`both dead ${Date.now() - killedAt} ms after the kill`);
  await check('with both dead');
  const outage = await cluster.status();
  t.true(outage.unavailable > 0, 'the name server counts chunks without a live copy');
  // A write with one server left is acknowledged with the one copy it can have.
  const during = { ...(await agent.write('/d/during.bin', 2 * MiB + 5)), at: Date.now() };
  files.push(during);
  t.deepEqual(await unreadable(cluster, [during]), []);

  // They come back: every chunk gets its two copies again, and every file reads whole.
  const backAt = Date.now();
  await Promise.all(killed.map((s) => cluster.startStorage(s.n)));
  await cluster.waitAlive(3, 30_000);
  await waitDisksExact(cluster, files.map((f) => f.path), 60_000);
  t.log(`full replication ${Date.now() - backAt} ms after the restart`);
  const status = await cluster.status();
  t.is(status.underReplicated + status.overReplicated + status.unavailable, 0);
  t.is(status.storage.alive, 3);
  for (const f of files) t.true((await cluster.info(f.path)).fullyReplicated, f.path);
  t.deepEqual(await unreadable(cluster, files), []);
  t.deepEqual(await badChunks(cluster), {});
});
