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
  /** The batch being sent now, and the chunks in it. */
  private sending: { hashes: Set<string>; done: Promise<void> } | undefined;

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
    // A report that it holds the chunk, still on its way, must not arrive after this one and count the copy again.
    void this.forgetReports(hash)
      .then(() => this.client.call(nameApi.chunksBad, { chunks: [{ hash, server: this.identity.id }] }))
      .catch((err: unknown) => {
        // A reader that finds the copy missing reports it too; this report only makes it sooner.
        this.log.warn({ hash, err: (err as Error).message }, 'could not report a corrupt chunk');
      });
  }

  /**
   * Course flow step 4: this server now holds this chunk. Each server of a chain reports its own copy (so
   * that it can take the report back when the copy is deleted). Reports are sent in batches in the
   * background; a batch the name server does not take is tried again (a copy it never hears of is still
   * found by restoration).
   */
  reportStored(hash: string, size: number): void {
    this.reports.push({ hash, size, servers: [this.identity.id] });
    if (this.reports.length > MAX_PENDING_REPORTS) this.reports.splice(0, this.reports.length - MAX_PENDING_REPORTS);
    this.reportTimer ??= setTimeout(() => void this.flushReports(), REPORT_DELAY_MS);
  }

  /**
   * This server no longer holds the chunk (it was deleted): a report of it still waiting here would tell
   * the name server of a copy that is gone, so it is dropped; one being sent now is waited for, so that it
   * reaches the name server before the delete is answered (and the name server, which forgets the copy
   * once the delete is answered, has the last word).
   */
  async forgetReports(hash: string): Promise<void> {
    const drop = (): void => {
      for (let i = this.reports.length - 1; i >= 0; i--) if (this.reports[i]!.hash === hash) this.reports.splice(i, 1);
    };
    drop();
    const sending = this.sending;
    if (sending?.hashes.has(hash)) {
      await sending.done;
      // A batch that failed went back into the queue.
      drop();
    }
  }

  private async flushReports(): Promise<void> {
    const batch = this.reports.splice(0, REPORT_BATCH);
    let sent!: () => void;
    this.sending = { hashes: new Set(batch.map((r) => r.hash)), done: new Promise<void>((resolve) => (sent = resolve)) };
    try {
      if (batch.length > 0) await this.client.call(nameApi.chunksStored, { chunks: batch });
    } catch (err) {
      this.reports.unshift(...batch);
      this.sending = undefined;
      sent();
      this.log.warn({ err: (err as Error).message, pending: this.reports.length }, 'chunk report failed; will retry');
      this.reportTimer = setTimeout(() => void this.flushReports(), 1_000);
      this.reportTimer.unref();
      return;
    }
    this.sending = undefined;
    sent();
    this.reportTimer = this.reports.length > 0 ? setTimeout(() => void this.flushReports(), REPORT_DELAY_MS) : undefined;
  }
}
