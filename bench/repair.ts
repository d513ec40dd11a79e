/**
 * Repair benchmark: how fast a dfs cluster re-replicates after a storage server dies. Stores N chunks of
 * 4 MiB (unique data), waits for full replication, kill -9s the storage server holding the most chunks,
 * and times until the name server's status (what `dfs status` shows) has it dead and no chunk
 * under-replicated or unavailable, and the file's every chunk is on enough live servers. The repair rate
 * counts from the moment the name server declared the server dead (its log line); detection (health
 * interval × misses) is reported apart. Next to it, the disk's own fsynced write rate (dd conv=fsync of as
 * many bytes in the storage servers' folder). One JSON line per figure.
 *
 *   node dist/bench/repair.js [--chunks 64] [--storage-servers 3] [--replicas 2] [--health-interval 1000] [--health-misses 3]
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ByteSource } from '../client/dfs-client.js';
import { nameApi, type ClusterStatus } from '../protocol/name-api.js';
import { BenchCluster } from './dfs-cluster.js';
import { run, sleep } from './proc.js';

export interface RepairOptions {
  chunks: number;
  storageServers: number;
  replicas: number;
  healthIntervalMs: number;
  healthMisses: number;
  /** Most seconds to wait for the repair. */
  timeoutS: number;
}

const MiB = 1024 * 1024;

