import { DfsError, fsError } from '../../protocol/errors.js';
import { checkName, splitPath } from '../../protocol/names.js';
import { fileTypes, S_IFMT, typeOfMode, type Attr, type ChunkRef } from '../../protocol/schemas.js';
import { nowNs } from '../../protocol/time.js';
import { ROOT_INO, type InodeRow, type MetaReader, type MetaStore, type MetaTx } from './meta/store.js';

/**
 * The namespace rules, written once above the metadata engine: path walks, name checks, the errno of
 * each failure in the order Linux checks them, link counts, and times.
 */

export interface NamespaceOptions {
  chunkSize: number;
  /** How long a chunk that lost its last reference waits before it is deleted (a racing commit may reuse it). */
  deleteGraceMs: number;
}

const PERMISSION_BITS = 0o7777;
const S_ISGID = 0o2000;
/** Longest xattr name and value, as Linux's XATTR_NAME_MAX and XATTR_SIZE_MAX. */
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
/** Namespaces whose attributes are stored. `system.*` (ACLs) is not: storing an ACL we do not enforce would lie. */
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.'];
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
const isDir = (mode: number): boolean => (mode & S_IFMT) === fileTypes.dir;
const isFile = (mode: number): boolean => (mode & S_IFMT) === fileTypes.file;

export function toAttr(row: InodeRow): Attr {
  return {
    ino: row.ino,
    type: typeOfMode(row.mode) ?? 'file',
    mode: row.mode,
    uid: row.uid,
    gid: row.gid,
    size: row.size,
    nlink: row.nlink,
    rdev: row.rdev,
    atime: row.atime,
    mtime: row.mtime,
    ctime: row.ctime,
    version: row.version,
  };
}

/** The inode of the last name of a path, throwing ENOENT or ENOTDIR as a walk would. */
async function resolve(reader: MetaReader, path: string): Promise<InodeRow> {
  const names = splitPath(path);
  const steps = await reader.walk(names);
  if (steps.length < names.length + 1) {
    const last = steps[steps.length - 1];
    throw fsError(last && !isDir(last.mode) ? 'ENOTDIR' : 'ENOENT', path);
  }
  const inode = await reader.getInode(steps[steps.length - 1]!.ino);
  if (!inode) throw fsError('ENOENT', path);
  return inode;
}

/** The parent directory of a path and the last name, checked: ENOENT/ENOTDIR for the parent. */
async function resolveParent(reader: MetaReader, path: string): Promise<{ parent: InodeRow; name: string; chain: number[] }> {
  const names = splitPath(path);
  const name = names.pop();
  if (name === undefined) throw fsError('EBUSY', path);
  checkName(name);
  const steps = await reader.walk(names);
  if (steps.length < names.length + 1) {
    const last = steps[steps.length - 1];
    throw fsError(last && !isDir(last.mode) ? 'ENOTDIR' : 'ENOENT', path);
  }
  const parentStep = steps[steps.length - 1]!;
  if (!isDir(parentStep.mode)) throw fsError('ENOTDIR', path);
  const parent = await reader.getInode(parentStep.ino);
  if (!parent) throw fsError('ENOENT', path);
  return { parent, name, chain: steps.map((s) => s.ino) };
}

export class Namespace {
  constructor(
    private readonly meta: MetaStore,
    private readonly options: NamespaceOptions,
  ) {}

  async stat(path: string): Promise<Attr> {
    return toAttr(await resolve(this.meta.read, path));
  }

  async inode(path: string): Promise<InodeRow> {
    return resolve(this.meta.read, path);
  }

  async list(path: string): Promise<{ attr: Attr; entries: { name: string; attr: Attr }[] }> {
    const dir = await resolve(this.meta.read, path);
    if (!isDir(dir.mode)) throw fsError('ENOTDIR', path);
    const entries = await this.meta.read.listEntries(dir.ino);
    return { attr: toAttr(dir), entries: entries.map((e) => ({ name: e.name, attr: toAttr(e.inode) })) };
  }

  async readlink(path: string): Promise<string> {
    const inode = await resolve(this.meta.read, path);
    if (inode.target === null) throw fsError('EINVAL', path);
    return inode.target;
  }

