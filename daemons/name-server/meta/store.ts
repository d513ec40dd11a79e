import type { ChunkRef } from '../../../protocol/schemas.js';

/**
 * The metadata engine interface. An engine stores rows and runs transactions; it makes no namespace
 * decisions. The namespace itself lives in memory (tree.ts) above the engine, with its rules
 * (namespace.ts); the engine loads it at start and applies each change as a list of mutations, so a
 * networked engine can join SQLite by implementing only this file's interfaces.
 */

export interface InodeRow {
  ino: number;
  /** Full st_mode. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdev: number;
  atime: string;
  mtime: string;
  ctime: string;
  version: number;
  /** Symlink target; null for other kinds. */
  target: string | null;
}

export type InodePatch = Partial<Omit<InodeRow, 'ino'>>;

export const ROOT_INO = 1;

export interface EntryRow {
  parent: number;
  name: string;
  ino: number;
}

export interface XattrRow {
  ino: number;
  name: string;
  value: Buffer;
}

/** Everything the in-memory namespace is built from. */
export interface NamespaceSnapshot {
  inodes: InodeRow[];
  entries: EntryRow[];
  xattrs: XattrRow[];
}

/**
 * One change to the namespace. A namespace operation is a list of these, applied in order in one
 * transaction. Chunk references follow the chunk-list mutations: a chunk that loses its last reference
 * becomes collectable after the delete grace period.
 */
export type Mutation =
  | { kind: 'insertInode'; inode: InodeRow }
  | { kind: 'updateInode'; ino: number; patch: InodePatch }
  /** Removes an inode with its chunk list (dropping its references) and its xattrs. */
  | { kind: 'deleteInode'; ino: number }
  | { kind: 'insertEntry'; entry: EntryRow }
  | { kind: 'deleteEntry'; parent: number; name: string }
  /** Replaces a file's chunk list. */
  | { kind: 'setChunks'; ino: number; chunks: readonly ChunkRef[] }
  /** Gives `to` the chunk list of `from` (sharing the chunks). */
  | { kind: 'copyChunks'; from: number; to: number }
  /** Servers hold a chunk (a commit's receipts); a chunk new to the database is collectable after gcAfter. */
  | { kind: 'addReplicas'; hash: string; size: number; servers: readonly string[]; gcAfter: number }
  /** The name server keeps a chunk's bytes itself (a small file's); a chunk new to the database as above. */
  | { kind: 'keepInline'; hash: string; data: Buffer; gcAfter: number }
  | { kind: 'setXattr'; ino: number; name: string; value: Buffer }
  | { kind: 'removeXattr'; ino: number; name: string }
  /** An append was made (under its writer's key), at `at` ms: in the same transaction as its bytes. */
  | { kind: 'rememberAppend'; key: string; ino: number; at: number }
  /** Forgets the appends made before `before` ms, and all but the newest `keep`. */
  | { kind: 'forgetAppends'; before: number; keep: number }
  /** Chunks no file references are not collected before `gcAfter` ms (a writer is about to reference them). */
  | { kind: 'holdChunks'; hashes: readonly string[]; gcAfter: number };

export interface ServerRow {
  id: string;
  url: string;
  capacity: number;
  free: number;
  registeredAt: number;
}

/** A chunk of a file's list as stored, with its bytes when the name server keeps them. */
export interface StoredChunk extends ChunkRef {
  kept?: Buffer;
}

export interface ChunkRow {
  hash: string;
  size: number;
  refs: number;
  /** Unreferenced chunks may be collected after this time (ms). */
  gcAfter: number;
}

export interface ReplicaCounts {
  /** Referenced chunks with at least one but fewer than `target` live copies. */
  under: number;
  /** Referenced chunks with no live copy. */
  unavailable: number;
  /** Chunks with more than `target` live copies. */
  over: number;
}

