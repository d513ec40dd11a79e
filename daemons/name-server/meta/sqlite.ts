import { open, type FileHandle } from 'node:fs/promises';
import { SqliteConnection, type Params } from './sqlite-connection.js';
import { SCHEMA_VERSION, schemaSql } from './sqlite-schema.js';
import type { ChunkRow, EntryRow, InodeRow, MetaReader, MetaStore, MetaTx, Mutation, NamespaceSnapshot, ReplicaCounts, ServerRow, StoredChunk, XattrRow } from './store.js';

const INODE_FIELDS = ['mode', 'uid', 'gid', 'size', 'nlink', 'rdev', 'atime', 'mtime', 'ctime', 'version', 'target'] as const;
/** Most operations one group commit takes in. */
const MAX_GROUP = 256;
/** Rows per multi-row INSERT (SQLite allows 32,766 parameters). */
const ROWS_PER_INSERT = 500;

/**
 * When a change reaches the disk. `full`: every transaction is fsynced before it is answered. `data`: those
 * that must survive power loss once answered (a file's new content, chunk bookkeeping, an explicit sync)
 * are fsynced first; other namespace changes reach the OS at once (they survive a crash of the process)
 * and the disk within WAL_SYNC_MS, as a local file system's metadata does. `normal`: nothing is fsynced
 * before the answer.
 */
export type SyncMode = 'full' | 'data' | 'normal';

/** In `data` mode, how soon a namespace change that was answered before its fsync reaches the disk. */
const WAL_SYNC_MS = 1_000;

export interface SqliteOptions {
  file: string;
  synchronous: SyncMode;
  /** How long a chunk that lost its last reference waits before it may be collected. */
  deleteGraceMs: number;
  /** Called once, in the first transaction, to create the root and settings of a new database. */
  initialize: (tx: MetaTx) => Promise<void>;
}

