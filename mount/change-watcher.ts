import type { DfsClient } from '../client/dfs-client.js';
import type { Logger } from '../common/log.js';
import { nameApi, type NamespaceChanges } from '../protocol/name-api.js';

/** How long one wait for changes lasts on the name server. */
const WAIT_MS = 10_000;
/** Silence beyond a wait after which the feed no longer counts as heard (a hung name server). */
const LIVE_SLACK_MS = 5_000;
const RETRY_MS = 1_000;

/**
 * Listens to the name server's change feed: which names and inodes other clients changed, moments after
 * they did. While it is heard without a break, what this mount holds stays true until the feed names it,
 * so lookups are answered without asking: "no such name" from a listing (a rename's or a create's lookup
 * of the new name), a file's attributes (the lookup before an unlink, a rename, an open). Without it,
 * they last the attribute timeout, as before.
 */
export class ChangeWatcher {
  private epoch = '';
  private seq = 0;
  /** Moves at every change heard and every loss of contact: an answer asked for across one is not kept. */
  private generation = 0;
  /** Moves at every change heard and every loss of contact, not at this mount's own changes. */
  private heardCount = 0;
  private connected = false;
  private lastHeard = 0;
  private stopped = false;

  constructor(
    private readonly client: DfsClient,
    private readonly apply: (changes: NamespaceChanges) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.listen();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Taken before asking the name server (a stat, a listing); `unchangedSince` then says whether the answer may be kept. */
  mark(): number {
    return this.live() ? this.generation : -1;
  }

  /** Nothing was heard and none of this mount's own changes ran since `mark`, and the feed is still heard: the answer is current. */
  unchangedSince(mark: number): boolean {
    return mark >= 0 && mark === this.generation && this.live();
  }

  /** One of this mount's own changes starts or ends (the feed leaves them out): answers asked for across it are not kept. */
  ownChange(): void {
    this.generation++;
  }

  /** Taken before one of this mount's own changes; `heardNothingSince` then says whether anything came meanwhile. */
  heardMark(): number {
    return this.live() ? this.heardCount : -1;
  }

  /** No change made elsewhere was heard since `mark` (nor contact lost), and the feed is still heard. */
  heardNothingSince(mark: number): boolean {
    return mark >= 0 && mark === this.heardCount && this.live();
  }

  /** Whether every change made elsewhere reaches this mount (listings kept past their timeout are true). */
  live(): boolean {
    return this.connected && Date.now() - this.lastHeard < WAIT_MS + LIVE_SLACK_MS;
  }

  private async listen(): Promise<void> {
    while (!this.stopped) {
      try {
        const answer = await this.client.ns.call(nameApi.changes, { epoch: this.epoch, since: this.seq, waitMs: this.connected ? WAIT_MS : 0 }, { timeoutMs: WAIT_MS + LIVE_SLACK_MS, retry: false });
        this.heard(answer);
      } catch (err) {
        if (this.connected) this.log.warn({ err: (err as Error).message }, 'lost the name server\'s change feed; listings last the attribute timeout');
        this.lost();
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
  }

  private heard(answer: NamespaceChanges): void {
    this.lastHeard = Date.now();
    const reset = answer.reset || answer.epoch !== this.epoch;
    if (reset || answer.entries.length + answer.trees.length + answer.inos.length > 0) {
      this.generation++;
      this.heardCount++;
      this.apply({ ...answer, reset });
    }
    this.epoch = answer.epoch;
    this.seq = answer.seq;
    this.connected = true;
  }

  private lost(): void {
    if (this.connected) {
      this.generation++;
      this.heardCount++;
    }
    this.connected = false;
  }
}
