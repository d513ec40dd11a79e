import type { Logger } from '../../common/log.js';
import type { MetaStore } from './meta/store.js';
import type { StorageNode } from './registry.js';
import type { StorageCalls } from './storage-calls.js';

/** Chunks compared per database call. */
const BATCH = 2_000;

/**
 * Restoration: a storage server that (re)appears lists what it holds (`/dump_tree`) and the database is
 * brought in line. Chunks the database knows count as its copies again; copies the database lists but the
 * server lacks are forgotten; chunks the database never heard of, older than the upload grace period, are
 * queued for deletion on it. Deletes queued while it was away run once it is alive; over-replication that
 * results is trimmed by the replicator.
 */
export class Restorer {
  constructor(
    private readonly meta: MetaStore,
    private readonly calls: StorageCalls,
    private readonly uploadGraceMs: number,
    private readonly log: Logger,
  ) {}

  async restore(node: StorageNode): Promise<void> {
    const dump = await this.calls.dumpTree(node.url);
    const now = Date.now();
    const held = new Set(dump.chunks.map((c) => c.hash));
    const recorded = await this.meta.read.serverChunks(node.id);
    const lost = recorded.filter((hash) => !held.has(hash));
    let counted = 0;
    let unknown = 0;
    for (let i = 0; i < dump.chunks.length; i += BATCH) {
      const batch = dump.chunks.slice(i, i + BATCH);
      const known = await this.meta.read.getChunks(batch.map((c) => c.hash));
      await this.meta.write(async (tx) => {
        // Re-read inside the transaction: a chunk may have been collected since.
        const current = await tx.getChunks(batch.filter((c) => known.has(c.hash)).map((c) => c.hash));
        for (const chunk of batch) {
          if (current.has(chunk.hash)) {
            await tx.addReplicas(chunk.hash, chunk.size, [node.id], 0);
            counted += 1;
          } else if (chunk.mtimeMs < now - this.uploadGraceMs) {
            await tx.queueDelete(chunk.hash, node.id, now);
            this.log.debug({ id: node.id, hash: chunk.hash, mtimeMs: chunk.mtimeMs }, 'restore: unknown chunk queued for deletion');
            unknown += 1;
          }
        }
      });
    }
    for (let i = 0; i < lost.length; i += BATCH) {
      const batch = lost.slice(i, i + BATCH);
      await this.meta.write(async (tx) => {
        for (const hash of batch) await tx.removeReplica(hash, node.id);
        this.log.debug({ id: node.id, hashes: batch }, 'restore: copies the server lacks forgotten');
      });
    }
    this.log.info({ id: node.id, held: held.size, counted, unknown, lost: lost.length }, 'restored storage server');
  }
}
