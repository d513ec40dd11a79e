/**
 * Keeps commits and garbage collection from crossing. A commit pins its new chunks from before its quorum
 * check until it is durable, and the collector does not drop a pinned chunk; a chunk the collector is
 * dropping (its transaction not yet durable) counts as absent to a commit's check.
 */
export class ChunkGuards {
  private readonly pinned = new Map<string, number>();
  private readonly beingDropped = new Set<string>();

  pin(hashes: readonly string[]): void {
    for (const hash of hashes) this.pinned.set(hash, (this.pinned.get(hash) ?? 0) + 1);
  }

  unpin(hashes: readonly string[]): void {
    for (const hash of hashes) {
      const count = (this.pinned.get(hash) ?? 1) - 1;
      if (count <= 0) this.pinned.delete(hash);
      else this.pinned.set(hash, count);
    }
  }

  isPinned(hash: string): boolean {
    return this.pinned.has(hash);
  }

  /** The collector is about to drop these chunks; call `dropped` once that is durable (or failed). */
  dropping(hashes: readonly string[]): void {
    for (const hash of hashes) this.beingDropped.add(hash);
  }

  dropped(hashes: readonly string[]): void {
    for (const hash of hashes) this.beingDropped.delete(hash);
  }

  isDropping(hash: string): boolean {
    return this.beingDropped.has(hash);
  }
}
