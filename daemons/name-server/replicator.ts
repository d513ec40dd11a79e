import { forEachLimited } from '../../common/limit.js';
import type { Logger } from '../../common/log.js';
import { DfsError } from '../../protocol/errors.js';
import type { MetaStore } from './meta/store.js';
import type { StorageNode, StorageRegistry } from './registry.js';
import type { StorageCalls } from './storage-calls.js';

export interface ReplicatorOptions {
  replicas: number;
  /** Chunk copies made at once. */
  concurrency: number;
  intervalMs: number;
}

interface ChunkNeed {
  hash: string;
  size: number;
}

/**
 * Keeps every chunk at the target number of copies: copies under-replicated chunks storage-to-storage
 * (`/replicate`), one-copy chunks first, and trims over-replicated ones. Commits use `ensure` to bring
 * their new chunks up to the write quorum before they are acknowledged.
 */
export class Replicator {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  /** Chunks being copied now, so a commit and the repair loop do not copy the same chunk twice. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Repair copies running now (at most `concurrency`). */
  private repairing = 0;
  /** Copies made since start (for status and the flapping report). */
  copiesMade = 0;
  copiesTrimmed = 0;

  constructor(
    private readonly meta: MetaStore,
    private readonly registry: StorageRegistry,
    private readonly calls: StorageCalls,
    private readonly options: ReplicatorOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    const loop = (): void => {
      this.timer = setTimeout(() => {
        this.kick();
        loop();
      }, this.options.intervalMs);
      this.timer.unref();
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Runs a repair pass now (or right after the current one). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pass()
      .catch((err: unknown) => this.log.error({ err }, 'repair pass failed'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pass(): Promise<void> {
    const holders = this.registry.holderIds();
    const under = await this.meta.read.underReplicated(holders, this.options.replicas, 2_000);
    // Repair copies run `concurrency` at a time and a pass does not wait for them: a copy stuck on a server
    // that just went off the network waits out its timeout (a minute) holding one slot, while the other
    // slots and later passes go on repairing. A copy that succeeds starts the next pass at once; a failed
    // one is retried by the periodic pass.
    for (const chunk of under) {
      if (this.repairing >= this.options.concurrency) break;
      if (chunk.copies === 0 || this.inFlight.has(chunk.hash)) continue;
      this.repairing += 1;
      void this.ensureOne(chunk, this.options.replicas).then(
        () => {
          this.repairing -= 1;
          this.kick();
        },
        (err: unknown) => {
          this.repairing -= 1;
          this.log.warn({ hash: chunk.hash, err: (err as Error).message }, 'repair of a chunk failed');
        },
      );
    }
    await this.trim();
  }

  /**
   * Brings each chunk to at least `needed` live copies; returns the chunks that could not get there, each
   * with the code of what stopped it (ENOSPC: every server that could take a copy is full).
   */
  async ensure(chunks: readonly ChunkNeed[], needed: number): Promise<{ hash: string; code: string }[]> {
    const failed: { hash: string; code: string }[] = [];
    await forEachLimited(chunks, this.options.concurrency, async (chunk) => {
      try {
        await this.ensureOne(chunk, needed);
      } catch (err) {
        failed.push({ hash: chunk.hash, code: err instanceof DfsError ? err.code : 'EIO' });
      }
    });
    return failed;
  }

  private async ensureOne(chunk: ChunkNeed, needed: number): Promise<void> {
    const running = this.inFlight.get(chunk.hash);
    if (running) await running.catch(() => undefined);
    const work = this.copyUntil(chunk, needed);
    this.inFlight.set(chunk.hash, work);
    try {
      await work;
    } finally {
      if (this.inFlight.get(chunk.hash) === work) this.inFlight.delete(chunk.hash);
    }
  }

  private async liveHolders(hash: string): Promise<string[]> {
    const all = (await this.meta.read.replicaServers([hash])).get(hash) ?? [];
    return all.filter((id) => this.registry.isHolder(id));
  }

  private async copyUntil(chunk: ChunkNeed, needed: number): Promise<void> {
    const tried = new Set<string>();
    /** Every target tried so far refused the copy for want of room. */
    let targetsFull = true;
    for (;;) {
      const holders = await this.liveHolders(chunk.hash);
      if (holders.length >= needed) return;
      if (holders.length === 0) throw new DfsError('CHUNKS_MISSING', `chunk ${chunk.hash} has no live copy`);
      // Prefer alive sources over suspect ones.
      const sources = holders
        .map((id) => this.registry.get(id)!)
        .sort((a, b) => Number(b.state === 'alive') - Number(a.state === 'alive'));
      const exclude = new Set([...holders, ...tried]);
      let target: StorageNode | undefined;
      try {
        [target] = this.registry.pickTargets(1, chunk.size, exclude);
      } catch (err) {
        // No server left to try, and the ones tried were full: the cluster is out of room for this copy.
        if (err instanceof DfsError && err.code === 'NO_STORAGE' && tried.size > 0 && targetsFull) throw new DfsError('ENOSPC', 'every storage server with room was tried');
        throw err;
      }
      if (!target) throw new DfsError('NO_STORAGE', 'no server to copy to');
      tried.add(target.id);
      let copied = false;
      let refusedForRoom = false;
      for (const source of sources) {
        try {
          await this.calls.replicate(source.url, chunk.hash, target.url);
          copied = true;
          break;
        } catch (err) {
          const code = err instanceof DfsError ? err.code : 'EIO';
          if (code === 'HASH_MISMATCH' || code === 'ENOENT') {
            // The source's copy is bad or gone: it no longer counts.
            this.log.warn({ hash: chunk.hash, server: source.id, code }, 'dropping a bad copy');
            await this.meta.write((tx) => tx.removeReplica(chunk.hash, source.id));
          } else if (code === 'ENOSPC' || code === 'UPSTREAM' || code === 'ETIMEDOUT') {
            // The target failed: try another target.
            refusedForRoom = code === 'ENOSPC';
            break;
          }
        }
      }
      if (!copied && !refusedForRoom) targetsFull = false;
      if (copied) {
        await this.meta.write((tx) => tx.addReplicas(chunk.hash, chunk.size, [target.id], 0));
        this.log.debug({ hash: chunk.hash, server: target.id }, 'copy made');
        this.copiesMade += 1;
      }
    }
  }

  /** Removes copies beyond the target from chunks whose holders are all alive (fullest servers first). */
  private async trim(): Promise<void> {
    const alive = this.registry.aliveIds();
    const over = await this.meta.read.overReplicated(alive, this.options.replicas, 2_000);
    await forEachLimited(over, this.options.concurrency, async (chunk) => {
      const holders = (await this.liveHolders(chunk.hash)).map((id) => this.registry.get(id)!);
      if (holders.some((n) => n.state !== 'alive')) return;
      const extras = holders.sort((a, b) => a.free - b.free).slice(0, holders.length - this.options.replicas);
      for (const node of extras) {
        await this.meta.write((tx) => tx.removeReplica(chunk.hash, node.id));
        try {
          await this.calls.deleteChunk(node.url, chunk.hash);
          // A report of this copy that was on its way may have recorded it again meanwhile: the delete is
          // answered only after such a report arrived, so forgetting the copy now has the last word.
          await this.meta.write((tx) => tx.removeReplica(chunk.hash, node.id));
          this.log.debug({ hash: chunk.hash, server: node.id }, 'copy trimmed');
          this.copiesTrimmed += 1;
        } catch (err) {
          // Refused (stored again just now) or unreachable: it still holds the chunk.
          await this.meta.write((tx) => tx.addReplicas(chunk.hash, chunk.size, [node.id], 0));
          this.log.info({ hash: chunk.hash, server: node.id, err: (err as Error).message }, 'trim skipped');
        }
      }
    });
  }
}