/** Reads of chunk and placement state, inside or outside a write transaction. */
export interface MetaReader {
  getMeta(key: string): Promise<string | undefined>;
  /**
   * A file's chunk list and the inode version it belongs to, read together (one snapshot); no version
   * when the database does not have the inode yet.
   */
  fileChunks(ino: number): Promise<{ version: number | undefined; chunks: StoredChunk[] }>;
  getChunks(hashes: readonly string[]): Promise<Map<string, ChunkRow>>;
  /** Server ids holding each chunk (all of them, live or not). */
  replicaServers(hashes: readonly string[]): Promise<Map<string, string[]>>;
  listServers(): Promise<ServerRow[]>;
  /**
   * Chunks referenced by files with fewer than `target` copies on `live` servers, fewest first (chunks the
   * name server keeps itself need none).
   */
  underReplicated(live: readonly string[], target: number, limit: number): Promise<{ hash: string; size: number; copies: number }[]>;
  /** Chunks with more than `target` copies on `live` servers. */
  overReplicated(live: readonly string[], target: number, limit: number): Promise<{ hash: string; size: number; copies: number }[]>;
  replicaCounts(live: readonly string[], target: number): Promise<ReplicaCounts>;
  /** Which of these chunks the name server keeps itself. */
  inlineHeld(hashes: readonly string[]): Promise<Set<string>>;
  /** Chunks held by a server, per the database. */
  serverChunks(serverId: string): Promise<string[]>;
  /** Unreferenced chunks whose grace period ran out. */
  garbage(now: number, limit: number): Promise<ChunkRow[]>;
  pendingDeletes(serverId: string, limit: number): Promise<string[]>;
  /** Whether a delete of this copy is queued. */
  deleteQueued(hash: string, serverId: string): Promise<boolean>;
  counts(): Promise<{ chunks: number; pendingDeletes: number }>;
  /** The inode an append made under this key went to, if one was made and is still remembered. */
  appendMade(key: string): Promise<number | undefined>;
}

/** Chunk and placement bookkeeping inside a write transaction. */
export interface MetaTx extends MetaReader {
  setMeta(key: string, value: string): Promise<void>;
  /**
   * Records that servers hold a chunk (and drops deletes queued for those copies); a chunk new to the
   * database is collectable after `gcAfter`, a known one keeps its time.
   */
  addReplicas(hash: string, size: number, serverIds: readonly string[], gcAfter: number): Promise<void>;
  removeReplica(hash: string, serverId: string): Promise<void>;
  /** Forgets a chunk, its replicas and its kept bytes, queueing a delete on every server that held it. */
  dropChunk(hash: string, now: number): Promise<void>;
  upsertServer(server: ServerRow): Promise<boolean>;
  queueDelete(hash: string, serverId: string, now: number): Promise<void>;
  removeDelete(hash: string, serverId: string): Promise<void>;
  /** Applies namespace mutations (used once, to create the root of a new database). */
  apply(mutations: readonly Mutation[]): Promise<void>;
}

export interface MetaStore {
  /** Reads outside any write transaction: sees only committed data. */
  readonly read: MetaReader;
  /** The whole namespace, to build the in-memory tree from. */
  loadNamespace(): Promise<NamespaceSnapshot>;
  /**
   * Applies one namespace operation's mutations in one transaction; resolves once it is durable. Writes
   * are serialized and may be committed together (group commit). A failure here is an I/O failure: the
   * engine fails every write queued behind it too, since they were decided on the failed one's results,
   * and refuses namespace mutations from then on until `resume()` (after the namespace reloaded).
   * `durable`: fsynced before it resolves even where the engine's sync mode lets other changes wait.
   */
  apply(mutations: readonly Mutation[], options?: { durable?: boolean }): Promise<void>;
  /** Makes every change resolved so far durable. */
  sync(): Promise<void>;
  /** Resolves once every write queued so far has been committed or has failed. */
  written(): Promise<void>;
  /** Accepts namespace mutations again after a failure. */
  resume(): void;
  /** Runs chunk and placement bookkeeping in a transaction, in order with namespace mutations. */
  write<T>(fn: (tx: MetaTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
