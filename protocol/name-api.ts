import { z } from 'zod';
import { sha256 } from '../common/sha256.js';
import { route } from './contract.js';
import { DfsError } from './errors.js';
import { AbsPath, Attr, Base64, ChangeId, ChunkLocation, ChunkRef, DirEntry, Hash, InlineChunk, Mode, NsTime, PERMISSION_BITS, Receipt, S_IFMT, ServerRef, StorageState, Uint } from './schemas.js';

/** Name-server routes. Namespace calls are by path, since FUSE 2 is path-based. */

const CLIENT = ['client'] as const;
const STORAGE = ['storage'] as const;
const Empty = z.object({}).strict();
const PathQuery = z.object({ path: AbsPath });
const Owner = { uid: Uint.default(0), gid: Uint.default(0) };

/**
 * Attribute changes a commit carries: what chmod, chown and utimens did while the file was open with
 * unwritten content (tar and rsync set them before they close). They take effect with the content.
 */
export const AttrChanges = z
  .object({
    /** Permission bits (and set-id, sticky); the type bits are kept. */
    mode: Mode.optional(),
    uid: Uint.optional(),
    gid: Uint.optional(),
    atime: NsTime.optional(),
  })
  .strict();
export type AttrChanges = z.infer<typeof AttrChanges>;

/**
 * The fields `changes` sets on an inode or its attributes: a new mode keeps the type bits `current` has.
 * The name server applies it at commit; a mount lays it over what it shows until then.
 */
export function changedFields(current: { mode: number }, changes: AttrChanges): { mode?: number; uid?: number; gid?: number; atime?: string } {
  const next: { mode?: number; uid?: number; gid?: number; atime?: string } = {};
  if (changes.mode !== undefined) next.mode = (current.mode & S_IFMT) | (changes.mode & PERMISSION_BITS);
  if (changes.uid !== undefined) next.uid = changes.uid;
  if (changes.gid !== undefined) next.gid = changes.gid;
  if (changes.atime !== undefined) next.atime = changes.atime;
  return next;
}

/** The longest a client's wait for namespace changes may be (its request's timeout must be longer). */
export const MAX_CHANGES_WAIT_MS = 30_000;

/** What other clients changed in the namespace since a client last asked (paths as they were then). */
export const NamespaceChanges = z.object({
  epoch: z.string(),
  seq: Uint,
  /** Not every change since is known: forget everything cached. */
  reset: z.boolean(),
  /** Paths of names that came or went. */
  entries: z.array(z.string()),
  /** Folders that went or moved, with everything below them. */
  trees: z.array(z.string()),
  /** Inodes whose attributes or extended attributes changed, or that went. */
  inos: z.array(Uint),
});
export type NamespaceChanges = z.infer<typeof NamespaceChanges>;

export const StorageSummary = z.object({
  id: z.string(),
  url: z.string(),
  state: StorageState,
  capacity: Uint,
  free: Uint,
  chunks: Uint,
});
export type StorageSummary = z.infer<typeof StorageSummary>;

export const ClusterStatus = z.object({
  ok: z.boolean(),
  chunkSize: Uint,
  /** Files up to this many bytes are kept by the name server itself (0: none are; an older server says nothing). */
  inlineMax: Uint.default(0),
  replicas: Uint,
  files: Uint,
  dirs: Uint,
  chunks: Uint,
  bytes: Uint,
  /** Referenced chunks with fewer live copies than the target (but at least one). */
  underReplicated: Uint,
  /** Referenced chunks with no live copy at all. */
  unavailable: Uint,
  overReplicated: Uint,
  pendingDeletes: Uint,
  /** Work the name server did since it started: chunk copies made by repair, extra copies trimmed, copies deleted. */
  activity: z.object({ copiesMade: Uint, copiesTrimmed: Uint, deletes: Uint }),
  storage: z.object({ alive: Uint, suspect: Uint, dead: Uint, capacity: Uint, free: Uint }),
  servers: z.array(StorageSummary),
});
export type ClusterStatus = z.infer<typeof ClusterStatus>;

