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
import { bufferSource, readAll, sha256Hex, startCluster } from './harness.js';
import { pollUntil } from './poll.js';

const CHUNK = 64 * 1024;

test('bytes of an open file that were already stored read back after the cache let go of them, before the commit', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K', '--inline-max', '0'] });
  const client = cluster.client;
  const shared = randomBytes(CHUNK);
  await client.writeFile('/a', bufferSource(shared));

  // A new file whose first chunk is one the cluster holds already (a copy of a file): not uploaded again.
  const attr = await client.ns.call(nameApi.create, { path: '/b' });
  const cache = new ChunkCache(CHUNK); // room for one chunk
  const backend = new MountBackend(client, cache, CHUNK, 0, 1, silentLogger);
  const file = new OpenFile(attr.ino, '/b', attr, [], backend);
  await file.write(0, shared);
  await pollUntil('the first chunk staged', async () => cache.get(sha256Hex(shared)) !== undefined, (staged) => staged);
  // The second chunk's upload takes the cache's only place.
  const other = randomBytes(CHUNK);
  await file.write(CHUNK, other);
  await pollUntil('the second chunk staged', async () => cache.get(sha256Hex(other)) !== undefined, (staged) => staged);
  t.is(cache.get(sha256Hex(shared)), undefined, 'the first chunk is out of the cache');

  // /b lists no chunk yet: the bytes come from where the cluster said it held them when they were staged.
  const out = Buffer.alloc(CHUNK);
  t.is(await file.read(0, CHUNK, out), CHUNK);
  t.true(out.equals(shared));

  // With no location at all, by its hash (the name server is asked where it is).
  const bare = new MountBackend(client, new ChunkCache(CHUNK), CHUNK, 0, 1, silentLogger);
  t.true((await bare.readChunk(sha256Hex(shared), [], '/b')).equals(shared));

  await file.flush();
  t.true((await readAll(client, '/b')).equals(Buffer.concat([shared, other])));
});