  async fileChunks(path: string): Promise<{ inode: InodeRow; chunks: ChunkRef[] }> {
    const inode = await resolve(this.meta.read, path);
    if (isDir(inode.mode)) throw fsError('EISDIR', path);
    return { inode, chunks: await this.meta.read.fileChunks(inode.ino) };
  }

  mkdir(path: string, mode: number, uid: number, gid: number, parents: boolean): Promise<Attr> {
    if (parents) return this.mkdirParents(path, mode, uid, gid);
    if (splitPath(path).length === 0) return Promise.reject(fsError('EEXIST', path));
    return this.meta.write(async (tx) => {
      const { parent, name } = await resolveParent(tx, path);
      if (await tx.lookup(parent.ino, name)) throw fsError('EEXIST', path);
      return toAttr(await this.makeDir(tx, parent, name, mode, uid, gid));
    });
  }

  private mkdirParents(path: string, mode: number, uid: number, gid: number): Promise<Attr> {
    const names = splitPath(path);
    return this.meta.write(async (tx) => {
      let dir = (await tx.getInode(ROOT_INO))!;
      for (const [i, name] of names.entries()) {
        const existing = await tx.lookup(dir.ino, name);
        if (existing) {
          if (!isDir(existing.mode)) throw fsError(i === names.length - 1 ? 'EEXIST' : 'ENOTDIR', '/' + names.slice(0, i + 1).join('/'));
          dir = existing;
        } else {
          dir = await this.makeDir(tx, dir, name, mode, uid, gid);
        }
      }
      return toAttr(dir);
    });
  }

  private async makeDir(tx: MetaTx, parent: InodeRow, name: string, mode: number, uid: number, gid: number): Promise<InodeRow> {
    const now = nowNs();
    // A directory in a set-group-ID directory takes its group and its set-group-ID bit (as ext4).
    const inherit = (parent.mode & S_ISGID) !== 0;
    const row = {
      mode: fileTypes.dir | (mode & PERMISSION_BITS) | (inherit ? S_ISGID : 0),
      uid,
      gid: inherit ? parent.gid : gid,
      size: 0, nlink: 2, rdev: 0, atime: now, mtime: now, ctime: now, version: 0, target: null };
    const ino = await tx.insertInode(row);
    await tx.insertEntry(parent.ino, name, ino);
    await tx.updateInode(parent.ino, { nlink: parent.nlink + 1, mtime: now, ctime: now });
    return { ino, ...row };
  }

  create(path: string, mode: number, uid: number, gid: number, rdev: number, exclusive: boolean): Promise<Attr> {
    return this.meta.write(async (tx) => {
      const { parent, name } = await resolveParent(tx, path);
      const existing = await tx.lookup(parent.ino, name);
      if (existing) {
        if (exclusive) throw fsError('EEXIST', path);
        if (isDir(existing.mode)) throw fsError('EISDIR', path);
        return toAttr(existing);
      }
      const type = mode & S_IFMT || fileTypes.file;
      if (type === fileTypes.dir || type === fileTypes.symlink || typeOfMode(type) === undefined) throw fsError('EINVAL', path);
      const now = nowNs();
      const group = parent.mode & S_ISGID ? parent.gid : gid;
      const row = { mode: type | (mode & PERMISSION_BITS), uid, gid: group, size: 0, nlink: 1, rdev, atime: now, mtime: now, ctime: now, version: 0, target: null };
      const ino = await tx.insertInode(row);
      await tx.insertEntry(parent.ino, name, ino);
      await tx.updateInode(parent.ino, { mtime: now, ctime: now });
      return toAttr({ ino, ...row });
    });
  }

