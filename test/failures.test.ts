import test from 'ava';
import { forEachLimited } from '../common/limit.js';
import { nameApi, type FileInfo } from '../protocol/name-api.js';
import { bufferSource, cliEnv, readAll, runCli, sha256Hex, sleep, startCluster, type TestCluster } from './harness.js';
import { between, chunkSnapshot, copiesOnDisk, diskSnapshots, errorCode, randomBlob, referencedChunks, type Blob } from './store-checks.js';

const KiB = 1024;

/** The state the name server gives a storage server now. */
async function stateOf(cluster: TestCluster, id: string): Promise<string | undefined> {
  return (await cluster.status()).servers.find((s) => s.id === id)?.state;
}

/** Reads a file over and over until stopped, checking every read's SHA-256 and noting when each ran. */
function readLoop(cluster: TestCluster, path: string, sha: string) {
  let stopped = false;
  const good: { start: number; end: number }[] = [];
  const failures: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      const start = Date.now();
      try {
        const got = sha256Hex(await readAll(cluster.client, path));
        if (got === sha) good.push({ start, end: Date.now() });
        else failures.push(`a read at ${start} got SHA-256 ${got}`);
      } catch (err) {
        failures.push(`a read at ${start} failed: ${(err as Error).message}`);
      }
    }
  })();
  return {
    reads: () => good.length,
    /** Good reads that ran (at least partly) between two moments. */
    during: (from: number, to: number) => good.filter((r) => r.end >= from && r.start <= to).length,
    async stop(): Promise<{ reads: number; failures: string[] }> {
      stopped = true;
      await loop;
      return { reads: good.length, failures };
    },
  };
}

// One cluster at a time: the death-detection time is measured, and should not be measured on a machine
// this file's other test is loading too.

test.serial('kill -9 of a storage server: dead within the configured checks, the file stays readable, chunks get back to 2 copies', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '256K'] });
  const { healthIntervalMs, healthMisses } = cluster.options;
  const file = randomBlob(4 * 1024 * KiB + 5_000); // 17 chunks
  await cluster.client.writeFile('/hot.bin', bufferSource(file.data));
  const info = await cluster.client.info('/hot.bin');
  const hashes = info.chunks.map((c) => c.hash);

  const disks = await diskSnapshots(cluster);
  const held = disks.map((disk) => hashes.filter((h) => disk.has(h)).length);
  const victim = held.indexOf(Math.max(...held));
  const victimId = cluster.storage[victim]!.id;
  const live = cluster.storage.filter((s) => s.index !== victim);
  t.true(held[victim]! > 0, 'the victim holds part of the file');

  const reader = readLoop(cluster, '/hot.bin', file.sha);
  t.teardown(async () => void (await reader.stop())); // runs before the cluster's teardown, registered earlier
  await cluster.waitFor('a first read', async () => reader.reads(), (n) => n > 0);

  const killedAt = Date.now();
  await cluster.killStorage(victim);
  let deadAfterMs = -1;
  while (Date.now() - killedAt < 30_000) {
    if ((await stateOf(cluster, victimId)) === 'dead') {
      deadAfterMs = Date.now() - killedAt;
      break;
    }
    await sleep(25);
  }
  const configuredMs = healthIntervalMs * healthMisses;
  t.log(`storage server marked dead ${deadAfterMs} ms after kill -9 (health interval ${healthIntervalMs} ms × ${healthMisses} misses = ${configuredMs} ms)`);
  t.true(deadAfterMs >= 0, 'the killed server is marked dead');
  // Generous slack for a loaded machine; the point is "a few checks", not "a few retries of each".
  t.true(deadAfterMs <= 2 * configuredMs + 2_000, `dead after ${deadAfterMs} ms, configured ${configuredMs} ms`);

  await cluster.waitConverged();
  const convergedAt = Date.now();
  t.log(`back to 2 copies ${convergedAt - killedAt} ms after the kill`);
  const repaired = await cluster.client.info('/hot.bin');
  t.true(repaired.fullyReplicated);
  for (const chunk of repaired.chunks) {
    const ids = chunk.servers.map((s) => s.id);
    t.is(ids.length, 2, `chunk ${chunk.hash} has ${ids.length} live copies`);
    t.false(ids.includes(victimId), 'the dead server is not offered to readers');
  }
  // The CLI shows the same.
  const cli = await runCli(['info', '--json', '/hot.bin'], { env: cliEnv(cluster) });
  t.is(cli.code, 0, cli.stderr);
  const shown = JSON.parse(cli.stdout) as FileInfo;
  t.true(shown.fullyReplicated);
  t.true(shown.chunks.every((c) => c.servers.length === 2 && !c.servers.some((s) => s.id === victimId)));
  // And the disks: with two servers left, each holds every chunk.
  const liveDisks = await Promise.all(live.map((s) => chunkSnapshot(s.dataDir)));
  for (const hash of hashes) t.is(liveDisks.filter((disk) => disk.has(hash)).length, 2, `chunk ${hash} on the live disks`);

  // Reads went on through all of it.
  const readsAtRepair = reader.reads();
  await cluster.waitFor('reads after the repair', async () => reader.reads(), (n) => n >= readsAtRepair + 2);
  const duringDeath = reader.during(killedAt, killedAt + deadAfterMs);
  const duringRepair = reader.during(killedAt, convergedAt);
  const { reads, failures } = await reader.stop();
  t.log(`${reads} good whole-file reads in all, ${duringDeath} overlapping kill → dead, ${duringRepair} overlapping kill → repaired; ${failures.length} failed`);
  t.deepEqual(failures, [], 'every read returned the right bytes');
  t.true(duringDeath >= 1, 'the file was read while the server was dying');
});

