import type { Logger } from '../../common/log.js';
import { RouteClient } from '../../protocol/http-client.js';
import { nameApi } from '../../protocol/name-api.js';
import { TokenMinter } from '../../protocol/token.js';
import type { ChunkStore } from './chunk-store.js';

/** Reports wait this long to be sent together. */
const REPORT_DELAY_MS = 50;
const REPORT_BATCH = 1024;
/** Reports kept while the name server is away (beyond that, restoration finds the copies). */
const MAX_PENDING_REPORTS = 100_000;

/**
 * The storage server's side of talking to the name server: registration (at start and again every
 * interval, so a name server that restarted with a new database learns of it) and chunk reports.
 */
export class NameServerLink {
  private readonly client: RouteClient;
  private timer: NodeJS.Timeout | undefined;
  private registered = false;
  private readonly reports: { hash: string; size: number; servers: string[] }[] = [];
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(
    nameServerUrl: string,
    secret: string,
    private readonly identity: { id: string; url: () => string },
    private readonly store: ChunkStore,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {
    const minter = new TokenMinter(secret, 'storage');
    this.client = new RouteClient(nameServerUrl, () => minter.get(), 5_000);
  }

  start(): void {
    const tick = async (): Promise<void> => {
      await this.register();
      this.timer = setTimeout(() => void tick(), this.registered ? this.intervalMs : Math.min(this.intervalMs, 1_000));
      this.timer.unref();
    };
    void tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.reportTimer) clearTimeout(this.reportTimer);
  }

  async register(): Promise<void> {
    try {
      const space = await this.store.space();
      const reply = await this.client.call(nameApi.register, {
        id: this.identity.id,
        url: this.identity.url(),
        capacity: space.capacity,
        free: space.free,
        chunks: this.store.chunkCount,
      });
      if (!this.registered || !reply.known) this.log.info({ nameServer: this.client.baseUrl, known: reply.known }, 'registered with the name server');
      this.registered = true;
    } catch (err) {
      if (this.registered) this.log.warn({ err: (err as Error).message }, 'registration failed; retrying');
      this.registered = false;
    }
  }

  /** This server's copy of a chunk is corrupt (it has been moved aside): it must stop counting. */
  reportCorrupt(hash: string): void {
    void this.client.call(nameApi.chunksBad, { chunks: [{ hash, server: this.identity.id }] }).catch((err: unknown) => {
      // Restoration and repair find the copy missing anyway; the report only makes it sooner.
      this.log.warn({ hash, err: (err as Error).message }, 'could not report a corrupt chunk');
    });
  }

  /**
   * Course flow step 4: this chunk is now held by these servers. Reports are sent in batches in the
   * background; a batch the name server does not take is tried again (a copy it never hears of is still
   * found by restoration).
   */
  reportStored(hash: string, size: number, servers: string[]): void {
    this.reports.push({ hash, size, servers });
    if (this.reports.length > MAX_PENDING_REPORTS) this.reports.splice(0, this.reports.length - MAX_PENDING_REPORTS);
    this.reportTimer ??= setTimeout(() => void this.flushReports(), REPORT_DELAY_MS);
  }

  private async flushReports(): Promise<void> {
    const batch = this.reports.splice(0, REPORT_BATCH);
    try {
      if (batch.length > 0) await this.client.call(nameApi.chunksStored, { chunks: batch });
    } catch (err) {
      this.reports.unshift(...batch);
      this.log.warn({ err: (err as Error).message, pending: this.reports.length }, 'chunk report failed; will retry');
      this.reportTimer = setTimeout(() => void this.flushReports(), 1_000);
      this.reportTimer.unref();
      return;
    }
    this.reportTimer = this.reports.length > 0 ? setTimeout(() => void this.flushReports(), REPORT_DELAY_MS) : undefined;
  }
}