/** A failed write transaction: an I/O failure of the database, not a refusal. */
export class MetaWriteError extends Error {
  constructor(cause: unknown) {
    super(`metadata write failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'MetaWriteError';
  }
}

type Statement = [sql: string, params: Params];

/** Decrements the references a file's chunk list holds (before the list is dropped or replaced). */
function dropReferences(ino: number, gcAfter: number): Statement {
  return [
    `UPDATE chunks SET
       refs = refs - (SELECT count(*) FROM file_chunks f WHERE f.ino = ?1 AND f.hash = chunks.hash),
       gc_after = CASE WHEN refs - (SELECT count(*) FROM file_chunks f WHERE f.ino = ?1 AND f.hash = chunks.hash) <= 0 THEN ?2 ELSE gc_after END
     WHERE hash IN (SELECT hash FROM file_chunks WHERE ino = ?1)`,
    [ino, gcAfter],
  ];
}

/** Increments the references of a file's (new) chunk list. */
function addReferences(ino: number): Statement {
  return [
    `UPDATE chunks SET refs = refs + (SELECT count(*) FROM file_chunks f WHERE f.ino = ?1 AND f.hash = chunks.hash)
     WHERE hash IN (SELECT hash FROM file_chunks WHERE ino = ?1)`,
    [ino],
  ];
}

/**
 * Makes a chunk known to the database. A chunk already known keeps its collection time: a late copy must not
 * keep garbage alive.
 */
function knownChunk(hash: string, size: number, gcAfter: number): Statement {
  return ['INSERT INTO chunks (hash, size, refs, gc_after) VALUES (?, ?, 0, ?) ON CONFLICT (hash) DO NOTHING', [hash, size, gcAfter]];
}

/** Whether the name server keeps the bytes of chunk `c` (a condition on a query of `chunks c`). */
const KEPT_BY_NAME_SERVER = 'EXISTS (SELECT 1 FROM inline_chunks i WHERE i.hash = c.hash)';

/** The statements that carry out one mutation. A chunk losing its last reference waits `gcAfter`. */
function statementsFor(m: Mutation, gcAfter: number): Statement[] {
  switch (m.kind) {
    case 'insertInode':
      return [[`INSERT INTO inodes (ino, ${INODE_FIELDS.join(', ')}) VALUES (?, ${INODE_FIELDS.map(() => '?').join(', ')})`, [m.inode.ino, ...INODE_FIELDS.map((f) => m.inode[f])]]];
    case 'updateInode': {
      const fields = INODE_FIELDS.filter((f) => m.patch[f] !== undefined);
      if (fields.length === 0) return [];
      return [[`UPDATE inodes SET ${fields.map((f) => `${f} = ?`).join(', ')} WHERE ino = ?`, [...fields.map((f) => m.patch[f]), m.ino]]];
    }
    case 'deleteInode':
      return [
        dropReferences(m.ino, gcAfter),
        ['DELETE FROM file_chunks WHERE ino = ?', [m.ino]],
        ['DELETE FROM xattrs WHERE ino = ?', [m.ino]],
        ['DELETE FROM inodes WHERE ino = ?', [m.ino]],
      ];
    case 'insertEntry':
      return [['INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)', [m.entry.parent, m.entry.name, m.entry.ino]]];
    case 'deleteEntry':
      return [['DELETE FROM dentries WHERE parent = ? AND name = ?', [m.parent, m.name]]];
    case 'setChunks': {
      const out: Statement[] = [dropReferences(m.ino, gcAfter), ['DELETE FROM file_chunks WHERE ino = ?', [m.ino]]];
      for (let i = 0; i < m.chunks.length; i += ROWS_PER_INSERT) {
        const rows = m.chunks.slice(i, i + ROWS_PER_INSERT);
        out.push([
          `INSERT INTO file_chunks (ino, idx, hash, size) VALUES ${rows.map(() => '(?, ?, ?, ?)').join(', ')}`,
          rows.flatMap((c, j) => [m.ino, i + j, c.hash, c.size]),
        ]);
      }
      if (m.chunks.length > 0) out.push(addReferences(m.ino));
      return out;
    }
    case 'copyChunks':
      return [
        dropReferences(m.to, gcAfter),
        ['DELETE FROM file_chunks WHERE ino = ?', [m.to]],
        ['INSERT INTO file_chunks (ino, idx, hash, size) SELECT ?, idx, hash, size FROM file_chunks WHERE ino = ?', [m.to, m.from]],
        addReferences(m.to),
      ];
    case 'addReplicas':
      return [
        knownChunk(m.hash, m.size, m.gcAfter),
        ...m.servers.flatMap((id): Statement[] => [
          ['INSERT OR IGNORE INTO replicas (hash, server_id) VALUES (?, ?)', [m.hash, id]],
          // A delete still queued for this copy is stale now: the server holds it again, on purpose.
          ['DELETE FROM delete_queue WHERE server_id = ? AND hash = ?', [id, m.hash]],
        ]),
      ];
    case 'keepInline':
      return [
        knownChunk(m.hash, m.data.length, m.gcAfter),
        ['INSERT OR IGNORE INTO inline_chunks (hash, data) VALUES (?, ?)', [m.hash, m.data]],
      ];
    case 'setXattr':
      return [['INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?) ON CONFLICT (ino, name) DO UPDATE SET value = excluded.value', [m.ino, m.name, m.value]]];
    case 'removeXattr':
      return [['DELETE FROM xattrs WHERE ino = ? AND name = ?', [m.ino, m.name]]];
    case 'rememberAppend':
      return [['INSERT OR REPLACE INTO appends_made (key, ino, at) VALUES (?, ?, ?)', [m.key, m.ino, m.at]]];
    case 'forgetAppends':
      return [
        [
          'DELETE FROM appends_made WHERE at < ? OR at <= coalesce((SELECT at FROM appends_made ORDER BY at DESC LIMIT 1 OFFSET ?), -1)',
          [m.before, m.keep],
        ],
      ];
    case 'holdChunks':
      return m.hashes.map((hash): Statement => ['UPDATE chunks SET gc_after = max(gc_after, ?) WHERE hash = ? AND refs = 0', [m.gcAfter, hash]]);
  }
}

class SqliteReader implements MetaReader {
  constructor(protected readonly db: SqliteConnection) {}

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]))?.value;
  }

  async fileChunks(ino: number): Promise<{ version: number | undefined; chunks: StoredChunk[] }> {
    // One statement: the version, the list and the kept bytes come from the same snapshot.
    const rows = await this.db.all<{ version: number; hash: string | null; size: number | null; data: Buffer | null }>(
      `SELECT i.version, f.hash, f.size, k.data FROM inodes i LEFT JOIN file_chunks f ON f.ino = i.ino LEFT JOIN inline_chunks k ON k.hash = f.hash
       WHERE i.ino = ? ORDER BY f.idx`,
      [ino],
    );
    const chunks = rows.flatMap((r) => (r.hash === null || r.size === null ? [] : [{ hash: r.hash, size: r.size, ...(r.data ? { kept: r.data } : {}) }]));
    return { version: rows[0]?.version, chunks };
  }

  async getChunks(hashes: readonly string[]): Promise<Map<string, ChunkRow>> {
    const rows = await this.db.all<ChunkRow>(
      'SELECT hash, size, refs, gc_after AS gcAfter FROM chunks WHERE hash IN (SELECT value FROM json_each(?))',
      [JSON.stringify(hashes)],
    );
    return new Map(rows.map((row) => [row.hash, row]));
  }

  async replicaServers(hashes: readonly string[]): Promise<Map<string, string[]>> {
    const rows = await this.db.all<{ hash: string; server_id: string }>(
      'SELECT hash, server_id FROM replicas WHERE hash IN (SELECT value FROM json_each(?))',
      [JSON.stringify(hashes)],
    );
    const out = new Map<string, string[]>();
    for (const row of rows) {
      const list = out.get(row.hash);
      if (list) list.push(row.server_id);
      else out.set(row.hash, [row.server_id]);
    }
    return out;
  }

  listServers(): Promise<ServerRow[]> {
    return this.db.all<ServerRow>('SELECT id, url, capacity, free, registered_at AS registeredAt FROM servers ORDER BY id');
  }

  underReplicated(live: readonly string[], target: number, limit: number): Promise<{ hash: string; size: number; copies: number }[]> {
    return this.db.all(
      `SELECT hash, size, copies FROM (
         SELECT c.hash, c.size, (SELECT count(*) FROM replicas r WHERE r.hash = c.hash AND r.server_id IN (SELECT value FROM json_each(?1))) AS copies
         FROM chunks c WHERE c.refs > 0 AND NOT ${KEPT_BY_NAME_SERVER}
       ) WHERE copies < ?2 ORDER BY copies LIMIT ?3`,
      [JSON.stringify(live), target, limit],
    );
  }

  overReplicated(live: readonly string[], target: number, limit: number): Promise<{ hash: string; size: number; copies: number }[]> {
    return this.db.all(
      `SELECT hash, size, copies FROM (
         SELECT r.hash, c.size, count(*) AS copies FROM replicas r JOIN chunks c ON c.hash = r.hash
         WHERE r.server_id IN (SELECT value FROM json_each(?1)) GROUP BY r.hash
       ) WHERE copies > ?2 LIMIT ?3`,
      [JSON.stringify(live), target, limit],
    );
  }

  async replicaCounts(live: readonly string[], target: number): Promise<ReplicaCounts> {
    const row = await this.db.get<ReplicaCounts>(
      `SELECT
         coalesce(sum(copies > 0 AND copies < ?2 AND refs > 0 AND NOT kept), 0) AS under,
         coalesce(sum(copies = 0 AND refs > 0 AND NOT kept), 0) AS unavailable,
         coalesce(sum(copies > ?2), 0) AS over
       FROM (
         SELECT c.refs, ${KEPT_BY_NAME_SERVER} AS kept,
           (SELECT count(*) FROM replicas r WHERE r.hash = c.hash AND r.server_id IN (SELECT value FROM json_each(?1))) AS copies
         FROM chunks c
       )`,
      [JSON.stringify(live), target],
    );
    return row ?? { under: 0, unavailable: 0, over: 0 };
  }

  async inlineHeld(hashes: readonly string[]): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const rows = await this.db.all<{ hash: string }>(
      'SELECT i.hash FROM inline_chunks i JOIN chunks c ON c.hash = i.hash WHERE i.hash IN (SELECT value FROM json_each(?))',
      [JSON.stringify(hashes)],
    );
    return new Set(rows.map((r) => r.hash));
  }

  async serverChunks(serverId: string): Promise<string[]> {
    const rows = await this.db.all<{ hash: string }>('SELECT hash FROM replicas WHERE server_id = ?', [serverId]);
    return rows.map((r) => r.hash);
  }

  garbage(now: number, limit: number): Promise<ChunkRow[]> {
    return this.db.all<ChunkRow>(
      'SELECT hash, size, refs, gc_after AS gcAfter FROM chunks WHERE refs = 0 AND gc_after <= ? ORDER BY gc_after LIMIT ?',
      [now, limit],
    );
  }

  async pendingDeletes(serverId: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ hash: string }>('SELECT hash FROM delete_queue WHERE server_id = ? ORDER BY queued_at LIMIT ?', [serverId, limit]);
    return rows.map((r) => r.hash);
  }

  async deleteQueued(hash: string, serverId: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 FROM delete_queue WHERE server_id = ? AND hash = ?', [serverId, hash])) !== undefined;
  }

  async counts(): Promise<{ chunks: number; pendingDeletes: number }> {
    const row = await this.db.get<{ chunks: number; pendingDeletes: number }>(
      'SELECT (SELECT count(*) FROM chunks) AS chunks, (SELECT count(*) FROM delete_queue) AS pendingDeletes',
    );
    return row ?? { chunks: 0, pendingDeletes: 0 };
  }

  async appendMade(key: string): Promise<number | undefined> {
    return (await this.db.get<{ ino: number }>('SELECT ino FROM appends_made WHERE key = ?', [key]))?.ino;
  }
}

class SqliteTx extends SqliteReader implements MetaTx {
  constructor(
    db: SqliteConnection,
    private readonly deleteGraceMs: number,
  ) {
    super(db);
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async addReplicas(hash: string, size: number, serverIds: readonly string[], gcAfter: number): Promise<void> {
    // The statements of the addReplicas mutation, one at a time.
    for (const [sql, params] of statementsFor({ kind: 'addReplicas', hash, size, servers: serverIds, gcAfter }, gcAfter)) await this.db.run(sql, params);
  }

  async removeReplica(hash: string, serverId: string): Promise<void> {
    await this.db.run('DELETE FROM replicas WHERE hash = ? AND server_id = ?', [hash, serverId]);
  }

  async dropChunk(hash: string, now: number): Promise<void> {
    await this.db.run('INSERT OR IGNORE INTO delete_queue (server_id, hash, queued_at) SELECT server_id, hash, ? FROM replicas WHERE hash = ?', [now, hash]);
    await this.db.run('DELETE FROM replicas WHERE hash = ?', [hash]);
    await this.db.run('DELETE FROM inline_chunks WHERE hash = ?', [hash]);
    await this.db.run('DELETE FROM chunks WHERE hash = ?', [hash]);
  }

  async upsertServer(server: ServerRow): Promise<boolean> {
    const existing = await this.db.get('SELECT 1 FROM servers WHERE id = ?', [server.id]);
    await this.db.run(
      `INSERT INTO servers (id, url, capacity, free, registered_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET url = excluded.url, capacity = excluded.capacity, free = excluded.free`,
      [server.id, server.url, server.capacity, server.free, server.registeredAt],
    );
    return existing !== undefined;
  }

  async queueDelete(hash: string, serverId: string, now: number): Promise<void> {
    await this.db.run('INSERT OR IGNORE INTO delete_queue (server_id, hash, queued_at) VALUES (?, ?, ?)', [serverId, hash, now]);
  }

  async removeDelete(hash: string, serverId: string): Promise<void> {
    await this.db.run('DELETE FROM delete_queue WHERE server_id = ? AND hash = ?', [serverId, hash]);
  }

  async apply(mutations: readonly Mutation[]): Promise<void> {
    await runStatements(this.db, mutations, Date.now() + this.deleteGraceMs);
  }
}

/**
 * Runs the statements of some mutations in order, as one script: one trip to SQLite's thread instead of
 * one per statement (each costs more than the statement itself). Values are written in as SQL literals by
 * `literal`, which quotes every string and writes numbers and bytes in forms that cannot carry SQL.
 */
async function runStatements(db: SqliteConnection, mutations: readonly Mutation[], gcAfter: number): Promise<void> {
  const script = scriptFor(mutations, gcAfter);
  if (script) await db.exec(script);
}

function scriptFor(mutations: readonly Mutation[], gcAfter: number): string {
  return mutations.flatMap((m) => statementsFor(m, gcAfter).map(([sql, params]) => render(sql, params))).join(';\n');
}

/** One statement with its parameters (`?` in order, or `?N`) written in as literals. */
function render(sql: string, params: Params): string {
  const values = params as unknown[];
  let next = 0;
  return sql.replace(/\?(\d+)?/g, (_, index?: string) => literal(values[index ? Number(index) - 1 : next++]));
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') {
    // A NUL would end the literal early in SQLite's parser; names and targets never hold one.
    if (value.includes('\0')) throw new Error('a string with NUL cannot be stored');
    return `'${value.replaceAll("'", "''")}'`;
  }
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex')}'`;
  throw new Error(`no SQL literal for ${typeof value}`);
}

type QueuedWrite =
  | { kind: 'fn'; fn: (tx: MetaTx) => Promise<unknown>; resolve: (value: unknown) => void; reject: (err: unknown) => void }
  | { kind: 'mutations'; mutations: readonly Mutation[]; durable: boolean; resolve: (value: unknown) => void; reject: (err: unknown) => void };

/**
 * The embedded engine: one writer connection (WAL, statements in order, group commit) and one reader
 * connection for reads of committed data.
 */
export class SqliteMetaStore implements MetaStore {
  private readonly queue: QueuedWrite[] = [];
  /** Settles with the last write queued. */
  private lastQueued: Promise<void> = Promise.resolve();
  private draining = false;
  private closed = false;
  /** After a failed transaction: namespace mutations are refused until the namespace has reloaded. */
  private halted: MetaWriteError | undefined;
  /** `data` mode: the WAL file, fsynced by hand, and the timer of committed changes not yet fsynced. */
  private wal: FileHandle | undefined;
  private walSyncTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly writer: SqliteConnection,
    private readonly reader: SqliteConnection,
    readonly read: MetaReader,
    private readonly deleteGraceMs: number,
    private readonly file: string,
    private readonly mode: SyncMode,
  ) {}

  static async open(options: SqliteOptions): Promise<SqliteMetaStore> {
    const writer = await SqliteConnection.open(options.file, false);
    // In `data` mode SQLite syncs only at checkpoints; the store fsyncs the WAL itself when a change needs it.
    const pragma = options.synchronous === 'full' ? 'FULL' : 'NORMAL';
    await writer.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${pragma}; PRAGMA busy_timeout = 10000;
      PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;`);
    await writer.exec(schemaSql);
    const reader = await SqliteConnection.open(options.file, true);
    await reader.exec('PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536;');
    const store = new SqliteMetaStore(writer, reader, new SqliteReader(reader), options.deleteGraceMs, options.file, options.synchronous);
    await store.write(async (tx) => {
      if ((await tx.getMeta('schema_version')) === undefined) {
        await tx.setMeta('schema_version', String(SCHEMA_VERSION));
        await options.initialize(tx);
      }
    });
    return store;
  }

