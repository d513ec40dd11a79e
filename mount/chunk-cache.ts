/**
 * Chunk bytes by hash, least recently used first out, bounded in bytes. Never stale: a hash names one
 * content forever. Concurrent fetches of one chunk share one download.
 */
export class ChunkCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.bytes;
  }

  get(hash: string): Buffer | undefined {
    const data = this.entries.get(hash);
    if (data) {
      // Re-insert: Map order is the recency order.
      this.entries.delete(hash);
      this.entries.set(hash, data);
    }
    return data;
  }

  put(hash: string, data: Buffer): void {
    if (data.length > this.maxBytes) return;
    const old = this.entries.get(hash);
    if (old) {
      this.entries.delete(hash);
      this.bytes -= old.length;
    }
    this.entries.set(hash, data);
    this.bytes += data.length;
    for (const [key, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(key);
      this.bytes -= value.length;
    }
  }

  /** The cached bytes, or one shared fetch of them. */
  async fetch(hash: string, fetcher: () => Promise<Buffer>): Promise<Buffer> {
    const cached = this.get(hash);
    if (cached) {
      this.hits += 1;
      return cached;
    }
    const pending = this.loading.get(hash);
    if (pending) return pending;
    this.misses += 1;
    const load = fetcher().then(
      (data) => {
        this.loading.delete(hash);
        this.put(hash, data);
        return data;
      },
      (err: unknown) => {
        this.loading.delete(hash);
        throw err;
      },
    );
    this.loading.set(hash, load);
    return load;
  }
}
