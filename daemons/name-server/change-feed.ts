import { randomUUID } from 'node:crypto';
import type { NamespaceChanges } from '../../protocol/name-api.js';

/** Changes remembered for clients that fall behind, by count and by the length of their paths; one further behind starts over (a reset). */
const MAX_REMEMBERED = 20_000;
const MAX_REMEMBERED_CHARS = 8 * 1024 * 1024;
const DROP_BATCH = 1_024;
/** A waiting client woken by a change is answered this much later, with whatever else changed meanwhile. */
const GATHER_MS = 20;
/** Paths and inodes one answer names at most; more, and the client starts over instead. */
const MAX_PER_ANSWER = 10_000;

/** What one operation changed. */
export interface NamesChanged {
  /** Paths of names that came or went. */
  entries: ReadonlySet<string>;
  /** Folders that went or moved, with everything below them. */
  trees: ReadonlySet<string>;
  /** Inodes whose attributes (or extended attributes) changed, or that went. */
  inos: ReadonlySet<number>;
}

interface Change {
  seq: number;
  /** Characters of its paths (what it holds in memory, roughly). */
  chars: number;
  /** The client that made it (it knows already), if it said. */
  origin: string | undefined;
  entries: readonly string[];
  trees: readonly string[];
  inos: readonly number[];
}

/**
 * What changed in the namespace, in order, for mounts that cache it: a mount that hears of every change
 * made elsewhere may answer a lookup ("no such name", or a file's attributes) from what it holds.
 * Kept in memory: a restarted name server has a new epoch, and its clients start over.
 */
export class ChangeFeed {
  private epoch: string = randomUUID();
  private seq = 0;
  private readonly changes: Change[] = [];
  private chars = 0;
  private readonly waiters = new Set<() => void>();
  private closed = false;

  publish(origin: string | undefined, changed: NamesChanged): void {
    if (changed.entries.size === 0 && changed.trees.size === 0 && changed.inos.size === 0) return;
    const entries = [...changed.entries];
    const trees = [...changed.trees];
    const chars = [...entries, ...trees].reduce((sum, path) => sum + path.length, 0) + 8 * changed.inos.size;
    this.changes.push({ seq: ++this.seq, chars, origin, entries, trees, inos: [...changed.inos] });
    this.chars += chars;
    // Dropped in batches (down to the count, and to 90% of the size), so a full feed does not move every entry at each change.
    if (this.changes.length > MAX_REMEMBERED + DROP_BATCH || this.chars > MAX_REMEMBERED_CHARS) {
      let drop = 0;
      while (drop < this.changes.length && (this.changes.length - drop > MAX_REMEMBERED || this.chars > MAX_REMEMBERED_CHARS * 0.9)) {
        this.chars -= this.changes[drop++]!.chars;
      }
      this.changes.splice(0, drop);
    }
    this.wake();
  }

  /** The namespace was rebuilt from the database: what clients hold may be wrong, whatever they heard. */
  reset(): void {
    this.epoch = randomUUID();
    this.changes.length = 0;
    this.chars = 0;
    this.wake();
  }

  /** Answers waiting clients at once (the server is stopping). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /**
   * The changes after `since` that `reader` did not make, waiting up to `waitMs` for one. `reset` when
   * they are not all known (another epoch, or too far behind): the client must forget what it holds.
   */
  async read(epoch: string, since: number, reader: string | undefined, waitMs: number): Promise<NamespaceChanges> {
    const deadline = Date.now() + waitMs;
    for (let from = since, woken = false; ; woken = true) {
      const answer = this.collect(epoch, from, reader);
      const left = deadline - Date.now();
      const some = answer.entries.length + answer.trees.length + answer.inos.length > 0;
      // A client woken by a change gets what else changed in the next moments too: one answer for a burst.
      if (some && woken && !answer.reset && !this.closed) {
        await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
        return this.collect(epoch, since, reader);
      }
      if (answer.reset || some || left <= 0 || this.closed) return answer;
      // Nothing for this reader so far (its own changes, say): look only at newer ones when woken.
      from = answer.seq;
      await this.nextChange(left);
    }
  }

  private collect(epoch: string, since: number, reader: string | undefined): NamespaceChanges {
    const oldest = this.changes[0]?.seq ?? this.seq + 1;
    const reset = { epoch: this.epoch, seq: this.seq, reset: true, entries: [], trees: [], inos: [] };
    if (epoch !== this.epoch || since > this.seq || since < oldest - 1) return reset;
    const entries = new Set<string>();
    const trees = new Set<string>();
    const inos = new Set<number>();
    // The changes are in order: the newest ones are at the end.
    let first = this.changes.length;
    while (first > 0 && this.changes[first - 1]!.seq > since) first--;
    for (let i = first; i < this.changes.length; i++) {
      const change = this.changes[i]!;
      if (change.origin !== undefined && change.origin === reader) continue;
      for (const entry of change.entries) entries.add(entry);
      for (const tree of change.trees) trees.add(tree);
      for (const ino of change.inos) inos.add(ino);
      if (entries.size + trees.size + inos.size > MAX_PER_ANSWER) return reset;
    }
    return { epoch: this.epoch, seq: this.seq, reset: false, entries: [...entries], trees: [...trees], inos: [...inos] };
  }

  private nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
