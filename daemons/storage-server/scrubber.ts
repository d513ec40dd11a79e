import type { Logger } from '../../common/log.js';
import { DfsError } from '../../protocol/errors.js';
import type { ChunkStore } from './chunk-store.js';

/**
 * Reads every chunk back from disk now and then and checks its hash, at a bounded rate, so corruption in
 * chunks nobody reads is found (and reported, and repaired from another copy) before it matters.
 */
export class Scrubber {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Chunks checked and found corrupt since start. */
  checked = 0;
  corrupt = 0;

  constructor(
    private readonly store: ChunkStore,
    /** Bytes per second to read; 0 turns scrubbing off. */
    private readonly bytesPerSecond: number,
    private readonly log: Logger,
    /** Pause between full passes. */
    private readonly restMs = 60_000,
  ) {}

  start(): void {
    if (this.bytesPerSecond <= 0) return;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const chunks = await this.store.list().catch(() => []);
      for (const chunk of chunks) {
        if (this.stopped) return;
        try {
          await this.store.readVerified(chunk.hash);
        } catch (err) {
          if (err instanceof DfsError && err.code === 'HASH_MISMATCH') {
            this.corrupt += 1;
            this.log.warn({ hash: chunk.hash }, 'scrub found a corrupt chunk; moved aside and reported');
          }
        }
        this.checked += 1;
        // Rate limit: the time this chunk's bytes are worth at the configured rate.
        await this.sleep(Math.ceil((chunk.size / this.bytesPerSecond) * 1000));
      }
      await this.sleep(chunks.length === 0 ? 1_000 : this.restMs);
    }
  }
}
