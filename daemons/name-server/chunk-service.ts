import { RecentMap } from '../../common/recent-map.js';
import { KeyedMutex } from '../../common/semaphore.js';
import { sha256 } from '../../common/sha256.js';
import { DfsError } from '../../protocol/errors.js';
import type { z } from 'zod';
import { keptByNameServer, keptBytes, type FileInfo, type nameApi } from '../../protocol/name-api.js';
import type { Attr, ChunkLocation, ChunkRef, InlineChunk, Receipt, ServerRef } from '../../protocol/schemas.js';
import { verifyReceipt } from '../../protocol/token.js';
import type { ChunkGuards } from './chunk-guards.js';
import type { StorageCalls } from './storage-calls.js';
import type { MetaReader, MetaStore, Mutation } from './meta/store.js';
import { VersionMoved, type Namespace } from './namespace.js';
import type { StorageRegistry } from './registry.js';
import type { Replicator } from './replicator.js';

export interface ChunkServiceOptions {
  replicas: number;
  chunkSize: number;
  /** How long an uploaded chunk may wait for the commit that references it before it is collected. */
  uploadGraceMs: number;
  /** The cluster secret, to check storage servers' receipts. */
  secret: string;
  /** Largest chunk the name server keeps itself, in its database (0: it keeps none). */
  inlineMax: number;
}

/**
 * Where the namespace meets chunk placement: which chunks a writer must upload, what storage servers
 * report, commits that are acknowledged only once their new chunks have the write quorum of copies, and
 * the chunk locations readers get.
 */
export class ChunkService {
  /** Appends made lately, by client and id (the database remembers them longer, for resends after a restart). */
  private readonly appends = new RecentMap<string, Promise<Attr>>(REMEMBERED_APPENDS);
  /** When appends made long ago were last forgotten by the database (ms). */
  private appendsForgotten = 0;
  /** Appends to one file wait for each other (else each would read the same version, and all but one retry). */
  private readonly appending = new KeyedMutex<string>();

  constructor(
    private readonly meta: MetaStore,
    private readonly namespace: Namespace,
    private readonly registry: StorageRegistry,
    private readonly replicator: Replicator,
    private readonly options: ChunkServiceOptions,
    private readonly guards: ChunkGuards,
    private readonly calls: StorageCalls,
  ) {}

  /** Copies a new chunk needs before a commit is acknowledged: min(replicas, alive servers), at least one. */
  writeQuorum(): number {
    return Math.max(1, Math.min(this.options.replicas, this.registry.aliveIds().length));
  }

  private async liveHolders(hashes: readonly string[], reader: MetaReader = this.meta.read): Promise<Map<string, string[]>> {
    if (hashes.length === 0) return new Map();
    const all = await reader.replicaServers(hashes);
    const live = new Map<string, string[]>();
    for (const hash of hashes) live.set(hash, (all.get(hash) ?? []).filter((id) => this.registry.isHolder(id)));
    return live;
  }

  /**
   * Chunks a writer must upload: those with no live copy, unless the name server keeps their bytes. Ones with
   * too few copies are copied at commit. `locate`: also where the others are (`held`), for the writer to read
   * them back before its commit lists them.
   */
  async missing(hashes: readonly string[], locate = false): Promise<{ missing: string[]; held?: { hash: string; servers: ServerRef[] }[] }> {
    const unique = [...new Set(hashes)];
    const [found, holders] = await Promise.all([this.meta.read.getChunks(unique), this.liveHolders(unique)]);
    let rows = found;
    const onServers = (hash: string): boolean => rows.has(hash) && (holders.get(hash)?.length ?? 0) > 0 && !this.guards.isDropping(hash);
    // Chunks no file references (a deleted file's, an upload never committed) could be collected before the
    // writer's commit pins them: found on servers, once the writer no longer has their bytes; stored again,
    // as the report of that upload does not extend their grace. They are kept as long as an upload would be.
    // The collector checks their grace again as it drops them; one it took meanwhile is missing.
    const unreferenced = unique.filter((hash) => rows.get(hash)?.refs === 0 && !this.guards.isDropping(hash));
    if (unreferenced.length > 0) {
      await this.meta.apply([{ kind: 'holdChunks', hashes: unreferenced, gcAfter: Date.now() + this.options.uploadGraceMs }]);
      rows = await this.meta.read.getChunks(unique);
    }
    const held = unique.filter(onServers);
    const lacking = unique.filter((hash) => !onServers(hash));
    const known = lacking.filter((hash) => rows.has(hash));
    const kept = known.length > 0 ? await this.meta.read.inlineHeld(known) : new Set<string>();
    const missing = lacking.filter((hash) => !kept.has(hash));
    return locate ? { missing, held: held.map((hash) => ({ hash, servers: this.serverRefs(holders.get(hash)!) })) } : { missing };
  }