test.serial('restoration: a server that missed overwrites and deletes drops its stale chunks; nothing lost, every chunk on exactly 2 disks', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--chunk-size', '64K'] });
  const client = cluster.client;
  await client.ns.call(nameApi.mkdir, { path: '/data' });
  const current = new Map<string, Blob>();
  const write = async (path: string, blob: Blob): Promise<void> => {
    await client.writeFile(path, bufferSource(blob.data));
    current.set(path, blob);
  };
  const paths = Array.from({ length: 12 }, (_, i) => `/data/f${i}.bin`);
  await forEachLimited(paths, 4, (path) => write(path, randomBlob(between(100 * KiB, 400 * KiB))));
  await cluster.waitConverged();

  const before = await diskSnapshots(cluster);
  const held = before.map((disk) => disk.size);
  const away = held.indexOf(Math.max(...held));
  const awayId = cluster.storage[away]!.id;

  await cluster.stopStorage(away);
  await cluster.waitFor('the stopped server to be dead', () => stateOf(cluster, awayId), (s) => s === 'dead');
  // While it is away: overwrite some files, delete others, add one.
  const overwritten = paths.slice(0, 4);
  const deleted = paths.slice(4, 8);
  await forEachLimited(overwritten, 4, (path) => write(path, randomBlob(between(100 * KiB, 400 * KiB))));
  for (const path of deleted) {
    await client.ns.call(nameApi.unlink, { path });
    current.delete(path);
  }
  await write('/data/new.bin', randomBlob(300 * KiB));
  await cluster.waitConverged();

  const referenced = await referencedChunks(client, current.keys());
  const stale = [...before[away]!.keys()].filter((h) => !referenced.has(h));
  t.true(stale.length > 0, 'the server that was away holds chunks no file uses any more');

  await cluster.startStorage(away);
  await cluster.waitAlive(3);
  const settled = await cluster.waitFor(
    'the disks to hold every referenced chunk exactly twice and nothing else',
    async () => ({ disks: await diskSnapshots(cluster), status: await cluster.status() }),
    ({ disks, status }) => {
      const copies = copiesOnDisk(disks);
      return (
        copies.size === referenced.size &&
        [...referenced].every((h) => copies.get(h) === 2) &&
        status.underReplicated === 0 &&
        status.overReplicated === 0 &&
        status.unavailable === 0 &&
        status.pendingDeletes === 0
      );
    },
    30_000,
  );
  const awayNow = settled.disks[away]!;
  t.deepEqual(
    stale.filter((h) => awayNow.has(h)),
    [],
    'the stale chunks are gone from the returning server',
  );
  t.true([...awayNow.keys()].every((h) => referenced.has(h)), 'it keeps only chunks that files use');
  const status = await cluster.status();
  t.is(status.storage.alive, 3);
  t.is(status.underReplicated, 0);
  t.is(status.overReplicated, 0);

  // Nothing lost: every current file reads back right, the deleted ones are gone.
  for (const [path, blob] of current) t.is(sha256Hex(await readAll(client, path)), blob.sha, path);
  for (const path of deleted) t.is(await errorCode(client.stat(path)), 'ENOENT', path);
  for (const path of current.keys()) t.true((await client.info(path)).fullyReplicated, path);
});
