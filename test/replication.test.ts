import { randomBytes } from 'node:crypto';
import test from 'ava';
import { bufferSource, chunkFiles, readAll, sha256Hex, startCluster } from './harness.js';

test('a put returns only once every chunk is on exactly 2 of 3 storage servers', async (t) => {
  const cluster = await startCluster(t);
  const data = randomBytes(9 * 1024 * 1024 + 17); // three chunks, the last one short
  await cluster.client.writeFile('/three-chunks.bin', bufferSource(data));
  const info = await cluster.client.info('/three-chunks.bin');
  t.is(info.chunks.length, 3);
  const held = await Promise.all(cluster.storage.map((s) => chunkFiles(s.dataDir)));
  for (const chunk of info.chunks) {
    const holders = held.filter((files) => files.has(chunk.hash)).length;
    t.is(holders, 2, `chunk ${chunk.hash} is on ${holders} servers`);
  }
  t.true(info.fullyReplicated);
  t.is(sha256Hex(await readAll(cluster.client, '/three-chunks.bin')), sha256Hex(data));
});