  /** Servers by id, alive ones first (a reader tries them in order). */
  private serverRefs(ids: readonly string[]): ServerRef[] {
    return ids
      .map((id) => this.registry.get(id)!)
      .sort((a, b) => Number(b.state === 'alive') - Number(a.state === 'alive'))
      .map((node) => ({ id: node.id, url: node.url }));
  }

  /** Course flow step 4: servers report a chunk they now hold. */
  /**
   * Course flow step 4: servers report chunks they hold. Reports travel in the background, so one may
   * arrive after its chunk was committed, replaced and collected: a report of a chunk the database no
   * longer knows, from a server that has its delete queued, is such a late one and is ignored (a new
   * upload of the same bytes is counted by its commit's receipts).
   */
  async stored(reports: readonly { hash: string; size: number; servers: readonly string[] }[]): Promise<void> {
    const gcAfter = Date.now() + this.options.uploadGraceMs;
    await this.meta.write(async (tx) => {
      const known = await tx.getChunks(reports.map((r) => r.hash));
      for (const report of reports) {
        let servers = report.servers.filter((id) => this.registry.get(id) !== undefined);
        if (!known.has(report.hash)) {
          const fresh: string[] = [];
          for (const id of servers) if (!(await tx.deleteQueued(report.hash, id))) fresh.push(id);
          servers = fresh;
        }
        if (servers.length > 0) await tx.addReplicas(report.hash, report.size, servers, gcAfter);
      }
    });
  }

  /**
   * `origin`: the client committing (the change feed leaves the change out of what it tells that client).
   * A commit of bytes appended to a version (`appendedTo`) is made only on that version, and once per id.
   */
  commit(input: z.output<typeof nameApi.commit.input>, origin?: string): Promise<Attr> {
    const appendedTo = input.appendedTo;
    if (!appendedTo) return this.commitOnce(input, origin);
    return this.once(`${origin ?? ''}:${appendedTo.id}`, async (key) => {
      try {
        return await this.commitOnce(input, origin, { version: appendedTo.version, key });
      } catch (err) {
        // Sent again after its answer was lost (to a name server that restarted since): the file moved on
        // from the version because this very commit was made.
        const made = err instanceof VersionMoved ? await this.madeBefore(key) : undefined;
        if (made) return made;
        throw err;
      }
    });
  }

  private async commitOnce(input: z.output<typeof nameApi.commit.input>, origin?: string, appended?: { version: number; key: string }): Promise<Attr> {
    // A list that can never be committed is EINVAL before anything else, not CHUNKS_MISSING (which would
    // send the writer off to upload its chunks first).
    this.namespace.checkChunkList(input.path, input.chunks, input.size);
    const ino = input.ino ?? this.namespace.inode(input.path).ino;
    // An empty file has no chunks (each holds at least a byte): a new file's first commit reads nothing.
    const empty = this.namespace.inodeByNumber(ino)?.size === 0;
    const kept = this.keptChunks(input.path, input.chunks, input.inline ?? []);
    // A small file's commit hands over all its bytes: the list it replaces need not be read.
    const allKept = input.chunks.every((c) => kept.has(c.hash));
    const old = new Set(empty || allKept ? [] : (await this.meta.read.fileChunks(ino)).chunks.map((c) => c.hash));
    const fresh = uniqueChunks(input.chunks).filter((c) => !old.has(c.hash) && !kept.has(c.hash));
    const hashes = fresh.map((c) => c.hash);
    // Pinned from before the check until the commit is durable: no collection can take them in between.
    this.guards.pin(hashes);
    try {
      const receipts = this.validReceipts(input.receipts ?? [], new Set(hashes));
      if (fresh.length > 0) await this.ensureQuorum(fresh, receipts);
      const gcAfter = Date.now() + this.options.uploadGraceMs;
      const placement: Mutation[] = groupReceipts(receipts).map(({ hash, size, servers }) => ({ kind: 'addReplicas', hash, size, servers, gcAfter }));
      // Kept bytes go in before the chunk list that references them, in the same transaction.
      for (const [hash, data] of kept) placement.push({ kind: 'keepInline', hash, data, gcAfter });
      if (appended) placement.push(...this.remembered(appended.key, ino));
      return await this.namespace.by(origin, () =>
        this.namespace.commit(input.path, input.ino, input.chunks, input.size, input.mtime, placement, input.attrs, appended?.version),
      );
    } finally {
      this.guards.unpin(hashes);
    }
  }

