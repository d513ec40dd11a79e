import test from 'ava';
import type { FileInfo } from '../protocol/name-api.js';
import { chunksOnDisk, sleep } from './cluster/hosts.js';
import { busiestHolder, disks, errorCode, logLines, startNetCluster, unreadable, waitDisksExact, writeStream, type Written } from './cluster/fixture.js';

/**
 * Network faults between hosts: a storage host cut off the switch while writes stream in, and a host whose
 * link flaps faster than the name server's death timeout. Hosts are network namespaces (test/cluster/).
 */

const KiB = 1024;

function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

test.serial('a storage host cut off the network during a stream of writes: writes go on, repair copies its chunks, and once back it is restored without over-replication', async (t) => {
  const cluster = await startNetCluster(t, { nameExtra: ['--chunk-size', '256K', '--delete-grace', '300', '--upload-grace', '10000'] });
  const agent = cluster.agent;
  await agent.ns('mkdir', { path: '/base' });
  await agent.ns('mkdir', { path: '/stream' });
  const current = new Map<string, Written>();
  for (let i = 0; i < 12; i++) {
    const r = await agent.write(`/base/f${i}.bin`, between(300 * KiB, 900 * KiB));
    current.set(r.path, { ...r, at: Date.now() });
  }
  await cluster.waitConverged();
  const infos = await Promise.all([...current.keys()].map((p) => cluster.info(p)));
  const victim = busiestHolder(cluster, infos);
  const others = cluster.storage.filter((s) => s !== victim);

  const stream = writeStream(cluster, { writers: 3, dir: '/stream', minSize: 64 * KiB, maxSize: 700 * KiB });
  t.teardown(() => stream.stop());
  await cluster.waitFor('writes before the cut', async () => stream.acked.length, (n) => n >= 6, 60_000);

  const cutAt = Date.now();
  await cluster.cut(victim);
  await cluster.waitFor('the cut-off server to be dead', () => cluster.stateOf(victim), (s) => s === 'dead', 30_000, 100);
  const deadAt = Date.now();
  t.log(`${victim.name} (${victim.address}) cut off; dead in the name server's eyes after ${deadAt - cutAt} ms`);

  // While it is away: delete some files and overwrite others, so it comes back holding stale chunks. (An
  // overwrite, like any write, may stall on a connection the cut left hanging: they run alongside.)
  const overwritten = [...current.keys()].slice(0, 4);
  const deleted = [...current.keys()].slice(4, 8);
  for (const path of deleted) {
    await agent.ns('unlink', { path });
    current.delete(path);
  }
  const overwrites = Promise.all(overwritten.map(async (path) => current.set(path, { ...(await agent.write(path, between(300 * KiB, 900 * KiB))), at: Date.now() })));
  overwrites.catch(() => undefined);
  // Writes go on, on the other two hosts.
  const ackedAtDead = stream.acked.length;
  await cluster.waitFor('writes acknowledged while the host is cut off', async () => stream.ackedAfter(deadAt), (n) => n >= 12, 90_000);
  const repaired = await cluster.waitConverged(60_000);
  t.log(`repaired ${Date.now() - cutAt} ms after the cut; ${stream.ackedAfter(deadAt)} writes acknowledged since it was declared dead`);
  t.is(repaired.storage.dead, 1);
  for (const path of [...current.keys()].filter((p) => !overwritten.includes(p))) {
    const info = await cluster.info(path);
    t.true(info.fullyReplicated, `${path} has its copies on the two hosts left`);
    t.false(info.chunks.some((c) => c.servers.some((s) => s.id === victim.id)), `${path}: the cut-off host is not offered to readers`);
  }
  // Stale on the host that was away: its copies of the deleted files and of the overwritten files' old
  // versions (random bytes: no file can use them again). Writes in flight at the cut may also have left
  // chunks there that their later commits reference; those are not stale.
  const victimDisk = await chunksOnDisk(victim.dataDir);
  const replaced = new Set([...deleted, ...overwritten]);
  const oldChunks = new Set(infos.filter((i: FileInfo) => replaced.has(i.path)).flatMap((i) => i.chunks.map((c) => c.hash)));
  const stale = [...victimDisk].filter((h) => oldChunks.has(h));
  t.true(stale.length > 0, 'the cut-off host holds chunks that no file uses any more');

  const pluggedAt = Date.now();
  await cluster.plug(victim);
  await cluster.waitAlive(3, 30_000);
  t.log(`plugged back in; alive again after ${Date.now() - pluggedAt} ms`);
  await sleep(1_000);
  await stream.stop();
  await overwrites;
  t.log(`writers stopped ${Date.now() - pluggedAt} ms after the plug`);
  for (const w of stream.acked) current.set(w.path, w);

  // Restored: every referenced chunk on exactly two disks, the stale ones gone, status clean.
  await waitDisksExact(cluster, current.keys(), 60_000);
  t.log(`disks exact ${Date.now() - pluggedAt} ms after the plug`);
  const after = await chunksOnDisk(victim.dataDir);
  t.deepEqual(
    stale.filter((h) => after.has(h)),
    [],
    'the stale chunks are gone from the host that was away',
  );
  const restored = logLines(cluster.nameServer!.lines, 'restored storage server').filter((l) => l.id === victim.id);
  t.true(restored.length >= 1, 'the name server restored the returning server');
  t.true(restored.some((l) => typeof l.counted === 'number' && l.counted > 0), `its chunks counted as copies again: ${JSON.stringify(restored)}`);
  const status = await cluster.status();
  t.is(status.storage.alive, 3);
  t.is(status.underReplicated, 0);
  t.is(status.overReplicated, 0);
  t.is(status.unavailable, 0);
  // The CLI on a client host shows the same.
  const cli = await cluster.cli(['status', '--json']);
  t.is(cli.code, 0, cli.stderr);
  const shown = JSON.parse(cli.stdout) as typeof status;
  t.is(shown.underReplicated + shown.overReplicated + shown.unavailable, 0);

  // Nothing acknowledged was lost, and every byte is right.
  t.deepEqual(await unreadable(cluster, [...current.values()]), []);
  for (const path of deleted) t.is(await errorCode(cluster.info(path)), 'ENOENT', path);
  t.log(
    `${stream.acked.length} writes acknowledged (${stream.acked.length - ackedAtDead} after the host was declared dead; the slowest took ${stream.slowest()} ms), ${stream.failed.length} failed${stream.failed.length ? `: ${stream.failed.map((f) => f.error).join('; ')}` : ''}; ` +
      `${stale.length} stale chunks on the returning host; activity ${JSON.stringify(status.activity)}`,
  );
  t.deepEqual(stream.failed.map((f) => f.error), [], 'no write failed');
  for (const s of others) t.true((await chunksOnDisk(s.dataDir)).size > 0);
});