  async loadNamespace(): Promise<NamespaceSnapshot> {
    const [inodes, entries, xattrs] = await Promise.all([
      this.reader.all<InodeRow>(`SELECT ino, ${INODE_FIELDS.join(', ')} FROM inodes`),
      this.reader.all<EntryRow>('SELECT parent, name, ino FROM dentries'),
      this.reader.all<XattrRow>('SELECT ino, name, value FROM xattrs'),
    ]);
    return { inodes, entries, xattrs };
  }

  apply(mutations: readonly Mutation[], options: { durable?: boolean } = {}): Promise<void> {
    if (this.halted) return Promise.reject(this.halted);
    return this.enqueue({ kind: 'mutations', mutations, durable: options.durable ?? false }) as Promise<void>;
  }

  /** Makes every change answered so far durable (a client's fsync of a directory). */
  async sync(): Promise<void> {
    if (this.mode === 'data') await this.syncWal();
  }

  written(): Promise<void> {
    // Groups run in order: once the last write queued settles, every one before it has too.
    return this.lastQueued;
  }

  /** fsyncs the WAL: every transaction committed before this call survives power loss. */
  private async syncWal(): Promise<void> {
    if (this.walSyncTimer) clearTimeout(this.walSyncTimer);
    this.walSyncTimer = undefined;
    this.wal ??= await open(`${this.file}-wal`, 'r');
    await this.wal.datasync();
  }

