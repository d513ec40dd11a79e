import test from 'ava';
import { DfsClient } from '../client/dfs-client.js';
import { DfsError } from '../protocol/errors.js';
import { nameApi } from '../protocol/name-api.js';
import { bufferSource, readAll, sha256Hex, sleep, startCluster } from './harness.js';
import { between, copiesOnDisk, diskSnapshots, randomBlob, type Blob } from './store-checks.js';

const KiB = 1024;
const CLIENTS = 8;
const ROUNDS = 3;

test('8 concurrent clients: own files intact, a shared file ends as exactly the last committed version, readers never see a mix', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K'] });
  const chunkSize = 64 * KiB;
  await cluster.client.ns.call(nameApi.mkdir, { path: '/own' });
  const clients = Array.from({ length: CLIENTS }, () => new DfsClient({ nameServerUrl: cluster.url, secret: cluster.secret }));
  const own = new Map<string, Blob>();
  const shared: { client: number; round: number; blob: Blob; version: number }[] = [];
  const versions = new Set<string>();

  // Slow readers of the shared file while it is rewritten: each read must be one whole version.
  let writing = true;
  let firstAcked = Infinity;
  const reads = { whole: 0, empty: 0, failed: 0, mixed: [] as string[], unexpected: [] as string[] };
  const readers = Array.from({ length: 2 }, async () => {
    const reader = new DfsClient({ nameServerUrl: cluster.url, secret: cluster.secret, parallel: 1 });
    while (writing) {
      const start = Date.now();
      try {
        const parts: Buffer[] = [];
        for await (const part of reader.readFile('/shared.bin')) {
          parts.push(part);
          await sleep(500); // a slow consumer: the version it started on is replaced meanwhile
        }
        const sha = sha256Hex(Buffer.concat(parts));
        if (versions.has(sha)) reads.whole += 1;
        // Created but not yet committed: empty, until the first commit is acknowledged.
        else if (parts.every((p) => p.length === 0) && start < firstAcked) reads.empty += 1;
        else reads.mixed.push(sha);
        await sleep(20);
      } catch (err) {
        // Not there yet, or the version it started on was replaced and collected mid-read: an error, never
        // wrong bytes. Anything else is a failure of its own.
        const message = (err as Error).message;
        if ((err instanceof DfsError && err.code === 'ENOENT') || message.includes('replaced while it was being read')) reads.failed += 1;
        else reads.unexpected.push(message);
        await sleep(20);
      }
    }
  });
  t.teardown(async () => {
    writing = false;
    await Promise.all(readers);
  });

  await Promise.all(
    clients.map(async (client, i) => {
      for (let round = 0; round < ROUNDS; round++) {
        const mine = randomBlob(between(1, 300 * KiB));
        const theirs = randomBlob(5 * chunkSize + between(1, chunkSize)); // six chunks
        versions.add(theirs.sha);
        const path = `/own/client${i}-round${round}.bin`;
        const [, attr] = await Promise.all([
          client.writeFile(path, bufferSource(mine.data)),
          client.writeFile('/shared.bin', bufferSource(theirs.data)),
        ]);
        firstAcked = Math.min(firstAcked, Date.now());
        own.set(path, mine);
        shared.push({ client: i, round, blob: theirs, version: attr.version });
      }
    }),
  );
  writing = false;
  await Promise.all(readers);

  t.is(shared.length, CLIENTS * ROUNDS);
  const committed = shared.map((w) => w.version);
  t.is(new Set(committed).size, committed.length, 'every commit of the shared file got its own version');
  const last = shared.reduce((a, b) => (b.version > a.version ? b : a));
  const final = sha256Hex(await readAll(cluster.client, '/shared.bin'));
  t.true(versions.has(final), 'the shared file is one of the written versions, not a mix');
  t.is(final, last.blob.sha, `the shared file is the last committed version (client ${last.client}, round ${last.round}, version ${last.version})`);
  const attr = await cluster.client.stat('/shared.bin');
  t.is(attr.version, last.version);
  t.is(attr.size, last.blob.data.length);

  for (const [path, blob] of own) t.is(sha256Hex(await readAll(cluster.client, path)), blob.sha, path);

  t.log(`slow reads of the shared file while it was rewritten: ${reads.whole} whole versions, ${reads.empty} empty (before the first commit), ${reads.failed} failed, ${reads.mixed.length} mixed`);
  t.deepEqual(reads.mixed, [], 'no read returned a mix of versions');
  t.deepEqual(reads.unexpected, [], 'reads failed only for want of the file or of the version they started on');
  t.true(reads.whole + reads.failed > 0, 'the readers did read while the file was rewritten');

  // The replaced versions are collected; what is left is exactly what the files use, twice each (but for
  // small files' chunks, which the name server keeps).
  const used = new Set<string>();
  for (const path of [...own.keys(), '/shared.bin']) for (const c of (await cluster.client.info(path)).chunks) if (c.data === undefined) used.add(c.hash);
  await cluster.waitFor(
    'the disks to hold exactly the used chunks, twice each',
    () => diskSnapshots(cluster),
    (disks) => {
      const copies = copiesOnDisk(disks);
      return copies.size === used.size && [...used].every((h) => copies.get(h) === 2);
    },
    30_000,
  );
  t.pass();
});

test('a file info read while commits land pairs the attributes with the chunk list of the same version', async (t) => {
  const cluster = await startCluster(t);
  const client = cluster.client;
  // Two chunk lists the cluster already holds, of different sizes: commits of them move no bytes.
  await client.writeFile('/short', bufferSource(randomBlob(1_000).data));
  await client.writeFile('/long', bufferSource(randomBlob(3_000).data));
  const lists = [(await client.info('/short')).chunks, (await client.info('/long')).chunks].map((chunks) => chunks.map((c) => ({ hash: c.hash, size: c.size })));
  await client.writeFile('/f', bufferSource(Buffer.alloc(0)));
  const sizeOf = (list: { size: number }[]): number => list.reduce((sum, c) => sum + c.size, 0);
  let committing = true;
  const mismatches: string[] = [];
  let reads = 0;
  const readers = Array.from({ length: 6 }, async () => {
    while (committing) {
      const info = await client.info('/f');
      reads++;
      const listed = info.chunks.reduce((sum, c) => sum + c.size, 0);
      if (info.attr.size !== listed) mismatches.push(`version ${info.attr.version}: size ${info.attr.size}, chunks of ${listed} bytes`);
    }
  });
  try {
    for (let i = 0; i < 300; i++) {
      const list = lists[i % 2]!;
      await client.ns.call(nameApi.commit, { path: '/f', chunks: list, size: sizeOf(list) });
    }
  } finally {
    committing = false;
    await Promise.all(readers);
  }
  t.log(`${reads} reads during 300 commits`);
  t.true(reads > 300);
  t.deepEqual(mismatches.slice(0, 5), []);
});