  /**
   * Adds bytes at the end of a small file this server keeps whole: reads its content, commits content and
   * bytes as its next version. Another commit landing in between makes it read again, so no append is lost.
   * An append sent again under the same id (its answer was lost) is answered as the first time, not made twice.
   */
  append(input: z.output<typeof nameApi.append.input>, origin?: string): Promise<Attr> {
    return this.once(`${origin ?? ''}:${input.id}`, (key) =>
      this.appending.run(input.path, async () => (input.resent ? await this.madeBefore(key) : undefined) ?? this.appendOnce(input, key, origin)),
    );
  }

  /**
   * Makes an append (or a commit of appended bytes) under its writer's key once: the same key again, while
   * it is being made or after, gets its answer.
   */
  private once(key: string, make: (key: string) => Promise<Attr>): Promise<Attr> {
    // (The key goes into the database as a literal, which cannot hold a NUL; ids are printable ASCII.)
    if (key.includes('\0')) return Promise.reject(new DfsError('EINVAL', 'a client name with a NUL in it'));
    const known = this.appends.get(key);
    if (known) return known;
    const made = make(key);
    this.appends.set(key, made);
    // Only what was made is remembered: a refused one is sent again as something else, or not at all.
    made.catch(() => this.appends.delete(key));
    return made;
  }

  /** Mutations that remember an append made under `key` (with, once a minute, forgetting old ones). */
  private remembered(key: string, ino: number): Mutation[] {
    const now = Date.now();
    const mutations: Mutation[] = [{ kind: 'rememberAppend', key, ino, at: now }];
    if (now - this.appendsForgotten > FORGET_APPENDS_EVERY_MS) {
      this.appendsForgotten = now;
      mutations.push({ kind: 'forgetAppends', before: now - REMEMBERED_APPENDS_MS, keep: REMEMBERED_APPENDS_STORED });
    }
    return mutations;
  }

  /**
   * The attributes to answer an append sent again with, if it was made before this process started (the
   * database remembers it; this process's own are in `appends`).
   */
  private async madeBefore(key: string): Promise<Attr | undefined> {
    const ino = await this.meta.read.appendMade(key);
    if (ino === undefined) return undefined;
    const inode = this.namespace.inodeByNumber(ino);
    if (!inode) throw new DfsError('ENOENT', 'the file appended to is gone');
    return this.namespace.attr(inode);
  }

