import { z } from 'zod';
import { NS_TIME_PATTERN } from './time.js';

/** A chunk name: the lowercase hex SHA-256 of its bytes. Nothing else ever names a file on a storage disk. */
export const HASH_PATTERN = /^[0-9a-f]{64}$/;
export const Hash = z.string().regex(HASH_PATTERN, 'a chunk hash is 64 lowercase hex digits');

export const NsTime = z.string().regex(NS_TIME_PATTERN, 'a time is a decimal count of nanoseconds');
// The length limit (PATH_MAX, in bytes) is the name check's, so an over-long path is ENAMETOOLONG; this cap only
// keeps absurd inputs out.
export const AbsPath = z.string().min(1).max(65_536).startsWith('/', 'paths are absolute');
export const Uint = z.number().int().nonnegative();
export const Mode = z.number().int().min(0).max(0o177777);

/** File types, as st_mode's S_IFMT bits name them. */
export const S_IFMT = 0o170000;
/** The permission, set-id and sticky bits of st_mode. */
export const PERMISSION_BITS = 0o7777;
export const fileTypes = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  fifo: 0o010000,
  socket: 0o140000,
  char: 0o020000,
  block: 0o060000,
} as const;
export type FileType = keyof typeof fileTypes;
export const FileTypeSchema = z.enum(Object.keys(fileTypes) as [FileType, ...FileType[]]);

export function typeOfMode(mode: number): FileType | undefined {
  const bits = mode & S_IFMT;
  return (Object.keys(fileTypes) as FileType[]).find((type) => fileTypes[type] === bits);
}

/** What stat(2) tells of an inode, plus the content version. */
export const Attr = z.object({
  ino: Uint,
  type: FileTypeSchema,
  /** Full st_mode: type bits and permission bits. */
  mode: Mode,
  uid: Uint,
  gid: Uint,
  size: Uint,
  nlink: Uint,
  rdev: Uint,
  atime: NsTime,
  mtime: NsTime,
  ctime: NsTime,
  /** Bumped by every content commit, so clients can tell a file changed. */
  version: Uint,
  /** Present (true) when the inode has extended attributes: a client can answer "none" without asking. */
  xattrs: z.literal(true).optional(),
});
export type Attr = z.infer<typeof Attr>;

export const DirEntry = z.object({ name: z.string(), attr: Attr });
export type DirEntry = z.infer<typeof DirEntry>;

/** A chunk of a file as a commit names it. */
export const ChunkRef = z.object({ hash: Hash, size: Uint });
export type ChunkRef = z.infer<typeof ChunkRef>;

export const ServerRef = z.object({ id: z.string(), url: z.string() });
export type ServerRef = z.infer<typeof ServerRef>;

/** A server that now holds a chunk, with its signed receipt for the name server. */
export const StoredCopy = ServerRef.extend({ receipt: z.string().max(64) });
export type StoredCopy = z.infer<typeof StoredCopy>;

/** A receipt as a commit carries it. */
export const Receipt = z.object({ hash: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative(), server: z.string().max(64), receipt: z.string().max(64) });
export type Receipt = z.infer<typeof Receipt>;

/**
 * Most bytes of a chunk the name server keeps itself (a whole small file, in its database) a cluster may be
 * set to; base64 in JSON, it stays a modest request.
 */
export const MAX_INLINE_BYTES = 1024 * 1024;
/** Bytes as base64, at most MAX_INLINE_BYTES of them (whoever decodes them checks them against their hash). */
export const Base64 = z.string().max(Math.ceil(MAX_INLINE_BYTES / 3) * 4);

/** A chunk's bytes sent to the name server to keep (a small file's whole content). */
export const InlineChunk = z.object({ hash: Hash, data: Base64 });
export type InlineChunk = z.infer<typeof InlineChunk>;

/**
 * A writer's name for one change it may send more than once (its answer lost): the name server makes it
 * once. Printable ASCII (it is stored as an SQL literal, which cannot hold a NUL).
 */
export const ChangeId = z.string().regex(/^[\x21-\x7e]{8,64}$/, 'printable ASCII, 8 to 64 characters');

/**
 * A chunk of a file as readers see it: where it sits in the file and which live servers hold it, or, for a
 * chunk the name server keeps itself, its bytes (`data`, base64; `servers` is then empty).
 */
export const ChunkLocation = z.object({
  hash: Hash,
  size: Uint,
  offset: Uint,
  servers: z.array(ServerRef),
  data: Base64.optional(),
});
export type ChunkLocation = z.infer<typeof ChunkLocation>;

export const StorageState = z.enum(['alive', 'suspect', 'dead']);
export type StorageState = z.infer<typeof StorageState>;