  symlink(path: string, target: string, uid: number, gid: number): Promise<Attr> {
    return this.meta.write(async (tx) => {
      const { parent, name } = await resolveParent(tx, path);
      if (await tx.lookup(parent.ino, name)) throw fsError('EEXIST', path);
      const now = nowNs();
      const row = {
        mode: fileTypes.symlink | 0o777,
        uid,
        gid: parent.mode & S_ISGID ? parent.gid : gid,
        size: Buffer.byteLength(target),
        nlink: 1,
        rdev: 0,
        atime: now,
        mtime: now,
        ctime: now,
        version: 0,
        target,
      };
      const ino = await tx.insertInode(row);
      await tx.insertEntry(parent.ino, name, ino);
      await tx.updateInode(parent.ino, { mtime: now, ctime: now });
      return toAttr({ ino, ...row });
    });
  }

  link(existingPath: string, path: string): Promise<Attr> {
    return this.meta.write(async (tx) => {
      const inode = await resolve(tx, existingPath);
      const { parent, name } = await resolveParent(tx, path);
      if (await tx.lookup(parent.ino, name)) throw fsError('EEXIST', path);
      if (isDir(inode.mode)) throw fsError('EPERM', existingPath);
      const now = nowNs();
      await tx.insertEntry(parent.ino, name, inode.ino);
      await tx.updateInode(inode.ino, { nlink: inode.nlink + 1, ctime: now });
      await tx.updateInode(parent.ino, { mtime: now, ctime: now });
      return toAttr({ ...inode, nlink: inode.nlink + 1, ctime: now });
    });
  }

  unlink(path: string): Promise<void> {
    return this.meta.write(async (tx) => {
      const { parent, name } = await resolveParent(tx, path);
      const inode = await tx.lookup(parent.ino, name);
      if (!inode) throw fsError('ENOENT', path);
      if (isDir(inode.mode)) throw fsError('EISDIR', path);
      const now = nowNs();
      await tx.deleteEntry(parent.ino, name);
      await this.dropLink(tx, inode, now);
      await tx.updateInode(parent.ino, { mtime: now, ctime: now });
    });
  }

  rmdir(path: string): Promise<void> {
    return this.meta.write(async (tx) => {
      const { parent, name } = await resolveParent(tx, path);
      const inode = await tx.lookup(parent.ino, name);
      if (!inode) throw fsError('ENOENT', path);
      if (!isDir(inode.mode)) throw fsError('ENOTDIR', path);
      if (await tx.hasEntries(inode.ino)) throw fsError('ENOTEMPTY', path);
      const now = nowNs();
      await tx.deleteEntry(parent.ino, name);
      await tx.deleteInode(inode.ino, Date.now(), this.options.deleteGraceMs);
      await tx.updateInode(parent.ino, { nlink: parent.nlink - 1, mtime: now, ctime: now });
    });
  }

  /** rename(2): one metadata transaction, no data moves; replaces the target as Linux does. */
  rename(from: string, to: string, noReplace: boolean): Promise<void> {
    return this.meta.write(async (tx) => {
      const src = await resolveParent(tx, from);
      const srcInode = await tx.lookup(src.parent.ino, src.name);
      if (!srcInode) throw fsError('ENOENT', from);
      const dst = await resolveParent(tx, to);
      // Moving a directory into itself or below itself.
      if (isDir(srcInode.mode) && (dst.chain.includes(srcInode.ino) || dst.parent.ino === srcInode.ino)) throw fsError('EINVAL', to);
      const dstInode = await tx.lookup(dst.parent.ino, dst.name);
      if (dstInode) {
        if (noReplace) throw fsError('EEXIST', to);
        // Two names of one inode: rename does nothing.
        if (dstInode.ino === srcInode.ino) return;
        if (isDir(srcInode.mode) && !isDir(dstInode.mode)) throw fsError('ENOTDIR', to);
        if (!isDir(srcInode.mode) && isDir(dstInode.mode)) throw fsError('EISDIR', to);
        if (isDir(dstInode.mode) && (await tx.hasEntries(dstInode.ino))) throw fsError('ENOTEMPTY', to);
      }
      const now = nowNs();
      if (dstInode) {
        await tx.deleteEntry(dst.parent.ino, dst.name);
        if (isDir(dstInode.mode)) {
          await tx.deleteInode(dstInode.ino, Date.now(), this.options.deleteGraceMs);
          dst.parent.nlink -= 1;
        } else {
          await this.dropLink(tx, dstInode, now);
        }
      }
      await tx.deleteEntry(src.parent.ino, src.name);
      await tx.insertEntry(dst.parent.ino, dst.name, srcInode.ino);
      await tx.updateInode(srcInode.ino, { ctime: now });
      const movedDir = isDir(srcInode.mode) && src.parent.ino !== dst.parent.ino ? 1 : 0;
      if (src.parent.ino === dst.parent.ino) {
        await tx.updateInode(dst.parent.ino, { nlink: dst.parent.nlink, mtime: now, ctime: now });
      } else {
        await tx.updateInode(src.parent.ino, { nlink: src.parent.nlink - movedDir, mtime: now, ctime: now });
        await tx.updateInode(dst.parent.ino, { nlink: dst.parent.nlink + movedDir, mtime: now, ctime: now });
      }
    });
  }