test.serial('a flapping storage host (link down and up faster than the death timeout): suspect, never dead, and no replication storm', async (t) => {
  const healthIntervalMs = 500;
  const healthMisses = 6;
  const cluster = await startNetCluster(t, { healthIntervalMs, healthMisses, nameExtra: ['--chunk-size', '256K', '--delete-grace', '300', '--upload-grace', '10000'] });
  const agent = cluster.agent;
  await agent.ns('mkdir', { path: '/base' });
  await agent.ns('mkdir', { path: '/during' });
  const base: Written[] = [];
  for (let i = 0; i < 10; i++) base.push({ ...(await agent.write(`/base/f${i}.bin`, between(300 * KiB, 900 * KiB))), at: Date.now() });
  await cluster.waitConverged();
  const baseInfos = await Promise.all(base.map((w) => cluster.info(w.path)));
  const baseChunks = new Set(baseInfos.flatMap((i) => i.chunks.map((c) => c.hash)));
  const victim = busiestHolder(cluster, baseInfos);
  const holdersBefore = holdersOf(await disks(cluster), baseChunks);
  const activityBefore = (await cluster.status()).activity;

  // Watch the victim's state all along.
  const states = new Map<string, number>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const state = await cluster.stateOf(victim).catch(() => 'unknown');
      states.set(String(state), (states.get(String(state)) ?? 0) + 1);
      await sleep(100);
    }
  })();
  t.teardown(async () => {
    watching = false;
    await watcher;
  });
  // Clients keep reading and writing meanwhile.
  const stream = writeStream(cluster, { writers: 1, dir: '/during', minSize: 100 * KiB, maxSize: 600 * KiB });
  t.teardown(() => stream.stop());
  let reading = true;
  const readFailures: string[] = [];
  let reads = 0;
  const reader = (async () => {
    for (let i = 0; reading; i++) {
      const w = base[i % base.length]!;
      const bad = await unreadable(cluster, [w]);
      readFailures.push(...bad);
      reads += 1;
    }
  })();
  t.teardown(async () => {
    reading = false;
    await reader;
  });

  const downMs = 2_000;
  const upMs = 2_000;
  const cycles = 5;
  t.log(`death after ${healthMisses} missed checks every ${healthIntervalMs} ms (${healthMisses * healthIntervalMs} ms at the least); the link goes down for ${downMs} ms, up for ${upMs} ms, ${cycles} times`);
  for (let i = 0; i < cycles; i++) {
    await cluster.cut(victim);
    await sleep(downMs);
    await cluster.plug(victim);
    await sleep(upMs);
  }
  reading = false;
  await reader;
  await stream.stop();
  await cluster.waitAlive(3, 30_000);
  watching = false;
  await watcher;
  const settled = await cluster.waitConverged(60_000);

  const dead = logLines(cluster.nameServer!.lines, 'storage server is dead');
  t.log(`victim ${victim.name}: states seen ${JSON.stringify(Object.fromEntries(states))}; ${reads} reads, ${stream.acked.length} writes during the flapping`);
  t.true((states.get('suspect') ?? 0) > 0, 'the flapping host was seen suspect');
  t.is(states.get('dead') ?? 0, 0, 'it was never seen dead');
  t.deepEqual(dead, [], 'the name server never declared a server dead');
  t.deepEqual(readFailures, [], 'every read returned the right bytes');

  // No storm: the chunks stored before the flapping sit on exactly the disks they sat on, and repair made
  // no copies beyond what the writes during the flapping could need (a chain that lost its second server is
  // topped up at commit: at most one copy per new chunk).
  const holdersAfter = holdersOf(await disks(cluster), baseChunks);
  const moved = [...baseChunks].filter((h) => holdersBefore.get(h) !== holdersAfter.get(h));
  t.deepEqual(moved, [], 'no chunk stored before the flapping was copied or trimmed');
  const newChunks = new Set((await Promise.all(stream.acked.map((w) => cluster.info(w.path)))).flatMap((i) => i.chunks.map((c) => c.hash)));
  const made = settled.activity.copiesMade - activityBefore.copiesMade;
  const trimmed = settled.activity.copiesTrimmed - activityBefore.copiesTrimmed;
  t.log(`chunk copies made: ${made} (minimum needed: 0 for the ${baseChunks.size} chunks stored before, none of which lost a copy for good; at most ${newChunks.size} for the ${newChunks.size} chunks written during the flapping); extra copies trimmed: ${trimmed}`);
  t.true(made <= newChunks.size, `copies made ${made} ≤ ${newChunks.size}`);
  t.true(trimmed <= newChunks.size, `copies trimmed ${trimmed} ≤ ${newChunks.size}`);
  t.deepEqual(stream.failed.map((f) => f.error), [], 'no write failed');
  await waitDisksExact(cluster, [...base.map((w) => w.path), ...stream.acked.map((w) => w.path)], 45_000);
  t.deepEqual(await unreadable(cluster, [...base, ...stream.acked]), []);
});

/** For each chunk, the sorted list of disks (by index) holding it, as a string. */
function holdersOf(onDisk: readonly Set<string>[], chunks: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const hash of chunks) {
    out.set(
      hash,
      onDisk
        .map((d, i) => (d.has(hash) ? i : -1))
        .filter((i) => i >= 0)
        .join(','),
    );
  }
  return out;
}