  private async appendOnce(input: z.output<typeof nameApi.append.input>, key: string, origin?: string): Promise<Attr> {
    const data = Buffer.from(input.data, 'base64');
    if (data.length === 0) throw new DfsError('EINVAL', `${input.path}: nothing to append`);
    for (let attempt = 1; ; attempt++) {
      const { inode, chunks } = await this.namespace.fileChunks(input.path);
      if (input.ino !== undefined && inode.ino !== input.ino) throw new DfsError('NOT_KEPT', `${input.path} is another file now`);
      const kept = chunks.length === 0 ? Buffer.alloc(0) : chunks.length === 1 ? chunks[0]!.kept : undefined;
      const size = (kept?.length ?? 0) + data.length;
      if (!kept || !keptByNameServer(size, this.options.inlineMax)) {
        throw new DfsError('NOT_KEPT', `${input.path} is not kept whole by the name server, or would grow past ${this.options.inlineMax} bytes`);
      }
      const content = Buffer.concat([kept, data]);
      const hash = sha256(content);
      const placement: Mutation[] = [{ kind: 'keepInline', hash, data: content, gcAfter: Date.now() + this.options.uploadGraceMs }, ...this.remembered(key, inode.ino)];
      try {
        return await this.namespace.by(origin, () =>
          this.namespace.commit(input.path, inode.ino, [{ hash, size }], size, input.mtime, placement, input.attrs, inode.version),
        );
      } catch (err) {
        if (!(err instanceof VersionMoved) || attempt >= APPEND_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * The bytes a commit hands the name server to keep (a small file's chunk), each checked against its place
   * in the chunk list. Bytes over this server's limit (lowered since the writer asked) are not kept: the
   * chunk is then an ordinary new one, missing until the writer uploads it to storage servers.
   */
  private keptChunks(path: string, chunks: readonly ChunkRef[], inline: readonly InlineChunk[]): Map<string, Buffer> {
    const kept = new Map<string, Buffer>();
    for (const { hash, data } of inline) {
      const ref = chunks.find((c) => c.hash === hash);
      if (!ref) throw new DfsError('EINVAL', `${path}: chunk ${hash} to keep is not in the file's chunk list`);
      if (ref.size > this.options.inlineMax) continue;
      kept.set(hash, keptBytes(ref, data));
    }
    return kept;
  }

  /**
   * Copies reported bad. A storage server's word on its own copy is taken; a reader's is checked by having
   * the server re-read the copy. Bad copies stop counting and are deleted; repair copies the chunk again.
   * Returns how many copies were dropped.
   */
  async badCopies(reports: readonly { hash: string; server: string }[], fromStorage: boolean): Promise<number> {
    const bad: { hash: string; server: string }[] = [];
    for (const report of reports) {
      const node = this.registry.get(report.server);
      if (!node) continue;
      const ok = fromStorage ? false : await this.calls.verify(node.url, report.hash).catch(() => true);
      if (!ok) bad.push(report);
    }
    if (bad.length === 0) return 0;
    const now = Date.now();
    await this.meta.write(async (tx) => {
      for (const { hash, server } of bad) {
        await tx.removeReplica(hash, server);
        await tx.queueDelete(hash, server, now);
      }
    });
    this.replicator.kick();
    return bad.length;
  }

  /**
   * Receipts of known servers for chunks of this commit, whose signatures check out, and recent enough that
   * their copies cannot have been collected since: an uploaded chunk is kept for the upload grace from its
   * report, which comes after the receipt (less the clock skew allowed between hosts). An older receipt
   * proves nothing (a write stalled past the grace would otherwise commit chunks already deleted); the
   * chunk then counts by what the database holds, or is missing and uploaded again.
   */
  private validReceipts(receipts: readonly Receipt[], wanted: ReadonlySet<string>): Receipt[] {
    const oldest = Date.now() - this.options.uploadGraceMs + RECEIPT_CLOCK_SKEW_MS;
    return receipts.filter((r) => {
      if (!wanted.has(r.hash) || this.registry.get(r.server) === undefined) return false;
      const storedAt = verifyReceipt(this.options.secret, r.hash, r.size, r.server, r.receipt);
      return storedAt !== undefined && storedAt > oldest;
    });
  }

  /**
   * Brings new chunks up to the write quorum of live copies, or throws CHUNKS_MISSING. The copies counted
   * are those the writer has receipts for and those the database holds (committed); a chunk being
   * collected right now counts as absent.
   */
  private async ensureQuorum(fresh: ChunkRef[], receipts: readonly Receipt[]): Promise<void> {
    const quorum = this.writeQuorum();
    const hashes = fresh.map((c) => c.hash);
    const copies = new Map<string, Set<string>>();
    for (const hash of hashes) if (!this.guards.isDropping(hash)) copies.set(hash, new Set());
    for (const r of receipts) if (this.registry.isHolder(r.server)) copies.get(r.hash)?.add(r.server);
    const count = (hash: string): number => copies.get(hash)?.size ?? 0;
    // The usual commit: the receipts alone put every chunk on the quorum, and the database is not read.
    if (hashes.some((hash) => count(hash) < quorum)) {
      const [rows, holders] = await Promise.all([this.meta.read.getChunks(hashes), this.liveHolders(hashes)]);
      for (const [hash, servers] of copies) if (rows.has(hash)) for (const id of holders.get(hash) ?? []) servers.add(id);
    }
    let absent = hashes.filter((hash) => count(hash) === 0);
    // A chunk the name server keeps (another small file's bytes) needs no copies; one being dropped is gone.
    const kept = absent.length > 0 ? await this.meta.read.inlineHeld(absent.filter((hash) => copies.has(hash))) : new Set<string>();
    absent = absent.filter((hash) => !kept.has(hash));
    if (absent.length > 0) throw missingError(absent);
    const short = fresh.filter((c) => !kept.has(c.hash) && count(c.hash) < quorum);
    if (short.length === 0) return;
    // A chain fell short: record the copies there are, then copy storage-to-storage up to the quorum.
    const gcAfter = Date.now() + this.options.uploadGraceMs;
    await this.meta.write(async (tx) => {
      for (const r of receipts) await tx.addReplicas(r.hash, r.size, [r.server], gcAfter);
    });
    const failed = await this.replicator.ensure(short, quorum);
    // No server has room for the copies the quorum lacks: uploading again cannot help, the cluster is full.
    if (failed.length > 0 && failed.every((f) => f.code === 'ENOSPC')) {
      throw new DfsError('ENOSPC', `no storage server has room for another copy of ${failed.length} chunk(s)`);
    }
    if (failed.length > 0) throw missingError(failed.map((f) => f.hash));
  }

  /** A file's attributes, chunk list with live locations, and whether every chunk has its copies. */
  async info(path: string): Promise<FileInfo> {
    const { inode, chunks } = await this.namespace.fileChunks(path);
    // The bytes of chunks kept here (small files) came with the list: only the others have holders to find.
    const holders = await this.liveHolders([...new Set(chunks.filter((c) => !c.kept).map((c) => c.hash))]);
    let offset = 0;
    let fully = true;
    const located: ChunkLocation[] = chunks.map((chunk) => {
      const loc: ChunkLocation = { hash: chunk.hash, size: chunk.size, offset, servers: [] };
      offset += chunk.size;
      if (chunk.kept) return { ...loc, data: chunk.kept.toString('base64') };
      const ids = holders.get(chunk.hash) ?? [];
      if (ids.length < this.options.replicas) fully = false;
      loc.servers = this.serverRefs(ids);
      return loc;
    });
    return { path, attr: this.namespace.attr(inode), replicas: this.options.replicas, chunkSize: this.options.chunkSize, chunks: located, fullyReplicated: fully };
  }
}

/** Reads of a file an append makes before it gives up (each lost to another commit of the same file). */
const APPEND_ATTEMPTS = 10;

/** Appends remembered in memory for writers that send one again (its answer lost): a retry comes within seconds. */
const REMEMBERED_APPENDS = 10_000;

/**
 * Appends the database remembers, for a writer that sends one again after the name server restarted: one
 * holding the bytes through an outage of up to an hour sends them again when it is back. At most this many
 * (some 10 MiB of keys), however fast files are appended to.
 */
const REMEMBERED_APPENDS_MS = 3_600_000;
const REMEMBERED_APPENDS_STORED = 100_000;
const FORGET_APPENDS_EVERY_MS = 60_000;

/** How far storage servers' clocks may be ahead of the name server's (as the storage server's delete check allows). */
const RECEIPT_CLOCK_SKEW_MS = 2_000;

function uniqueChunks(chunks: readonly ChunkRef[]): ChunkRef[] {
  const seen = new Map<string, ChunkRef>();
  for (const chunk of chunks) seen.set(chunk.hash, chunk);
  return [...seen.values()];
}

function missingError(hashes: string[]): DfsError {
  return new DfsError('CHUNKS_MISSING', `${hashes.length} chunk(s) are not held with enough copies; upload them and commit again`, { missing: hashes });
}

/** Receipts grouped per chunk. */
function groupReceipts(receipts: readonly Receipt[]): { hash: string; size: number; servers: string[] }[] {
  const byHash = new Map<string, { hash: string; size: number; servers: string[] }>();
  for (const r of receipts) {
    const entry = byHash.get(r.hash) ?? { hash: r.hash, size: r.size, servers: [] };
    if (!entry.servers.includes(r.server)) entry.servers.push(r.server);
    byHash.set(r.hash, entry);
  }
  return [...byHash.values()];
}
