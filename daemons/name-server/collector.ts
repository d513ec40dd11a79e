import type { Logger } from '../../common/log.js';
import { DfsError } from '../../protocol/errors.js';
import type { ChunkGuards } from './chunk-guards.js';
import type { MetaStore } from './meta/store.js';
import type { StorageRegistry } from './registry.js';
import { forEachLimited } from '../../common/limit.js';
import type { StorageCalls } from './storage-calls.js';

export interface CollectorOptions {
  intervalMs: number;
  concurrency: number;
}

/**
 * Garbage collection: chunks no file references, once their grace period is over, are forgotten and a
 * delete is queued (in the database) for every server that held them. The queue is worked off for the
 * servers that are alive; a server that is down gets its deletes when it returns.
 */
export class Collector {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  deletesDone = 0;

  constructor(
    private readonly meta: MetaStore,
    private readonly registry: StorageRegistry,
    private readonly calls: StorageCalls,
    private readonly options: CollectorOptions,
    private readonly log: Logger,
    /** Chunks a commit in flight references are not collected, even if unreferenced yet. */
    private readonly guards: ChunkGuards,
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

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pass()
      .catch((err: unknown) => this.log.error({ err }, 'collection pass failed'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    const garbage = await this.meta.read.garbage(now, 1_000);
    if (garbage.length > 0) {
      const dropping: string[] = [];
      try {
        await this.meta.write(async (tx) => {
          const current = await tx.getChunks(garbage.map((c) => c.hash));
          for (const chunk of current.values()) {
            if (chunk.refs !== 0 || chunk.gcAfter > now || this.guards.isPinned(chunk.hash)) continue;
            // Until this is durable, a commit's check must see the chunk as gone.
            this.guards.dropping([chunk.hash]);
            dropping.push(chunk.hash);
            await tx.dropChunk(chunk.hash, now);
          }
        });
      } finally {
        this.guards.dropped(dropping);
      }
    }
    for (const id of this.registry.aliveIds()) {
      const node = this.registry.get(id);
      if (!node) continue;
      const hashes = await this.meta.read.pendingDeletes(id, 512);
      await forEachLimited(hashes, this.options.concurrency, async (hash) => {
        try {
          await this.calls.deleteChunk(node.url, hash);
          this.log.debug({ hash, server: id }, 'queued delete done');
          this.deletesDone += 1;
        } catch (err) {
          // Refused as stored too recently, or failed: retry on a later pass. A chunk stored again on purpose
          // is reported (or recorded as a copy), which removes this queued delete; one merely stored less than
          // the storage server's clock-skew allowance ago (a file deleted right after it was written) is not,
          // and must still go, so a refusal never drops the queued delete by itself.
          if (!(err instanceof DfsError && err.code === 'CHUNK_REFRESHED')) {
            this.log.info({ hash, server: id, err: (err as Error).message }, 'delete failed; will retry');
          }
          return;
        }
        // The copy is gone: one recorded meanwhile by a late report must not count.
        await this.meta.write(async (tx) => {
          await tx.removeDelete(hash, id);
          await tx.removeReplica(hash, id);
        });
      });
    }
  }
}
