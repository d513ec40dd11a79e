import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { DfsError } from '../../protocol/errors.js';
import type { FileInfo } from '../../protocol/name-api.js';
import { chunksOnDisk, copiesOnDisks, NetCluster, type NetClusterOptions, type StorageHost } from './hosts.js';

/** What the scenario tests share: a cluster per test torn down in every outcome, write streams, disk checks. */

/** Starts a multi-host cluster for one test; stops it and removes everything in every outcome (logs on failure). */
export async function startNetCluster(t: ExecutionContext, options: NetClusterOptions = {}): Promise<NetCluster> {
  const started = Date.now();
  const cluster = await NetCluster.start(options);
  t.teardown(async () => {
    if (!t.passed) {
      t.log(cluster.logs());
      // DFS_CLUSTER_LOGS=DIR keeps every host's whole log of a failed test there.
      const keep = process.env.DFS_CLUSTER_LOGS;
      if (keep) {
        const dest = join(keep, `${t.title.slice(0, 60).replace(/[^A-Za-z0-9]+/g, '-')}-${Date.now()}`);
        await cluster.saveLogs(dest);
        t.log(`logs kept in ${dest}`);
      }
    }
    await cluster.stop();
  });
  t.log(`cluster up in ${Date.now() - started} ms: name server ${cluster.nameServerUrl}, storage ${cluster.storage.map((s) => s.address).join(' ')}, clients ${cluster.clients.map((c) => c.address).join(' ')}`);
  return cluster;
}

export interface Written {
  path: string;
  size: number;
  sha: string;
  /** When the write was acknowledged. */
  at: number;
  /** How long it took. */
  ms?: number;
}

/**
 * Writers on the agent's client host writing new files back to back until stopped. A write counts as
 * acknowledged only once writeFile resolved there; failed ones are noted and the writer goes on (or
 * stops, with `stopOnError`).
 */
export function writeStream(cluster: NetCluster, options: { writers: number; dir: string; minSize: number; maxSize: number; stopOnError?: boolean }) {
  const acked: Written[] = [];
  const failed: { path: string; size: number; error: string; code: string | undefined; at: number }[] = [];
  let stopped = false;
  const loops = Array.from({ length: options.writers }, async (_, w) => {
    for (let j = 0; !stopped; j++) {
      const path = `${options.dir}/w${w}-${j}.bin`;
      const size = options.minSize + Math.floor(Math.random() * (options.maxSize - options.minSize + 1));
      try {
        const r = await cluster.agent.write(path, size);
        acked.push({ path, size: r.size, sha: r.sha, at: Date.now(), ms: r.ms });
      } catch (err) {
        failed.push({ path, size, error: (err as Error).message, code: err instanceof DfsError ? err.code : undefined, at: Date.now() });
        if (options.stopOnError) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  });
  return {
    acked,
    failed,
    /** Acknowledged writes after a moment. */
    ackedAfter: (from: number) => acked.filter((w) => w.at >= from).length,
    /** The longest an acknowledged write took, ms. */
    slowest: () => Math.max(0, ...acked.map((w) => w.ms ?? 0)),
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Chunk files on every storage host's disk, by host (1-based index - 1). */
export function disks(cluster: NetCluster): Promise<Set<string>[]> {
  return Promise.all(cluster.storage.map((s) => chunksOnDisk(s.dataDir)));
}

/** The chunks of these files, through the name server. */
export async function referencedChunks(cluster: NetCluster, paths: Iterable<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const path of paths) for (const chunk of (await cluster.info(path)).chunks) out.add(chunk.hash);
  return out;
}

/**
 * Problems with what is on the disks against what files reference: a referenced chunk not on exactly
 * `replicas` disks, or a chunk file nothing references. Empty when the disks hold exactly what they should.
 */
export function diskProblems(onDisk: readonly Set<string>[], referenced: ReadonlySet<string>, replicas: number): string[] {
  const copies = copiesOnDisks(onDisk);
  const problems: string[] = [];
  for (const hash of referenced) {
    const n = copies.get(hash) ?? 0;
    if (n !== replicas) problems.push(`${hash.slice(0, 12)} on ${n} disks`);
  }
  for (const hash of copies.keys()) if (!referenced.has(hash)) problems.push(`${hash.slice(0, 12)} unreferenced`);
  return problems;
}

/** Waits until the disks hold every referenced chunk exactly `replicas` times and nothing else, and status is clean. */
export async function waitDisksExact(cluster: NetCluster, paths: Iterable<string>, timeoutMs = 45_000): Promise<void> {
  const list = [...paths];
  await cluster.waitFor(
    'every referenced chunk on exactly its replica count of disks, nothing else on any disk, status clean',
    async () => {
      const status = await cluster.status();
      const infos = await Promise.all(list.map((p) => cluster.info(p)));
      const referenced = new Set(infos.flatMap((i) => i.chunks.map((c) => c.hash)));
      const onDisk = await disks(cluster);
      const problems = diskProblems(onDisk, referenced, cluster.options.replicas);
      // Where each problem chunk is, in the name server's eyes and on disk, to tell what went wrong.
      for (const info of infos) {
        for (const c of info.chunks) {
          if (!problems.some((p) => p.startsWith(c.hash.slice(0, 12)))) continue;
          const where = onDisk.map((d, i) => (d.has(c.hash) ? cluster.storage[i]!.name : '')).filter(Boolean);
          problems.push(`${c.hash.slice(0, 12)} of ${info.path} (v${info.attr.version}): name server lists ${c.servers.map((s) => cluster.storageById(s.id).name).join(',') || 'none'}, disks ${where.join(',') || 'none'}`);
        }
      }
      const { underReplicated, overReplicated, unavailable, pendingDeletes } = status;
      return { problems: problems.slice(0, 16), problemCount: problems.length, underReplicated, overReplicated, unavailable, pendingDeletes };
    },
    (s) => s.problemCount === 0 && s.underReplicated === 0 && s.overReplicated === 0 && s.unavailable === 0 && s.pendingDeletes === 0,
    timeoutMs,
    250,
  );
}

/** The storage host holding the most chunks of these files (per the name server). */
export function busiestHolder(cluster: NetCluster, infos: readonly FileInfo[]): StorageHost {
  const held = new Map<string, number>();
  for (const info of infos) for (const c of info.chunks) for (const s of c.servers) held.set(s.id, (held.get(s.id) ?? 0) + 1);
  const [id] = [...held.entries()].sort((a, b) => b[1] - a[1])[0]!;
  return cluster.storageById(id);
}

export { errorCode } from '../store-checks.js';

/** A daemon's JSON log lines with this message. */
export function logLines(lines: readonly string[], msg: string): Record<string, unknown>[] {
  return lines
    .filter((l) => l.includes(msg))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((l) => l.msg === msg);
}

/** Checks every acknowledged write reads back whole through the agent; returns the mismatches. */
export async function unreadable(cluster: NetCluster, files: readonly Pick<Written, 'path' | 'sha' | 'size'>[]): Promise<string[]> {
  const bad: string[] = [];
  for (const f of files) {
    try {
      const r = await cluster.agent.read(f.path);
      if (r.sha !== f.sha || r.size !== f.size) bad.push(`${f.path}: ${r.size} bytes, SHA-256 ${r.sha}, wrote ${f.size} bytes ${f.sha}`);
    } catch (err) {
      bad.push(`${f.path}: ${(err as Error).message}`);
    }
  }
  return bad;
}
