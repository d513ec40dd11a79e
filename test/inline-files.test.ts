import test from 'ava';
import { nameApi } from '../protocol/name-api.js';
import { join } from 'node:path';
import { sha256Hex, bufferSource, readAll, startCluster } from './harness.js';
import { httpTrace, sh, startMount, TRACE_HTTP } from './mount-harness.js';
import { copiesOnDisk, databaseProblems, diskSnapshots, errorCode, randomBlob } from './store-checks.js';

// Small files are kept by the name server, in its database: written in one commit, read in the open that
// fetches the chunk list, and independent of storage servers.

const KiB = 1024;

test.serial('a small file is kept by the name server: no storage server holds it, and it is written and read with all of them down', async (t) => {
  const cluster = await startCluster(t);
  const client = cluster.client;
  t.is((await cluster.status()).inlineMax, 64 * KiB);
  const small = randomBlob(10 * KiB);
  await client.writeFile('/small.bin', bufferSource(small.data));
  const info = await client.info('/small.bin');
  t.is(info.chunks.length, 1);
  t.deepEqual(info.chunks[0]!.servers, []);
  t.is(info.chunks[0]!.data, small.data.toString('base64'));
  t.true(info.fullyReplicated);
  t.is(copiesOnDisk(await diskSnapshots(cluster)).size, 0, 'no chunk file on any storage server');
  const status = await cluster.status();
  t.is(status.underReplicated + status.unavailable, 0, 'a kept chunk needs no copies');

  for (let i = 0; i < cluster.storage.length; i++) await cluster.killStorage(i);
  await cluster.waitFor('every storage server dead', () => cluster.status(), (s) => s.storage.alive === 0);
  t.is(sha256Hex(await readAll(client, '/small.bin')), small.sha, 'read with no storage server alive');
  const another = randomBlob(64 * KiB);
  await client.writeFile('/another.bin', bufferSource(another.data));
  t.is(sha256Hex(await readAll(client, '/another.bin')), another.sha, 'written with no storage server alive');
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('a kept file that outgrows the limit moves to storage servers, and its kept bytes are collected', async (t) => {
  const cluster = await startCluster(t);
  const client = cluster.client;
  const small = randomBlob(64 * KiB);
  await client.writeFile('/f.bin', bufferSource(small.data));
  // The same bytes under a second name are one kept chunk.
  await client.writeFile('/same.bin', bufferSource(small.data));
  t.is((await cluster.status()).chunks, 1);

  const big = randomBlob(64 * KiB + 1);
  await client.writeFile('/f.bin', bufferSource(big.data));
  const info = await client.info('/f.bin');
  t.is(info.chunks[0]!.data, undefined);
  t.is(info.chunks[0]!.servers.length, 2);
  t.is(copiesOnDisk(await diskSnapshots(cluster)).get(info.chunks[0]!.hash), 2);
  t.is(sha256Hex(await readAll(client, '/f.bin')), big.sha);

  // The kept chunk stays while /same.bin references it, and goes with its last reference.
  await client.ns.call(nameApi.unlink, { path: '/same.bin' });
  await cluster.waitFor('the kept chunk collected', () => cluster.status(), (s) => s.chunks === 1);
  t.is(sha256Hex(await readAll(client, '/f.bin')), big.sha);
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('bytes to keep are checked against their hash; over the limit, or where the cluster keeps none, the chunk must be uploaded', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--inline-max', '4K'] });
  const client = cluster.client;
  await client.ns.call(nameApi.create, { path: '/f' });
  const blob = randomBlob(1000);
  const chunks = [{ hash: blob.sha, size: 1000 }];
  const other = randomBlob(1000).data.toString('base64');
  t.is(await errorCode(client.ns.call(nameApi.commit, { path: '/f', chunks, size: 1000, inline: [{ hash: blob.sha, data: other }] })), 'HASH_MISMATCH');
  const stranger = randomBlob(10);
  t.is(await errorCode(client.ns.call(nameApi.commit, { path: '/f', chunks, size: 1000, inline: [{ hash: stranger.sha, data: stranger.data.toString('base64') }] })), 'EINVAL');
  // Over the limit, the bytes are not kept: the chunk is missing like any new one (a writer that learnt the
  // limit before it was lowered then uploads it).
  const large = randomBlob(5000);
  t.is(await errorCode(client.ns.call(nameApi.commit, { path: '/f', chunks: [{ hash: large.sha, size: 5000 }], size: 5000, inline: [{ hash: large.sha, data: large.data.toString('base64') }] })), 'CHUNKS_MISSING');
  t.is((await client.stat('/f')).size, 0, 'a refused commit changes nothing');
  // A file over this cluster's limit goes to storage servers, one under it stays here.
  await client.writeFile('/large', bufferSource(large.data));
  t.is((await client.info('/large')).chunks[0]!.servers.length, 2);
  await client.writeFile('/small', bufferSource(blob.data));
  t.deepEqual((await client.info('/small')).chunks[0]!.servers, []);

  const none = await startCluster(t, { nameServerArgs: ['--inline-max', '0'] });
  await none.client.ns.call(nameApi.create, { path: '/f' });
  t.is(await errorCode(none.client.ns.call(nameApi.commit, { path: '/f', chunks, size: 1000, inline: [{ hash: blob.sha, data: blob.data.toString('base64') }] })), 'CHUNKS_MISSING');
  await none.client.writeFile('/small', bufferSource(blob.data));
  t.is((await none.client.info('/small')).chunks[0]!.servers.length, 2, 'with --inline-max 0 a small file is on storage servers');
});

test.serial('a mount whose name server stops keeping small files sends them to storage servers, after one refused commit', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster, [], TRACE_HTTP);
  const commits = (): number => httpTrace(mount, /^\/fs\/commit$/).length;
  const write = async (name: string): Promise<void> => {
    const r = await sh(`head -c 3000 /dev/urandom > ${join(mount.dir, name)}`);
    t.is(r.code, 0, r.stderr);
  };
  await write('a');
  t.deepEqual((await cluster.client.info('/a')).chunks[0]!.servers, []);

  // The same database, the same port: the mount carries on, not knowing the limit changed.
  cluster.options.nameServerArgs = ['--inline-max', '0'];
  await cluster.nameServer.stop();
  await cluster.startNameServer();
  await cluster.waitAlive(cluster.options.storageServers);
  let before = commits();
  await write('b');
  t.is((await cluster.client.info('/b')).chunks[0]!.servers.length, 2, 'b is on two storage servers');
  t.is(commits() - before, 2, "b's bytes were refused once, then uploaded and committed");
  before = commits();
  await write('c');
  t.is((await cluster.client.info('/c')).chunks[0]!.servers.length, 2);
  t.is(commits() - before, 1, 'c went to storage servers at once: the mount learnt the new limit');
  // The file kept before the change is still read from the name server.
  t.is((await sh(`wc -c < ${join(mount.dir, 'a')}`)).stdout.trim(), '3000');
});
