import test from 'ava';
import { forEachLimited } from '../common/limit.js';
import { nameApi } from '../protocol/name-api.js';
import { bufferSource, readAll, sha256Hex, sleep, startCluster } from './harness.js';
import { between, chunkSnapshot, copiesOnDisk, diskSnapshots, errorCode, randomBlob, type Blob } from './store-checks.js';

const MiB = 1024 * 1024;

// Each test runs its own cluster; one at a time keeps the disk and the two cores from being swamped.

test.serial('a 100 MiB file round-trips by SHA-256, and a server-side copy adds no chunk file anywhere', async (t) => {
  const cluster = await startCluster(t);
  const client = cluster.client;
  const chunkSize = await client.chunkSize();
  const file = randomBlob(100 * MiB + 12_345); // 26 chunks, the last one short

  await client.writeFile('/big.bin', bufferSource(file.data));
  const info = await client.info('/big.bin');
  t.is(info.attr.size, file.data.length);
  t.is(info.chunks.length, Math.ceil(file.data.length / chunkSize));
  t.true(info.chunks.length > 1);
  t.true(info.fullyReplicated);
  t.is(sha256Hex(await readAll(client, '/big.bin')), file.sha);

  const before = await diskSnapshots(cluster);
  const copies = copiesOnDisk(before);
  for (const chunk of info.chunks) t.is(copies.get(chunk.hash), 2, `chunk ${chunk.hash} is on ${copies.get(chunk.hash) ?? 0} disks`);
  t.is([...copies.keys()].length, info.chunks.length, 'nothing but the file is on the disks');

  await client.ns.call(nameApi.copy, { from: '/big.bin', to: '/copy.bin' });
  const copyInfo = await client.info('/copy.bin');
  t.not(copyInfo.attr.ino, info.attr.ino, 'the copy is a file of its own');
  t.deepEqual(
    copyInfo.chunks.map((c) => c.hash),
    info.chunks.map((c) => c.hash),
    'the copy shares the chunks',
  );
  t.deepEqual(await diskSnapshots(cluster), before, 'a copy writes no chunk file');

  // The copy's references keep every chunk when the original goes.
  await client.ns.call(nameApi.unlink, { path: '/big.bin' });
  await sleep(cluster.options.deleteGraceMs + 10 * cluster.options.healthIntervalMs);
  t.is((await cluster.status()).pendingDeletes, 0);
  t.deepEqual(await diskSnapshots(cluster), before, 'deleting the original deletes no chunk its copy uses');
  t.is(sha256Hex(await readAll(client, '/copy.bin')), file.sha, 'the copy reads back with the same SHA-256');
});

test.serial('renaming a directory of 100 files touches no chunk file, and the files read back under the new path', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K'] });
  const client = cluster.client;
  await client.ns.call(nameApi.mkdir, { path: '/project/src', parents: true });
  await client.ns.call(nameApi.mkdir, { path: '/archive' });
  const files = new Map<string, Blob>();
  for (let i = 0; i < 100; i++) files.set(`file-${String(i).padStart(3, '0')}.dat`, randomBlob(between(1, 200 * 1024)));
  await forEachLimited([...files], 8, async ([name, blob]) => {
    await client.writeFile(`/project/src/${name}`, bufferSource(blob.data));
  });
  await cluster.waitConverged();
  const before = await diskSnapshots(cluster);
  const statusBefore = await cluster.status();
  t.true(before.some((disk) => disk.size > 0));

  await client.ns.call(nameApi.rename, { from: '/project/src', to: '/archive/old-src' });
  // Long enough for a wrongly dropped reference to be collected, and for a few repair passes.
  await sleep(cluster.options.deleteGraceMs + 10 * cluster.options.healthIntervalMs);

  t.deepEqual(await diskSnapshots(cluster), before, 'no chunk file was added, removed or rewritten');
  const statusAfter = await cluster.status();
  t.deepEqual([statusAfter.files, statusAfter.chunks, statusAfter.bytes, statusAfter.pendingDeletes], [statusBefore.files, statusBefore.chunks, statusBefore.bytes, 0]);
  t.is(await errorCode(client.stat('/project/src')), 'ENOENT');
  const listing = await client.ns.call(nameApi.list, { path: '/archive/old-src' });
  t.deepEqual(listing.entries.map((e) => e.name).sort(), [...files.keys()].sort());
  await forEachLimited([...files], 8, async ([name, blob]) => {
    t.is(sha256Hex(await readAll(client, `/archive/old-src/${name}`)), blob.sha, name);
  });
  t.deepEqual(await diskSnapshots(cluster), before, 'reading wrote nothing');
});

test.serial('a delete removes the chunks from every holder, including a server that was down during it', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '256K'] });
  const client = cluster.client;
  const doomed = randomBlob(3 * MiB + 1_000); // 13 chunks
  const keeper = randomBlob(MiB + 7);
  await client.writeFile('/doomed.bin', bufferSource(doomed.data));
  await client.writeFile('/keeper.bin', bufferSource(keeper.data));
  const doomedChunks = (await client.info('/doomed.bin')).chunks.map((c) => c.hash);
  const keeperChunks = (await client.info('/keeper.bin')).chunks.map((c) => c.hash);

  const disks = await diskSnapshots(cluster);
  const copies = copiesOnDisk(disks);
  for (const hash of [...doomedChunks, ...keeperChunks]) t.is(copies.get(hash), 2);
  // The server down during the delete: the one holding most of the doomed file.
  const held = disks.map((disk) => doomedChunks.filter((h) => disk.has(h)).length);
  const down = held.indexOf(Math.max(...held));
  const downDisk = cluster.storage[down]!.dataDir;
  const live = cluster.storage.filter((s) => s.index !== down);
  t.true(held[down]! > 0);

  await cluster.stopStorage(down);
  await client.ns.call(nameApi.unlink, { path: '/doomed.bin' });
  t.is(await errorCode(client.stat('/doomed.bin')), 'ENOENT');

  await cluster.waitFor(
    'the live servers to delete the doomed chunks',
    async () => Promise.all(live.map((s) => chunkSnapshot(s.dataDir))),
    (snaps) => snaps.every((disk) => doomedChunks.every((h) => !disk.has(h))),
    20_000,
  );
  const stillThere = doomedChunks.filter((h) => disks[down]!.has(h));
  const downNow = await chunkSnapshot(downDisk);
  t.deepEqual(
    stillThere.filter((h) => downNow.has(h)),
    stillThere,
    'the stopped server still holds its copies: it could not be reached',
  );
  t.true((await cluster.status()).pendingDeletes >= stillThere.length, 'its deletes wait in the queue');

  await cluster.startStorage(down);
  const after = await cluster.waitFor(
    'the restarted server to delete its copies',
    () => chunkSnapshot(downDisk),
    (disk) => doomedChunks.every((h) => !disk.has(h)),
    20_000,
  );
  t.true(doomedChunks.every((h) => !after.has(h)));
  await cluster.waitFor('the delete queue to empty', () => cluster.status(), (s) => s.pendingDeletes === 0, 20_000);

  // Only the doomed file's chunks went.
  await cluster.waitConverged();
  const end = copiesOnDisk(await diskSnapshots(cluster));
  for (const hash of keeperChunks) t.is(end.get(hash), 2, `keeper chunk ${hash}`);
  t.deepEqual([...end.keys()].sort(), [...new Set(keeperChunks)].sort(), 'nothing but the kept file is left on the disks');
  t.is(sha256Hex(await readAll(client, '/keeper.bin')), keeper.sha);
});