  setattr(
    path: string,
    patch: { mode?: number | undefined; uid?: number | undefined; gid?: number | undefined; atime?: string | undefined; mtime?: string | undefined; size?: 0 | undefined },
  ): Promise<Attr> {
    return this.meta.write(async (tx) => {
      const inode = await resolve(tx, path);
      const now = nowNs();
      const next: InodeRow = { ...inode, ctime: now };
      if (patch.mode !== undefined) next.mode = (inode.mode & S_IFMT) | (patch.mode & PERMISSION_BITS);
      if (patch.uid !== undefined) next.uid = patch.uid;
      if (patch.gid !== undefined) next.gid = patch.gid;
      if (patch.atime !== undefined) next.atime = patch.atime;
      if (patch.mtime !== undefined) next.mtime = patch.mtime;
      if (patch.size !== undefined) {
        if (isDir(inode.mode)) throw fsError('EISDIR', path);
        if (!isFile(inode.mode)) throw fsError('EINVAL', path);
        if (inode.size !== 0) {
          await tx.setFileChunks(inode.ino, [], Date.now(), this.options.deleteGraceMs);
          next.size = 0;
          next.version = inode.version + 1;
        }
        if (patch.mtime === undefined) next.mtime = now;
      }
      await tx.updateInode(inode.ino, next);
      return toAttr(next);
    });
  }

  /**
   * Replaces a file's content. `verify` runs inside the transaction and must throw if a chunk is no longer
   * held well enough (it may have been collected since the caller checked).
   */
  commit(
    path: string,
    ino: number | undefined,
    chunks: readonly ChunkRef[],
    size: number,
    mtime: string | undefined,
    verify: (tx: MetaTx) => Promise<void>,
  ): Promise<Attr> {
    this.checkChunkList(path, chunks, size);
    return this.meta.write(async (tx) => {
      const inode = ino !== undefined ? await tx.getInode(ino) : await resolve(tx, path);
      if (!inode) throw fsError('ENOENT', path);
      if (isDir(inode.mode)) throw fsError('EISDIR', path);
      if (!isFile(inode.mode)) throw fsError('EINVAL', path);
      await verify(tx);
      const now = nowNs();
      await tx.setFileChunks(inode.ino, chunks, Date.now(), this.options.deleteGraceMs);
      const next: InodeRow = { ...inode, size, version: inode.version + 1, mtime: mtime ?? now, ctime: now };
      await tx.updateInode(inode.ino, next);
      return toAttr(next);
    });
  }

  /** A file's chunks are fixed-size pieces: all but the last exactly chunkSize, adding up to the size. */
  checkChunkList(path: string, chunks: readonly ChunkRef[], size: number): void {
    const { chunkSize } = this.options;
    let total = 0;
    chunks.forEach((chunk, i) => {
      const last = i === chunks.length - 1;
      if (chunk.size === 0 || chunk.size > chunkSize || (!last && chunk.size !== chunkSize)) {
        throw new DfsError('EINVAL', `${path}: chunk ${i} has ${chunk.size} bytes; chunks are ${chunkSize} bytes but the last`);
      }
      total += chunk.size;
    });
    if (total !== size) throw new DfsError('EINVAL', `${path}: chunks add up to ${total} bytes, not ${size}`);
  }

