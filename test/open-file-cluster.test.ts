/**
 * The mount's open files over its real backend (chunk cache, uploads, commits) against real name and storage
 * server processes, without FUSE: the kernel's page cache would answer the reads these tests are about.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../common/log.js';
import { MountBackend } from '../mount/backend.js';
import { ChunkCache } from '../mount/chunk-cache.js';
import { OpenFile } from '../mount/open-file.js';
import { nameApi } from '../protocol/name-api.js';
import { bufferSource, readAll, sha256Hex, sleep, startCluster, type TestCluster } from './harness.js';
import { pollUntil } from './poll.js';

const CHUNK = 64 * 1024;

/**
 * A new file `path` open over a backend whose cache holds one chunk, with `first` then `second` written as
 * its two chunks, each staged (hashed, uploaded or found stored) before the next: the cache holds `second`
 * only. Returns the file, its backend, and the hashes it uploaded.
 */
async function writtenPastTheCache(cluster: TestCluster, path: string, first: Buffer, second: Buffer): Promise<{ file: OpenFile; backend: MountBackend; uploaded: string[] }> {
  const client = cluster.client;
  const attr = await client.ns.call(nameApi.create, { path });
  const cache = new ChunkCache(CHUNK);
  const backend = new MountBackend(client, cache, CHUNK, 0, 1, silentLogger);
  const uploaded: string[] = [];
  const upload = backend.upload.bind(backend);
  backend.upload = (hash, data, options) => {
    uploaded.push(hash);
    return upload(hash, data, options);
  };
  const file = new OpenFile(attr.ino, path, attr, [], backend);
  await file.write(0, first);
  await pollUntil('the first chunk staged', async () => cache.get(sha256Hex(first)) !== undefined, (staged) => staged);
  await file.write(CHUNK, second);
  await pollUntil('the second chunk staged', async () => cache.get(sha256Hex(second)) !== undefined, (staged) => staged);
  return { file, backend, uploaded };
}

async function readBack(file: OpenFile, offset: number): Promise<Buffer> {
  const out = Buffer.alloc(CHUNK);
  const n = await file.read(offset, CHUNK, out);
  return out.subarray(0, n);
}

test('bytes of an open file that were already stored are not uploaded again, and read back after the cache let go of them, before the commit', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K', '--inline-max', '0'] });
  const shared = randomBytes(CHUNK);
  await cluster.client.writeFile('/a', bufferSource(shared));

  const other = randomBytes(CHUNK);
  const { file, uploaded } = await writtenPastTheCache(cluster, '/b', shared, other);
  t.deepEqual(uploaded, [sha256Hex(other)], 'only the new chunk was uploaded');
  // /b lists no chunk yet: the bytes come from where the cluster said it held them when they were staged.
  t.true((await readBack(file, 0)).equals(shared));

  // With no location at all, by its hash (the name server is asked where it is).
  const bare = new MountBackend(cluster.client, new ChunkCache(CHUNK), CHUNK, 0, 1, silentLogger);
  t.true((await bare.readChunk(sha256Hex(shared), [], '/b')).equals(shared));

  await file.flush();
  t.true((await readAll(cluster.client, '/b')).equals(Buffer.concat([shared, other])));
});

test('a chunk stored for a file since deleted, found by an open file, is kept for its commit past the deleted file\'s grace', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K', '--inline-max', '0'], deleteGraceMs: 1_500 });
  const shared = randomBytes(CHUNK);
  await cluster.client.writeFile('/a', bufferSource(shared));
  await cluster.client.ns.call(nameApi.unlink, { path: '/a' });

  // Written within the deleted file's grace: its chunk is still on the servers, referenced by nothing.
  const other = randomBytes(CHUNK);
  const { file, uploaded } = await writtenPastTheCache(cluster, '/b', shared, other);
  t.deepEqual(uploaded, [sha256Hex(other)], 'the chunk the deleted file left was not uploaded again');
  // Past the deleted file's grace: the collector has had its turn at the chunk, and its cached bytes are gone.
  await sleep(3_000);
  t.true((await readBack(file, 0)).equals(shared));
  await file.flush();
  t.true((await readAll(cluster.client, '/b')).equals(Buffer.concat([shared, other])));
});

test('a chunk the name server keeps as a small file\'s bytes is uploaded when a large file holds it, and reads back from storage', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K', '--inline-max', '64K'] });
  const shared = randomBytes(CHUNK);
  await cluster.client.writeFile('/small', bufferSource(shared)); // one chunk, kept by the name server

  const other = randomBytes(CHUNK);
  const { file, uploaded } = await writtenPastTheCache(cluster, '/b', shared, other);
  t.true(uploaded.includes(sha256Hex(shared)), 'the kept chunk was uploaded to storage servers');
  t.true((await readBack(file, 0)).equals(shared));
  await file.flush();
  t.true((await readAll(cluster.client, '/b')).equals(Buffer.concat([shared, other])));
  t.true((await readAll(cluster.client, '/small')).equals(shared));
});

test('a chunk a deleted file left only on servers since dead, stored again by an open file, is kept for its commit', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K', '--inline-max', '0'], deleteGraceMs: 3_000 });
  const shared = randomBytes(CHUNK);
  await cluster.client.writeFile('/a', bufferSource(shared));
  const holders = new Set((await cluster.client.info('/a')).chunks[0]!.servers.map((s) => s.id));
  await cluster.client.ns.call(nameApi.unlink, { path: '/a' });
  // Every copy's server dies: the chunk is known, referenced by nothing, and nowhere to read.
  for (const s of cluster.storage) if (holders.has(s.id)) await cluster.killStorage(s.index);
  await cluster.waitFor('their servers dead', () => cluster.status(), (status) => status.storage.dead === holders.size);

  // Within the deleted file's grace, an open file stores the same bytes again, on the server left.
  const other = randomBytes(CHUNK);
  const { file, uploaded } = await writtenPastTheCache(cluster, '/b', shared, other);
  t.true(uploaded.includes(sha256Hex(shared)), 'stored again, as no copy could be read');
  // Past that grace, and past the 2 s for which a storage server refuses to delete a copy stored again.
  await sleep(5_000);
  t.true((await readBack(file, 0)).equals(shared));
  await file.flush();
  t.true((await readAll(cluster.client, '/b')).equals(Buffer.concat([shared, other])));
});
