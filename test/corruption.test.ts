import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { corruptChunk as corrupt } from './disk-chunks.js';
import { bufferSource, chunkFiles, readAll, sha256Hex, startCluster, type TestCluster } from './harness.js';

async function holdersOnDisk(cluster: TestCluster, hash: string): Promise<number[]> {
  const held = await Promise.all(cluster.storage.map((s) => chunkFiles(s.dataDir)));
  return held.flatMap((files, i) => (files.has(hash) ? [i] : []));
}

/** Whether the copy on disk hashes right. */
async function intact(dataDir: string, hash: string): Promise<boolean> {
  const data = await readFile(join(dataDir, 'chunks', hash.slice(0, 2), hash)).catch(() => undefined);
  return data !== undefined && sha256Hex(data) === hash;
}

test('a corrupt copy is read around, reported, removed and copied again from a good one', async (t) => {
  const cluster = await startCluster(t, { storageArgs: () => ['--scrub-rate', '0'] });
  const data = randomBytes(3 * 1024 * 1024);
  await cluster.client.writeFile('/f.bin', bufferSource(data));
  const [chunk] = (await cluster.client.info('/f.bin')).chunks;
  const hash = chunk!.hash;
  // Corrupt the copy readers try first.
  const first = cluster.storage.find((s) => s.id === chunk!.servers[0]!.id)!;
  await corrupt(first.dataDir, hash);
  t.false(await intact(first.dataDir, hash));

  t.is(sha256Hex(await readAll(cluster.client, '/f.bin')), sha256Hex(data), 'the read returns the right bytes from the other copy');
  // Reported, checked by the server, dropped, and copied again: two good copies, none bad, and the name
  // server counting both (a new copy is on disk a moment before the name server records it).
  await cluster.waitFor(
    'two good copies again, the bad one gone',
    async () => {
      const holders = await holdersOnDisk(cluster, hash);
      const good = await Promise.all(holders.map((i) => intact(cluster.storage[i]!.dataDir, hash)));
      return { holders: holders.length, good: good.filter(Boolean).length, recorded: (await cluster.client.info('/f.bin')).fullyReplicated };
    },
    (s) => s.holders === 2 && s.good === 2 && s.recorded,
  );
  const info = await cluster.client.info('/f.bin');
  t.true(info.fullyReplicated);
  for (const server of info.chunks[0]!.servers) {
    const handle = cluster.storage.find((s) => s.id === server.id)!;
    t.true(await intact(handle.dataDir, hash), `the copy the name server lists on ${server.id} is good`);
  }
});

test('the background scrub finds corruption in a chunk nobody reads, and repair restores the copy', async (t) => {
  const cluster = await startCluster(t, { storageArgs: () => ['--scrub-rate', '64M'] });
  const data = randomBytes(2 * 1024 * 1024);
  await cluster.client.writeFile('/cold.bin', bufferSource(data));
  const [chunk] = (await cluster.client.info('/cold.bin')).chunks;
  const victim = cluster.storage.find((s) => s.id === chunk!.servers[1]!.id)!;
  await corrupt(victim.dataDir, chunk!.hash);
  // No reads at all: only the scrub can find it.
  const status = await cluster.waitFor(
    'the scrub to find the corrupt copy and repair to copy the chunk again',
    async () => {
      const holders = await holdersOnDisk(cluster, chunk!.hash);
      const good = await Promise.all(holders.map((i) => intact(cluster.storage[i]!.dataDir, chunk!.hash)));
      return { good: good.filter(Boolean).length, bad: good.filter((g) => !g).length, status: await cluster.status() };
    },
    (s) => s.good === 2 && s.bad === 0 && s.status.underReplicated === 0,
    // The scrub may have read the chunk before it was corrupted; it rests 60 s between passes.
    100_000,
  );
  t.true(status.status.activity.copiesMade >= 1, 'repair made a copy');
  t.is(sha256Hex(await readAll(cluster.client, '/cold.bin')), sha256Hex(data));
});
