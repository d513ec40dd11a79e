import type { ChunkRef } from '../../../protocol/schemas.js';
import { SqliteConnection } from './sqlite-connection.js';
import { SCHEMA_VERSION, schemaSql } from './sqlite-schema.js';
import type { ChunkRow, InodePatch, InodeRow, MetaReader, MetaStore, MetaTx, NewInode, ReplicaCounts, ServerRow, WalkStep } from './store.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const INODE_COLUMNS = 'ino, mode, uid, gid, size, nlink, rdev, atime, mtime, ctime, version, target';
const INODE_FIELDS = ['mode', 'uid', 'gid', 'size', 'nlink', 'rdev', 'atime', 'mtime', 'ctime', 'version', 'target'] as const;
/** Most operations one group commit takes in. */
const MAX_GROUP = 256;

export interface SqliteOptions {
  file: string;
  /** 'full' fsyncs every commit (an acknowledged change survives power loss); 'normal' only survives a process crash. */
  synchronous: 'full' | 'normal';
  /** Called once, in the first transaction, to create the root and settings of a new database. */
  initialize: (tx: MetaTx) => Promise<void>;
}

class SqliteReader implements MetaReader {
  constructor(protected readonly db: SqliteConnection) {}

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]))?.value;
  }

  walk(names: readonly string[]): Promise<WalkStep[]> {
    return this.db.all<WalkStep>(
      `WITH RECURSIVE names(depth, name) AS (SELECT key + 1, value FROM json_each(?)),
       walk(depth, ino, mode) AS (
         SELECT 0, ino, mode FROM inodes WHERE ino = 1
         UNION ALL
         SELECT w.depth + 1, i.ino, i.mode FROM walk w
           JOIN names n ON n.depth = w.depth + 1
           JOIN dentries d ON d.parent = w.ino AND d.name = n.name
           JOIN inodes i ON i.ino = d.ino
       )
       SELECT ino, mode FROM walk ORDER BY depth`,
      [JSON.stringify(names)],
    );
  }

  getInode(ino: number): Promise<InodeRow | undefined> {
    return this.db.get<InodeRow>(`SELECT ${INODE_COLUMNS} FROM inodes WHERE ino = ?`, [ino]);
  }

  lookup(parent: number, name: string): Promise<InodeRow | undefined> {
    return this.db.get<InodeRow>(
      `SELECT i.${INODE_COLUMNS.replaceAll(', ', ', i.')} FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND d.name = ?`,
      [parent, name],
    );
  }

  async hasEntries(dir: number): Promise<boolean> {
    return (await this.db.get('SELECT 1 FROM dentries WHERE parent = ? LIMIT 1', [dir])) !== undefined;
  }

  async listEntries(dir: number): Promise<{ name: string; inode: InodeRow }[]> {
    const rows = await this.db.all<InodeRow & { name: string }>(
      `SELECT d.name, i.${INODE_COLUMNS.replaceAll(', ', ', i.')} FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? ORDER BY d.name`,
      [dir],
    );
    return rows.map(({ name, ...inode }) => ({ name, inode }));
  }

  fileChunks(ino: number): Promise<ChunkRef[]> {
    return this.db.all<ChunkRef>('SELECT hash, size FROM file_chunks WHERE ino = ? ORDER BY idx', [ino]);
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
         FROM chunks c WHERE c.refs > 0
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
         coalesce(sum(copies > 0 AND copies < ?2 AND refs > 0), 0) AS under,
         coalesce(sum(copies = 0 AND refs > 0), 0) AS unavailable,
         coalesce(sum(copies > ?2), 0) AS over
       FROM (
         SELECT c.refs, (SELECT count(*) FROM replicas r WHERE r.hash = c.hash AND r.server_id IN (SELECT value FROM json_each(?1))) AS copies
         FROM chunks c
       )`,
      [JSON.stringify(live), target],
    );
    return row ?? { under: 0, unavailable: 0, over: 0 };
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

  async counts(): Promise<{ files: number; dirs: number; chunks: number; bytes: number; pendingDeletes: number }> {
    const row = await this.db.get<{ files: number; dirs: number; chunks: number; bytes: number; pendingDeletes: number }>(
      `SELECT
         (SELECT count(*) FROM inodes WHERE (mode & ${S_IFMT}) = ${S_IFREG}) AS files,
         (SELECT count(*) FROM inodes WHERE (mode & ${S_IFMT}) = ${S_IFDIR}) AS dirs,
         (SELECT count(*) FROM chunks) AS chunks,
         (SELECT coalesce(sum(size), 0) FROM inodes WHERE (mode & ${S_IFMT}) = ${S_IFREG}) AS bytes,
         (SELECT count(*) FROM delete_queue) AS pendingDeletes`,
    );
    return row ?? { files: 0, dirs: 0, chunks: 0, bytes: 0, pendingDeletes: 0 };
  }

  async getXattr(ino: number, name: string): Promise<Buffer | undefined> {
    return (await this.db.get<{ value: Buffer }>('SELECT value FROM xattrs WHERE ino = ? AND name = ?', [ino, name]))?.value;
  }

  async listXattrs(ino: number): Promise<string[]> {
    return (await this.db.all<{ name: string }>('SELECT name FROM xattrs WHERE ino = ? ORDER BY name', [ino])).map((r) => r.name);
  }
}

class SqliteTx extends SqliteReader implements MetaTx {
  readonly hooks: (() => void)[] = [];

  afterCommit(fn: () => void): void {
    this.hooks.push(fn);
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async insertInode(inode: NewInode): Promise<number> {
    const { lastID } = await this.db.run(
      `INSERT INTO inodes (${INODE_FIELDS.join(', ')}) VALUES (${INODE_FIELDS.map(() => '?').join(', ')})`,
      INODE_FIELDS.map((f) => inode[f]),
    );
    return lastID;
  }

  async updateInode(ino: number, patch: InodePatch): Promise<void> {
    const fields = INODE_FIELDS.filter((f) => patch[f] !== undefined);
    if (fields.length === 0) return;
    await this.db.run(`UPDATE inodes SET ${fields.map((f) => `${f} = ?`).join(', ')} WHERE ino = ?`, [...fields.map((f) => patch[f]), ino]);
  }

  async deleteInode(ino: number, now: number, deleteGraceMs: number): Promise<void> {
    await this.setFileChunks(ino, [], now, deleteGraceMs);
    await this.db.run('DELETE FROM xattrs WHERE ino = ?', [ino]);
    await this.db.run('DELETE FROM inodes WHERE ino = ?', [ino]);
  }

  async insertEntry(parent: number, name: string, ino: number): Promise<void> {
    await this.db.run('INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)', [parent, name, ino]);
  }

  async deleteEntry(parent: number, name: string): Promise<void> {
    await this.db.run('DELETE FROM dentries WHERE parent = ? AND name = ?', [parent, name]);
  }

  async setFileChunks(ino: number, chunks: readonly ChunkRef[], now: number, deleteGraceMs: number): Promise<void> {
    const old = await this.fileChunks(ino);
    const refDelta = new Map<string, number>();
    const bump = (hash: string, by: number): void => {
      refDelta.set(hash, (refDelta.get(hash) ?? 0) + by);
    };
    for (let idx = 0; idx < Math.max(old.length, chunks.length); idx++) {
      const before = old[idx];
      const after = chunks[idx];
      if (before && after && before.hash === after.hash && before.size === after.size) continue;
      if (before) bump(before.hash, -1);
      if (after) {
        bump(after.hash, +1);
        await this.db.run('INSERT OR REPLACE INTO file_chunks (ino, idx, hash, size) VALUES (?, ?, ?, ?)', [ino, idx, after.hash, after.size]);
      }
    }
    if (old.length > chunks.length) await this.db.run('DELETE FROM file_chunks WHERE ino = ? AND idx >= ?', [ino, chunks.length]);
    for (const [hash, delta] of refDelta) {
      if (delta === 0) continue;
      // A chunk that loses its last reference waits the delete grace from now, not what is left of the
      // upload grace it got when it was stored (that is for chunks never committed): a file deleted soon
      // after it was written frees its space after the delete grace, not an hour later.
      await this.db.run(
        `UPDATE chunks SET refs = refs + ?1, gc_after = CASE WHEN refs + ?1 <= 0 THEN ?2 ELSE gc_after END WHERE hash = ?3`,
        [delta, now + deleteGraceMs, hash],
      );
    }
  }

  async addReplicas(hash: string, size: number, serverIds: readonly string[], gcAfter: number): Promise<void> {
    await this.db.run(
      'INSERT INTO chunks (hash, size, refs, gc_after) VALUES (?1, ?2, 0, ?3) ON CONFLICT (hash) DO UPDATE SET gc_after = max(gc_after, ?3)',
      [hash, size, gcAfter],
    );
    for (const id of serverIds) {
      await this.db.run('INSERT OR IGNORE INTO replicas (hash, server_id) VALUES (?, ?)', [hash, id]);
      // A delete still queued for this copy is stale now: the server holds it again, on purpose.
      await this.db.run('DELETE FROM delete_queue WHERE server_id = ? AND hash = ?', [id, hash]);
    }
  }

  async removeReplica(hash: string, serverId: string): Promise<void> {
    await this.db.run('DELETE FROM replicas WHERE hash = ? AND server_id = ?', [hash, serverId]);
  }

  async dropChunk(hash: string, now: number): Promise<void> {
    await this.db.run('INSERT OR IGNORE INTO delete_queue (server_id, hash, queued_at) SELECT server_id, hash, ? FROM replicas WHERE hash = ?', [now, hash]);
    await this.db.run('DELETE FROM replicas WHERE hash = ?', [hash]);
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

  async setXattr(ino: number, name: string, value: Buffer): Promise<void> {
    await this.db.run('INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?) ON CONFLICT (ino, name) DO UPDATE SET value = excluded.value', [ino, name, value]);
  }

  async removeXattr(ino: number, name: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM xattrs WHERE ino = ? AND name = ?', [ino, name])).changes > 0;
  }
}

interface QueuedWrite {
  fn: (tx: MetaTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** The embedded engine: one writer connection (WAL, group commit) and one reader connection. */
export class SqliteMetaStore implements MetaStore {
  private readonly queue: QueuedWrite[] = [];
  private draining = false;
  private closed = false;

  private constructor(
    private readonly writer: SqliteConnection,
    private readonly reader: SqliteConnection,
    readonly read: MetaReader,
  ) {}

  static async open(options: SqliteOptions): Promise<SqliteMetaStore> {
    const writer = await SqliteConnection.open(options.file, false);
    await writer.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous.toUpperCase()}; PRAGMA busy_timeout = 10000;
      PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;`);
    await writer.exec(schemaSql);
    const reader = await SqliteConnection.open(options.file, true);
    await reader.exec('PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536;');
    const store = new SqliteMetaStore(writer, reader, new SqliteReader(reader));
    await store.write(async (tx) => {
      if ((await tx.getMeta('schema_version')) === undefined) {
        await tx.setMeta('schema_version', String(SCHEMA_VERSION));
        await options.initialize(tx);
      }
    });
    return store;
  }

  write<T>(fn: (tx: MetaTx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('metadata store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
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
    const outcomes: { ok: boolean; value: unknown; hooks: (() => void)[] }[] = [];
    try {
      await this.writer.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const op of batch) op.reject(err);
      return;
    }
    for (const op of batch) {
      const tx = new SqliteTx(this.writer);
      await this.writer.exec('SAVEPOINT op');
      try {
        const value = await op.fn(tx);
        await this.writer.exec('RELEASE op');
        outcomes.push({ ok: true, value, hooks: tx.hooks });
      } catch (err) {
        await this.writer.exec('ROLLBACK TO op; RELEASE op').catch(() => undefined);
        outcomes.push({ ok: false, value: err, hooks: [] });
      }
    }
    try {
      await this.writer.exec('COMMIT');
    } catch (err) {
      await this.writer.exec('ROLLBACK').catch(() => undefined);
      for (const op of batch) op.reject(err);
      return;
    }
    batch.forEach((op, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) {
        for (const hook of outcome.hooks) queueMicrotask(hook);
        op.resolve(outcome.value);
      } else {
        op.reject(outcome.value);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.reader.close();
    await this.writer.close();
  }
}