  /** Copies a file by sharing its chunks; an existing target file keeps its inode and gets the content. */
  copy(from: string, to: string, overwrite: boolean, uid: number, gid: number): Promise<Attr> {
    return this.meta.write(async (tx) => {
      const source = await resolve(tx, from);
      if (isDir(source.mode)) throw fsError('EISDIR', from);
      if (!isFile(source.mode)) throw fsError('EINVAL', from);
      const chunks = await tx.fileChunks(source.ino);
      const { parent, name } = await resolveParent(tx, to);
      const existing = await tx.lookup(parent.ino, name);
      const now = nowNs();
      if (existing) {
        if (!overwrite) throw fsError('EEXIST', to);
        if (isDir(existing.mode)) throw fsError('EISDIR', to);
        if (!isFile(existing.mode)) throw fsError('EINVAL', to);
        if (existing.ino === source.ino) return toAttr(existing);
        await tx.setFileChunks(existing.ino, chunks, Date.now(), this.options.deleteGraceMs);
        const next: InodeRow = { ...existing, size: source.size, version: existing.version + 1, mtime: now, ctime: now };
        await tx.updateInode(existing.ino, next);
        return toAttr(next);
      }
      const row = { ...source, uid, gid, nlink: 1, atime: now, mtime: now, ctime: now, version: 1 };
      const { ino: _old, ...fields } = row;
      const ino = await tx.insertInode(fields);
      await tx.insertEntry(parent.ino, name, ino);
      await tx.setFileChunks(ino, chunks, Date.now(), this.options.deleteGraceMs);
      await tx.updateInode(parent.ino, { mtime: now, ctime: now });
      return toAttr({ ...row, ino });
    });
  }

  async getXattr(path: string, name: string): Promise<Buffer> {
    const inode = await resolve(this.meta.read, path);
    checkXattrName(name);
    const value = await this.meta.read.getXattr(inode.ino, name);
    if (value === undefined) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
    return value;
  }

  async listXattrs(path: string): Promise<string[]> {
    const inode = await resolve(this.meta.read, path);
    return this.meta.read.listXattrs(inode.ino);
  }

  setXattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    checkXattrName(name);
    if (value.length > XATTR_SIZE_MAX) throw new DfsError('E2BIG', `${name}: value longer than ${XATTR_SIZE_MAX} bytes`);
    return this.meta.write(async (tx) => {
      const inode = await resolve(tx, path);
      // Linux allows user.* attributes only on regular files and directories.
      if (name.startsWith('user.') && !isFile(inode.mode) && !isDir(inode.mode)) throw fsError('EPERM', path);
      const exists = (await tx.getXattr(inode.ino, name)) !== undefined;
      if (flags & XATTR_CREATE && exists) throw fsError('EEXIST', path);
      if (flags & XATTR_REPLACE && !exists) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
      await tx.setXattr(inode.ino, name, value);
      await tx.updateInode(inode.ino, { ctime: nowNs() });
    });
  }

  removeXattr(path: string, name: string): Promise<void> {
    checkXattrName(name);
    return this.meta.write(async (tx) => {
      const inode = await resolve(tx, path);
      if (!(await tx.removeXattr(inode.ino, name))) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
      await tx.updateInode(inode.ino, { ctime: nowNs() });
    });
  }

  /** One name of an inode is gone: drop the inode with its last name. */
  private async dropLink(tx: MetaTx, inode: InodeRow, now: string): Promise<void> {
    if (inode.nlink <= 1) await tx.deleteInode(inode.ino, Date.now(), this.options.deleteGraceMs);
    else await tx.updateInode(inode.ino, { nlink: inode.nlink - 1, ctime: now });
  }
}

function checkXattrName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > XATTR_NAME_MAX) throw new DfsError('ERANGE', `bad attribute name length: ${name.length}`);
  if (!XATTR_NAMESPACES.some((prefix) => name.startsWith(prefix) && name.length > prefix.length)) {
    throw new DfsError('EOPNOTSUPP', `attribute ${name} is not supported (only ${XATTR_NAMESPACES.join(', ')})`);
  }
}
