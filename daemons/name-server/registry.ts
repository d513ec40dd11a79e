import type { Logger } from '../../common/log.js';
import { DfsError } from '../../protocol/errors.js';
import type { StorageState } from '../../protocol/schemas.js';
import type { StorageSummary } from '../../protocol/name-api.js';
import type { MetaStore } from './meta/store.js';
import type { StorageCalls } from './storage-calls.js';

export interface StorageNode {
  id: string;
  url: string;
  capacity: number;
  /** Free bytes as last reported, less what was handed out for writes since. */
  free: number;
  chunks: number;
  state: StorageState;
  /** Health checks missed in a row. */
  misses: number;
  /** Its chunk list must be compared with the database before its copies count again. */
  needsRestore: boolean;
  restoring: boolean;
}

export interface RegistryOptions {
  healthIntervalMs: number;
  /** Missed checks in a row after which a server is dead. */
  healthMisses: number;
}

export interface RegistryEvents {
  /** A server became dead: its copies stopped counting. */
  onDead(node: StorageNode): void;
  /** A server is alive and its chunk list matches the database again. */
  onAlive(node: StorageNode): void;
  /** Compare a returning server's chunks with the database (restoration). */
  restore(node: StorageNode): Promise<void>;
}

/**
 * The storage registry and its health checks. A server that misses a check is suspect (its copies still
 * count, it takes no new writes); after `healthMisses` misses it is dead and its copies stop counting.
 * A server that answers again is restored before it counts.
 */
export class StorageRegistry {
  private readonly nodes = new Map<string, StorageNode>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly meta: MetaStore,
    private readonly calls: StorageCalls,
    private readonly options: RegistryOptions,
    private readonly events: RegistryEvents,
    private readonly log: Logger,
  ) {}

  /** Loads known servers. Until their first check they are suspect: holding copies, taking no writes. */
  async load(): Promise<void> {
    for (const row of await this.meta.read.listServers()) {
      this.nodes.set(row.id, { ...row, chunks: 0, state: 'suspect', misses: 0, needsRestore: true, restoring: false });
    }
  }

  start(): void {
    const tick = async (): Promise<void> => {
      await Promise.all([...this.nodes.values()].map((node) => this.check(node)));
      if (!this.stopped) {
        this.timer = setTimeout(() => void tick(), this.options.healthIntervalMs);
        this.timer.unref();
      }
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  async register(input: { id: string; url: string; capacity: number; free: number; chunks: number }): Promise<boolean> {
    const known = await this.meta.write((tx) => tx.upsertServer({ id: input.id, url: input.url, capacity: input.capacity, free: input.free, registeredAt: Date.now() }));
    const node = this.nodes.get(input.id);
    if (node) {
      Object.assign(node, { url: input.url, capacity: input.capacity, free: input.free, chunks: input.chunks });
      if (node.state !== 'alive') void this.check(node);
    } else {
      const fresh: StorageNode = { ...input, state: 'suspect', misses: 0, needsRestore: true, restoring: false };
      this.nodes.set(input.id, fresh);
      this.log.info({ id: input.id, url: input.url }, 'storage server registered');
      void this.check(fresh);
    }
    return known;
  }

  private async check(node: StorageNode): Promise<void> {
    try {
      const status = await this.calls.status(node.url, Math.max(500, Math.min(this.options.healthIntervalMs, 3_000)));
      if (status.id !== node.id) throw new DfsError('EIO', `${node.url} answers as ${status.id}, not ${node.id}`);
      node.capacity = status.capacity;
      node.free = status.free;
      node.chunks = status.chunks;
      node.misses = 0;
      if (node.needsRestore) await this.restore(node);
      else if (node.state !== 'alive') this.setState(node, 'alive');
    } catch (err) {
      node.misses += 1;
      if (node.misses >= this.options.healthMisses) {
        if (node.state !== 'dead') {
          this.log.warn({ id: node.id, url: node.url, misses: node.misses, err: (err as Error).message }, 'storage server is dead');
          node.needsRestore = true;
          this.setState(node, 'dead');
          this.events.onDead(node);
        }
      } else if (node.state === 'alive') {
        this.log.info({ id: node.id, misses: node.misses }, 'storage server is suspect');
        this.setState(node, 'suspect');
      }
    }
  }

  private async restore(node: StorageNode): Promise<void> {
    if (node.restoring) return;
    node.restoring = true;
    try {
      await this.events.restore(node);
      node.needsRestore = false;
      this.setState(node, 'alive');
      this.log.info({ id: node.id, url: node.url }, 'storage server is alive');
      this.events.onAlive(node);
    } catch (err) {
      this.log.warn({ id: node.id, err: (err as Error).message }, 'restoration failed; will retry');
    } finally {
      node.restoring = false;
    }
  }

  private setState(node: StorageNode, state: StorageState): void {
    node.state = state;
  }

  get(id: string): StorageNode | undefined {
    return this.nodes.get(id);
  }

  all(): StorageNode[] {
    return [...this.nodes.values()];
  }

  /** Servers whose copies count: alive or only suspect. A returning server stays dead until restored. */
  holderIds(): string[] {
    return this.all()
      .filter((n) => n.state !== 'dead')
      .map((n) => n.id);
  }

  isHolder(id: string): boolean {
    const node = this.nodes.get(id);
    return node !== undefined && node.state !== 'dead';
  }

  /** Servers fit to take writes: alive. */
  aliveIds(): string[] {
    return this.all()
      .filter((n) => n.state === 'alive')
      .map((n) => n.id);
  }

  /**
   * Up to `count` alive servers with room for `size` bytes, most free space first. With `reserve`, the bytes
   * are counted against each chosen server until its next check, so parallel copies spread out. (A
   * placement for clients lists every server and is not reserved: the client spreads its chains itself,
   * and a server that fills up refuses the write, which sends the client to another.)
   */
  pickTargets(count: number, size: number, exclude: ReadonlySet<string> = new Set(), reserve = true): StorageNode[] {
    const alive = this.all().filter((n) => n.state === 'alive' && !exclude.has(n.id));
    if (alive.length === 0) throw new DfsError('NO_STORAGE', 'no storage server is alive');
    const roomy = alive.filter((n) => n.free >= size).sort((a, b) => b.free - a.free);
    if (roomy.length === 0) throw new DfsError('ENOSPC', 'every storage server is full');
    const picked = roomy.slice(0, count);
    if (reserve) for (const node of picked) node.free = Math.max(0, node.free - size);
    return picked;
  }

  summary(): StorageSummary[] {
    return this.all().map((n) => ({ id: n.id, url: n.url, state: n.state, capacity: n.capacity, free: n.free, chunks: n.chunks }));
  }
}
