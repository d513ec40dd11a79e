import test from 'ava';
import { DfsClient } from '../client/dfs-client.js';
import { nameApi } from '../protocol/name-api.js';
import { bufferSource, readAll, sha256Hex, startCluster, type TestCluster } from './harness.js';
import { between, databaseProblems, errorCode, randomBlob, type Blob } from './store-checks.js';

const KiB = 1024;
const WRITERS = 4;

interface Write {
  path: string;
  blob: Blob;
}

/**
 * Writers, each with its own client, writing new files back to back until told to stop or until a write
 * fails. A write counts as acknowledged only once writeFile resolved.
 */
function burst(cluster: TestCluster, round: number) {
  const acked: Write[] = [];
  const unacked: (Write & { error: string })[] = [];
  let stopped = false;
  const writers = Array.from({ length: WRITERS }, async (_, i) => {
    const client = new DfsClient({ nameServerUrl: cluster.url, secret: cluster.secret });
    for (let j = 0; !stopped; j++) {
      const write = { path: `/w${i}/r${round}-f${j}.bin`, blob: randomBlob(between(1, 300 * KiB)) };
      try {
        await client.writeFile(write.path, bufferSource(write.blob.data));
        acked.push(write);
      } catch (err) {
        unacked.push({ ...write, error: (err as Error).message });
        return;
      }
    }
  });
  return {
    acked,
    unacked,
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(writers);
    },
  };
}

// `data` answers creates before their fsync: a crash of the process must still lose none of them.
for (const sync of ['full', 'data'] as const) {
  test(`kill -9 of the name server during a burst of writes loses no acknowledged write and leaves a consistent database (--sync ${sync})`, async (t) => {
    const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K', '--sync', sync] });
    for (let i = 0; i < WRITERS; i++) await cluster.client.ns.call(nameApi.mkdir, { path: `/w${i}` });
    const acked: Write[] = [];
    const unacked: (Write & { error: string })[] = [];

    for (let round = 0; round < 2; round++) {
      const writes = burst(cluster, round);
      t.teardown(() => writes.stop());
      const target = 12 + between(0, 12);
      await cluster.waitFor('writes before the kill', async () => writes.acked.length, (n) => n >= target);
      await cluster.killNameServer();
      await writes.stop();
      acked.push(...writes.acked);
      unacked.push(...writes.unacked);
      t.log(`round ${round}: ${writes.acked.length} writes acknowledged before the kill, ${writes.unacked.length} cut off`);
      t.true(writes.unacked.length > 0, 'the kill cut off writes in flight');

      await cluster.startNameServer(); // same port, same database
      await cluster.waitAlive(3);
    }

    // Every acknowledged write is there, with its bytes.
    const client = cluster.client;
    for (const { path, blob } of acked) {
      const attr = await client.stat(path);
      t.is(attr.size, blob.data.length, path);
      t.is(sha256Hex(await readAll(client, path)), blob.sha, path);
    }
    // A write cut off is absent, or an empty file (created, never committed), or whole: never torn.
    for (const { path, blob, error } of unacked) {
      const code = await errorCode(client.stat(path));
      if (code === 'ENOENT') continue;
      t.is(code, undefined, `${path}: ${code}`);
      const attr = await client.stat(path);
      if (attr.size === 0) continue;
      t.is(sha256Hex(await readAll(client, path)), blob.sha, `${path} (cut off by: ${error})`);
    }

    // Through the API: every file's every chunk has a live holder, and replication converges.
    await cluster.waitConverged();
    for (let i = 0; i < WRITERS; i++) {
      const { entries } = await client.ns.call(nameApi.list, { path: `/w${i}` });
      for (const entry of entries) {
        const info = await client.info(`/w${i}/${entry.name}`);
        // Each chunk on two storage servers, or kept by the name server (a small file's).
        t.true(
          info.chunks.every((c) => c.servers.length === 2 || (c.data !== undefined && c.servers.length === 0)),
          `/w${i}/${entry.name}: ${JSON.stringify(info.chunks.map((c) => c.servers.length))}`,
        );
      }
    }
    // And in the database itself (read-only, beside the running name server).
    t.deepEqual(await databaseProblems(cluster.dbFile), []);
  });
}