/** Whether a writer sends a file's bytes for the name server to keep: one chunk, at most the cluster's limit. */
export function keptByNameServer(size: number, inlineMax: number): boolean {
  return size > 0 && size <= inlineMax;
}

/**
 * The bytes of a chunk the name server keeps, from their base64, checked against the chunk's size and hash
 * like any chunk's (by the name server when a writer hands them over, by a reader when they come back).
 */
export function keptBytes(chunk: ChunkRef, base64: string): Buffer {
  const data = Buffer.from(base64, 'base64');
  if (data.length !== chunk.size || sha256(data) !== chunk.hash) throw new DfsError('HASH_MISMATCH', `the bytes kept for chunk ${chunk.hash} do not match it`, { hash: chunk.hash });
  return data;
}

export const FileInfo = z.object({
  path: z.string(),
  attr: Attr,
  replicas: Uint,
  chunkSize: Uint,
  chunks: z.array(ChunkLocation),
  /** Every chunk has at least `replicas` live copies. */
  fullyReplicated: z.boolean(),
});
export type FileInfo = z.infer<typeof FileInfo>;

export const nameApi = {
  status: route({ method: 'GET', path: '/status', input: Empty, output: ClusterStatus, auth: null, idempotent: true }),

  /** Course flow steps 1–2: storage servers to upload to (alive, most free space first) and a write token. */
  available: route({
    method: 'GET',
    path: '/available',
    input: z.object({
      count: z.coerce.number().int().min(1).max(16).optional(),
      /** Comma-separated server ids to leave out (ones that just failed). */
      exclude: z.string().max(4096).optional(),
      /** Bytes the caller will write, so full servers are skipped. */
      size: z.coerce.number().int().nonnegative().optional(),
    }),
    output: z.object({ token: z.string(), servers: z.array(ServerRef), chunkSize: Uint, replicas: Uint }),
    auth: CLIENT,
    idempotent: true,
  }),

  register: route({
    method: 'POST',
    path: '/storages/register',
    input: z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), url: z.url(), capacity: Uint, free: Uint, chunks: Uint }),
    output: z.object({ chunkSize: Uint, known: z.boolean() }),
    auth: STORAGE,
    idempotent: true,
  }),

  /** Course flow step 4: a storage server holds new chunks (the head of an upload chain reports for it). */
  chunksStored: route({
    method: 'POST',
    path: '/chunks/stored',
    input: z.object({ chunks: z.array(z.object({ hash: Hash, size: Uint, servers: z.array(z.string()).min(1) })).min(1).max(1024) }),
    output: Empty,
    auth: STORAGE,
    idempotent: true,
  }),

  /**
   * Copies found corrupt or missing: by a reader whose bytes did not hash right (the name server has the
   * server check the copy before it believes it), or by the storage server itself (scrub, serving).
   * Bad copies stop counting, are deleted, and the chunk is copied again from a good one.
   */
  chunksBad: route({
    method: 'POST',
    path: '/chunks/bad',
    input: z.object({ chunks: z.array(z.object({ hash: Hash, server: z.string().max(64) })).min(1).max(1024) }),
    output: z.object({ dropped: Uint }),
    auth: ['client', 'storage'],
    idempotent: true,
  }),

  /**
   * Which of these chunks a writer must upload: those the cluster lacks or holds with no live copy. Ones no
   * file references are kept from collection as long as an upload would be, for the writer's commit. With
   * `locate`, `held` says where the live copies of the others are, so a writer can read back bytes it did not
   * upload (a chunk that was already stored, before any file of its own lists it).
   */
  chunksMissing: route({
    method: 'POST',
    path: '/chunks/missing',
    input: z.object({ hashes: z.array(Hash).max(65536), locate: z.boolean().optional() }),
    output: z.object({ missing: z.array(Hash), held: z.array(z.object({ hash: Hash, servers: z.array(ServerRef) })).optional() }),
    auth: CLIENT,
    idempotent: true,
  }),

  stat: route({ method: 'GET', path: '/fs/stat', input: PathQuery, output: Attr, auth: CLIENT, idempotent: true }),

  /** A directory's entries with their attributes, in one call. */
  list: route({
    method: 'GET',
    path: '/fs/list',
    input: PathQuery,
    output: z.object({ attr: Attr, entries: z.array(DirEntry) }),
    auth: CLIENT,
    idempotent: true,
  }),

  mkdir: route({
    method: 'POST',
    path: '/fs/mkdir',
    input: z.object({ path: AbsPath, mode: Mode.default(0o755), ...Owner, parents: z.boolean().default(false) }),
    output: Attr,
    auth: CLIENT,
    idempotent: false,
  }),

  /** Makes a file or special node (type bits in `mode`, regular file if none). */
  create: route({
    method: 'POST',
    path: '/fs/create',
    input: z.object({
      path: AbsPath,
      mode: Mode.default(0o644),
      ...Owner,
      rdev: Uint.default(0),
      /** Fail with EEXIST when the name exists (O_EXCL); otherwise return the existing file. */
      exclusive: z.boolean().default(true),
    }),
    output: Attr,
    auth: CLIENT,
    idempotent: false,
  }),

  /** Replaces a file's content with a new chunk list, atomically; acknowledged once the chunks are replicated. */
  commit: route({
    method: 'POST',
    path: '/fs/commit',
    input: z.object({
      path: AbsPath,
      /** When given, the file must still be this inode (it may have been renamed over). */
      ino: Uint.optional(),
      chunks: z.array(ChunkRef).max(1 << 20),
      size: Uint,
      mtime: NsTime.optional(),
      /** Storage servers' receipts for chunks just uploaded: their copies count at once. */
      receipts: z.array(Receipt).max(1 << 16).optional(),
      /** The bytes of a small file's chunk, for the name server to keep (no storage server holds them). */
      inline: z.array(InlineChunk).max(1).optional(),
      attrs: AttrChanges.optional(),
      /**
       * Bytes appended to the file as it was at this version: the commit is made only if the file is still
       * at it (VERSION_MOVED otherwise: the writer lays its bytes at the new end and commits again), once
       * per `id`, however often it is sent.
       */
      appendedTo: z.object({ version: Uint, id: ChangeId }).optional(),
    }),
    output: Attr,
    auth: CLIENT,
    idempotent: true,
  }),

  /**
   * Adds bytes at the end of a small file the name server keeps whole, atomically: appends from many
   * clients all land, none on top of another (O_APPEND). Refused with NOT_KEPT when the file is not one the
   * name server keeps, or would grow past what it keeps: the writer then commits the whole content.
   */
  append: route({
    method: 'POST',
    path: '/fs/append',
    input: z.object({
      path: AbsPath,
      /** When given, the file must still be this inode (else NOT_KEPT: the writer commits the usual way). */
      ino: Uint.optional(),
      data: Base64.min(1),
      /** The writer's name for these bytes: sent again with it (after a lost answer), they are added once. */
      id: ChangeId,
      /** Sent before without an answer: the name server looks up whether it was made before it restarted. */
      resent: z.boolean().optional(),
      mtime: NsTime.optional(),
      attrs: AttrChanges.optional(),
    }),
    output: Attr,
    auth: CLIENT,
    // A retry of its own could not tell a lost answer from a lost request: the writer sends it again, same id.
    idempotent: false,
  }),

  /** `replaced`: the inode of a file the rename replaced (its other names' link count changed). */
  rename: route({
    method: 'POST',
    path: '/fs/rename',
    input: z.object({ from: AbsPath, to: AbsPath, noReplace: z.boolean().default(false) }),
    output: z.object({ replaced: Uint.optional() }).strict(),
    auth: CLIENT,
    idempotent: false,
  }),

  /** `ino`: the inode that lost the name (its other names' link count changed). */
  unlink: route({ method: 'DELETE', path: '/fs/file', input: PathQuery, output: z.object({ ino: Uint }).strict(), auth: CLIENT, idempotent: false }),
  rmdir: route({ method: 'DELETE', path: '/fs/dir', input: PathQuery, output: Empty, auth: CLIENT, idempotent: false }),

  setattr: route({
    method: 'POST',
    path: '/fs/setattr',
    input: z.object({
      path: AbsPath,
      /** Permission bits (and set-id, sticky); the type bits are kept. */
      mode: Mode.optional(),
      uid: Uint.optional(),
      gid: Uint.optional(),
      atime: NsTime.optional(),
      mtime: NsTime.optional(),
      /** Only truncation to zero; other sizes need new content, which is a commit. */
      size: z.literal(0).optional(),
    }),
    output: Attr,
    auth: CLIENT,
    idempotent: true,
  }),

  symlink: route({
    method: 'POST',
    path: '/fs/symlink',
    input: z.object({ path: AbsPath, target: z.string().min(1).max(4095), ...Owner }),
    output: Attr,
    auth: CLIENT,
    idempotent: false,
  }),

  readlink: route({ method: 'GET', path: '/fs/readlink', input: PathQuery, output: z.object({ target: z.string() }), auth: CLIENT, idempotent: true }),

  link: route({
    method: 'POST',
    path: '/fs/link',
    input: z.object({ existing: AbsPath, path: AbsPath }),
    output: Attr,
    auth: CLIENT,
    idempotent: false,
  }),

  /** Copies a file by sharing its chunks: no data moves. */
  copy: route({
    method: 'POST',
    path: '/fs/copy',
    input: z.object({ from: AbsPath, to: AbsPath, overwrite: z.boolean().default(true), ...Owner }),
    output: Attr,
    auth: CLIENT,
    idempotent: true,
  }),

  getxattr: route({
    method: 'GET',
    path: '/fs/xattr',
    input: z.object({ path: AbsPath, name: z.string().min(1).max(1024) }),
    output: z.object({ value: z.base64() }),
    auth: CLIENT,
    idempotent: true,
  }),
  listxattr: route({ method: 'GET', path: '/fs/xattrs', input: PathQuery, output: z.object({ names: z.array(z.string()) }), auth: CLIENT, idempotent: true }),
  setxattr: route({
    method: 'POST',
    path: '/fs/xattr',
    input: z.object({
      path: AbsPath,
      name: z.string().min(1).max(1024),
      /** base64 */
      value: z.base64().max(200_000),
      /** XATTR_CREATE (1) or XATTR_REPLACE (2). */
      flags: z.number().int().min(0).max(3).default(0),
    }),
    output: Empty,
    auth: CLIENT,
    idempotent: true,
  }),
  removexattr: route({
    method: 'DELETE',
    path: '/fs/xattr',
    input: z.object({ path: AbsPath, name: z.string().min(1).max(1024) }),
    output: Empty,
    auth: CLIENT,
    idempotent: false,
  }),

  /** Makes every namespace change answered so far durable (a client's fsync of a file or directory). */
  sync: route({ method: 'POST', path: '/fs/sync', input: Empty, output: Empty, auth: CLIENT, idempotent: true }),

  /** Attributes, chunk list with live replica locations, and replication state of a file. */
  info: route({ method: 'GET', path: '/fs/file', input: PathQuery, output: FileInfo, auth: CLIENT, idempotent: true }),

  /**
   * What other clients changed after `seq` of `epoch` (a long poll: waits up to `waitMs` for a change).
   * A mount that hears every change may answer lookups from what it holds.
   */
  changes: route({
    method: 'GET',
    path: '/fs/changes',
    input: z.object({
      epoch: z.string().max(64).default(''),
      since: z.coerce.number().int().nonnegative().default(0),
      waitMs: z.coerce.number().int().min(0).max(MAX_CHANGES_WAIT_MS).default(0),
    }),
    output: NamespaceChanges,
    auth: CLIENT,
    idempotent: true,
  }),
};

export type NameApi = typeof nameApi;
