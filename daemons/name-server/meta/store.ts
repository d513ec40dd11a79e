import type { ChunkRef } from '../../../protocol/schemas.js';

/**
 * The metadata engine interface. An engine stores rows and runs transactions; it makes no namespace
 * decisions. The rules (name checks, ENOTEMPTY, rename into own subtree …) live once, above it, in
 * namespace.ts, so a networked engine can join SQLite by implementing only this file's interfaces.
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

export type NewInode = Omit<InodeRow, 'ino'>;
export type InodePatch = Partial<Omit<InodeRow, 'ino'>>;

export const ROOT_INO = 1;

/** One step of a path walk: the inode a name led to. */
export interface WalkStep {
  ino: number;
  mode: number;
}

export interface ServerRow {
  id: string;
  url: string;
  capacity: number;
  free: number;
  registeredAt: number;
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

/** What can be read in one consistent call, inside or outside a write transaction. */
export interface MetaReader {
  getMeta(key: string): Promise<string | undefined>;
  /** Follows `names` from the root as far as they exist; the first step is the root. */
  walk(names: readonly string[]): Promise<WalkStep[]>;
  getInode(ino: number): Promise<InodeRow | undefined>;
  lookup(parent: number, name: string): Promise<InodeRow | undefined>;
  hasEntries(dir: number): Promise<boolean>;
  listEntries(dir: number): Promise<{ name: string; inode: InodeRow }[]>;
  fileChunks(ino: number): Promise<ChunkRef[]>;
  getChunks(hashes: readonly string[]): Promise<Map<string, ChunkRow>>;
  /** Server ids holding each chunk (all of them, live or not). */
  replicaServers(hashes: readonly string[]): Promise<Map<string, string[]>>;
  listServers(): Promise<ServerRow[]>;
  /** Chunks referenced by files with fewer than `target` copies on `live` servers, fewest first. */
  underReplicated(live: readonly string[], target: number, limit: number): Promise<{ hash: string; size: number; copies: number }[]>;
  /** Chunks with more than `target` copies on `live` servers. */
  overReplicated(live: readonly string[], target: number, limit: number): Promise<{ hash: string; size: number; copies: number }[]>;
  replicaCounts(live: readonly string[], target: number): Promise<ReplicaCounts>;
  /** Chunks held by a server, per the database. */
  serverChunks(serverId: string): Promise<string[]>;
  /** Unreferenced chunks whose grace period ran out. */
  garbage(now: number, limit: number): Promise<ChunkRow[]>;
  pendingDeletes(serverId: string, limit: number): Promise<string[]>;
  counts(): Promise<{ files: number; dirs: number; chunks: number; bytes: number; pendingDeletes: number }>;
  getXattr(ino: number, name: string): Promise<Buffer | undefined>;
  listXattrs(ino: number): Promise<string[]>;
}

export interface MetaTx extends MetaReader {
  setMeta(key: string, value: string): Promise<void>;
  insertInode(inode: NewInode): Promise<number>;
  updateInode(ino: number, patch: InodePatch): Promise<void>;
  /** Removes an inode with its chunk list (dropping chunk references) and xattrs. */
  deleteInode(ino: number, now: number, deleteGraceMs: number): Promise<void>;
  insertEntry(parent: number, name: string, ino: number): Promise<void>;
  deleteEntry(parent: number, name: string): Promise<void>;
  /**
   * Replaces a file's chunk list, keeping each chunk's reference count right. Chunks that lose their last
   * reference become collectable after `deleteGraceMs`.
   */
  setFileChunks(ino: number, chunks: readonly ChunkRef[], now: number, deleteGraceMs: number): Promise<void>;
  /** Records that servers hold a chunk; a chunk new to the database is collectable after `gcAfter`. */
  addReplicas(hash: string, size: number, serverIds: readonly string[], gcAfter: number): Promise<void>;
  removeReplica(hash: string, serverId: string): Promise<void>;
  /** Forgets a chunk and its replicas, queueing a delete on every server that held it. */
  dropChunk(hash: string, now: number): Promise<void>;
  upsertServer(server: ServerRow): Promise<boolean>;
  queueDelete(hash: string, serverId: string, now: number): Promise<void>;
  removeDelete(hash: string, serverId: string): Promise<void>;
  setXattr(ino: number, name: string, value: Buffer): Promise<void>;
  /** Returns whether the attribute existed. */
  removeXattr(ino: number, name: string): Promise<boolean>;
  /** Runs `fn` after this transaction commits (wake a worker, answer a waiter). */
  afterCommit(fn: () => void): void;
}

export interface MetaStore {
  /** Reads outside any write transaction: sees only committed data. */
  readonly read: MetaReader;
  /**
   * Runs `fn` in one transaction. Writers are serialized; the engine may commit several together (group
   * commit), but each `fn` is atomic on its own: if it throws, none of its changes are kept.
   */
  write<T>(fn: (tx: MetaTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