/** N chunks of unique content, the same bytes on every read of the same range (the client may re-read). */
function chunkSource(chunks: number, chunkSize: number): ByteSource {
  const base = createHash('sha512');
  const pattern = Buffer.alloc(chunkSize);
  // A cheap, incompressible-looking pattern; each chunk differs by its index in the first 8 bytes.
  let seed = base.update(String(process.pid)).digest();
  for (let o = 0; o < chunkSize; o += seed.length) {
    seed.copy(pattern, o);
    seed = createHash('sha512').update(seed).digest();
  }
  const chunkAt = (k: number): Buffer => {
    const c = Buffer.from(pattern);
    c.writeBigUInt64BE(BigInt(k), 0);
    return c;
  };
  return {
    size: chunks * chunkSize,
    read: async (offset, length) => {
      const parts: Buffer[] = [];
      let at = offset;
      while (at < offset + length) {
        const k = Math.floor(at / chunkSize);
        const within = at - k * chunkSize;
        const take = Math.min(chunkSize - within, offset + length - at);
        parts.push(chunkAt(k).subarray(within, within + take));
        at += take;
      }
      return Buffer.concat(parts);
    },
  };
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function digest(source: ByteSource): Promise<string> {
  const h = createHash('sha256');
  for (let o = 0; o < source.size; o += 4 * MiB) h.update(await source.read(o, Math.min(4 * MiB, source.size - o)));
  return h.digest('hex');
}

/** Runs the benchmark and hands each JSON figure to `emit`. */
export async function runRepair(o: RepairOptions, emit: (figure: Record<string, unknown>) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dfsbench-repair-'));
  const cluster = new BenchCluster({
    dir,
    storageServers: o.storageServers,
    replicas: o.replicas,
    nameServerArgs: ['--health-interval', String(o.healthIntervalMs), '--health-misses', String(o.healthMisses)],
  });
  // Stopped from outside (npm run bench's Ctrl-C or SIGTERM): the cluster and its folder go too.
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      void cluster.stop().finally(() => rm(dir, { recursive: true, force: true }).finally(() => process.exit(130)));
    });
  }
  try {
    await cluster.start();
    const chunkSize = await cluster.client.chunkSize();
    const source = chunkSource(o.chunks, chunkSize);
    await cluster.client.writeFile('/repair.bin', source);
    await cluster.waitFor('full replication', (s) => s.underReplicated === 0 && s.unavailable === 0 && s.overReplicated === 0 && s.chunks >= o.chunks, 600_000);

    // The victim: the storage server holding the most chunks (per the name server's database).
    const info = await cluster.client.ns.call(nameApi.info, { path: '/repair.bin' });
    const held = new Map<string, number>();
    for (const c of info.chunks) for (const server of c.servers) held.set(server.id, (held.get(server.id) ?? 0) + 1);
    const [victimId, lostChunks] = [...held.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const victim = cluster.storage.findIndex((p) => p && String(p.ready.id) === victimId);
    if (victim < 0) throw new Error(`no storage process has id ${victimId}`);
    const lostBytes = lostChunks * chunkSize;

    const killedAt = Date.now();
    await cluster.killStorage(victim);
    // Repaired: the victim is dead in the name server's eyes, its status counts nothing under-replicated or
    // unavailable (what `dfs status` shows), and every chunk of the file has its copies on live servers.
    const isDead = (s: ClusterStatus): boolean => s.servers.some((x) => x.id === victimId && x.state === 'dead');
    let repairedAt = 0;
    const deadline = killedAt + o.timeoutS * 1000;
    let last: ClusterStatus | undefined;
    while (!repairedAt) {
      if (Date.now() > deadline) throw new Error(`no repair within ${o.timeoutS} s; last status ${JSON.stringify({ ...last, servers: undefined })}`);
      last = await cluster.status();
      if (isDead(last) && last.underReplicated === 0 && last.unavailable === 0) {
        const after = await cluster.client.ns.call(nameApi.info, { path: '/repair.bin' });
        if (after.fullyReplicated && after.chunks.every((c) => c.servers.length >= o.replicas && c.servers.every((x) => x.id !== victimId))) repairedAt = Date.now();
      }
      if (!repairedAt) await sleep(50);
    }
    // When the name server declared it dead, from its own log line (a poll of the status may come late
    // enough to see the repair already done).
    const deadLine = cluster.nameServer.lines.map(parseLine).find((l) => l?.msg === 'storage server is dead' && l.id === victimId);
    if (!deadLine || typeof deadLine.time !== 'number') throw new Error('the name server logged no "storage server is dead" line for the victim');
    const deadAt = deadLine.time;

    // The data must have survived: read it back (untimed) and compare.
    const h = createHash('sha256');
    for await (const part of cluster.client.readFile('/repair.bin')) h.update(part);
    const valid = h.digest('hex') === (await digest(source));
    const repairSeconds = Math.max(0.001, (repairedAt - deadAt) / 1000);
    emit({
      bench: 'repair',
      chunks: o.chunks,
      chunkSize,
      storageServers: o.storageServers,
      replicas: o.replicas,
      healthIntervalMs: o.healthIntervalMs,
      healthMisses: o.healthMisses,
      lostChunks,
      lostMiB: lostBytes / MiB,
      detectSeconds: Number(((deadAt - killedAt) / 1000).toFixed(3)),
      repairSeconds: Number(repairSeconds.toFixed(3)),
      totalSeconds: Number(((repairedAt - killedAt) / 1000).toFixed(3)),
      value: Number((lostBytes / MiB / repairSeconds).toFixed(2)),
      unit: 'MiB/s',
      valid,
      ...(valid ? {} : { error: 'the file read back after the repair differs from what was written' }),
    });

    // The disk's own rate in the same folder: as many bytes, written with dd and fsynced.
    const ddFile = join(dir, 'dd.bin');
    const t0 = performance.now();
    const dd = await run('dd', ['if=/dev/zero', `of=${ddFile}`, `bs=${chunkSize}`, `count=${lostChunks}`, 'conv=fsync', 'status=none'], { timeoutMs: 600_000 });
    const ddSeconds = (performance.now() - t0) / 1000;
    emit({
      bench: 'repair-disk',
      what: `dd if=/dev/zero bs=${chunkSize} count=${lostChunks} conv=fsync in the storage servers' folder`,
      mib: lostBytes / MiB,
      seconds: Number(ddSeconds.toFixed(3)),
      value: dd.code === 0 ? Number((lostBytes / MiB / ddSeconds).toFixed(2)) : null,
      unit: 'MiB/s',
      valid: dd.code === 0,
      ...(dd.code === 0 ? {} : { error: dd.stderr }),
    });
  } catch (err) {
    if (interrupted) return;
    emit({ bench: 'repair', valid: false, value: null, error: (err as Error).message, logs: await cluster.logTails(10) });
  } finally {
    await cluster.stop();
    await sleep(100);
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      chunks: { type: 'string', default: '64' },
      'storage-servers': { type: 'string', default: '3' },
      replicas: { type: 'string', default: '2' },
      'health-interval': { type: 'string', default: '1000' },
      'health-misses': { type: 'string', default: '3' },
      timeout: { type: 'string', default: '600' },
    },
  });
  await runRepair(
    {
      chunks: Number(values.chunks),
      storageServers: Number(values['storage-servers']),
      replicas: Number(values.replicas),
      healthIntervalMs: Number(values['health-interval']),
      healthMisses: Number(values['health-misses']),
      timeoutS: Number(values.timeout),
    },
    (f) => process.stdout.write(`${JSON.stringify(f)}\n`),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