  private scheduleWalSync(): void {
    this.walSyncTimer ??= setTimeout(() => {
      this.walSyncTimer = undefined;
      this.syncWal().catch(() => undefined);
    }, WAL_SYNC_MS);
  }

  resume(): void {
    this.halted = undefined;
  }

  write<T>(fn: (tx: MetaTx) => Promise<T>): Promise<T> {
    return this.enqueue({ kind: 'fn', fn }) as Promise<T>;
  }

  private enqueue(entry: { kind: 'fn'; fn: (tx: MetaTx) => Promise<unknown> } | { kind: 'mutations'; mutations: readonly Mutation[]; durable: boolean }): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('metadata store is closed'));
    const queued = new Promise((resolve, reject) => {
      this.queue.push({ ...entry, resolve, reject } as QueuedWrite);
      if (!this.draining) void this.drain();
    });
    this.lastQueued = queued.then(
      () => undefined,
      () => undefined,
    );
    return queued;
  }

  /** Group commit: every write queued while the last commit ran goes into the next transaction. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_GROUP);
        await this.runGroup(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  private async runGroup(batch: QueuedWrite[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      if (batch.every((op) => op.kind === 'mutations')) {
        // Namespace changes only (the common case): the whole transaction is one call into SQLite, one trip
        // to its thread instead of three.
        const script = batch.map((op) => scriptFor(op.mutations, Date.now() + this.deleteGraceMs)).filter((text) => text);
        await this.writer.exec(['BEGIN IMMEDIATE', ...script, 'COMMIT'].join(';\n'));
        for (const _ of batch) outcomes.push({ ok: true, value: undefined });
      } else await this.runMixedGroup(batch, outcomes);
      if (this.mode === 'data') {
        // Bookkeeping (fn) is durable before it is answered: storage servers act on it (deletes, trims).
        if (batch.some((op) => op.kind === 'fn' || op.durable)) await this.syncWal();
        else this.scheduleWalSync();
      }
    } catch (err) {
      await this.writer.exec('ROLLBACK').catch(() => undefined);
      // Namespace writes queued behind this group were decided on its results: they fail with it.
      const failure = new MetaWriteError(err);
      this.halted = failure;
      for (const op of [...batch, ...this.queue.splice(0)]) op.reject(failure);
      return;
    }
    batch.forEach((op, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) op.resolve(outcome.value);
      else op.reject(outcome.value);
    });
  }

  /** A group with bookkeeping in it: each bookkeeping function in a savepoint of its own. */
  private async runMixedGroup(batch: QueuedWrite[], outcomes: { ok: boolean; value: unknown }[]): Promise<void> {
    await this.writer.exec('BEGIN IMMEDIATE');
    // Namespace mutations of consecutive operations go to SQLite as one script.
    let script: string[] = [];
    const runScript = async (): Promise<void> => {
      if (script.length > 0) await this.writer.exec(script.join(';\n'));
      script = [];
    };
    for (const op of batch) {
      if (op.kind === 'mutations') {
        const text = scriptFor(op.mutations, Date.now() + this.deleteGraceMs);
        if (text) script.push(text);
        outcomes.push({ ok: true, value: undefined });
        continue;
      }
      await runScript();
      // Bookkeeping may refuse (a chunk went missing): its own changes are undone, the group goes on.
      const tx = new SqliteTx(this.writer, this.deleteGraceMs);
      await this.writer.exec('SAVEPOINT op');
      try {
        const value = await op.fn(tx);
        await this.writer.exec('RELEASE op');
        outcomes.push({ ok: true, value });
      } catch (err) {
        await this.writer.exec('ROLLBACK TO op; RELEASE op');
        outcomes.push({ ok: false, value: err });
      }
    }
    await runScript();
    await this.writer.exec('COMMIT');
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.walSyncTimer) await this.syncWal().catch(() => undefined);
    await this.wal?.close().catch(() => undefined);
    await this.reader.close();
    await this.writer.close();
  }
}
