import type { Logger } from '../../common/log.js';
import { DfsError, fsError } from '../../protocol/errors.js';
import { checkName, splitPath } from '../../protocol/names.js';
import { fileTypes, PERMISSION_BITS, S_IFMT, typeOfMode, type Attr, type ChunkRef } from '../../protocol/schemas.js';
import { changedFields, type AttrChanges } from '../../protocol/name-api.js';
import { nowNs } from '../../protocol/time.js';
import { ROOT_INO, type InodePatch, type InodeRow, type MetaStore, type Mutation, type StoredChunk } from './meta/store.js';
import { ChangeFeed } from './change-feed.js';
import { Tree } from './tree.js';

/**
 * The namespace rules, written once above the metadata engine: path walks, name checks, the errno of
 * each failure in the order Linux checks them, link counts, and times. The namespace is held in memory
 * (tree.ts): every operation checks and changes it synchronously, so operations are atomic and ordered,
 * then waits until the engine has made the change durable before it answers.
 */

export interface NamespaceOptions {
  chunkSize: number;
}

const S_ISGID = 0o2000;
/** Longest xattr name and value, as Linux's XATTR_NAME_MAX and XATTR_SIZE_MAX. */
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
/** Namespaces whose attributes are stored. `system.*` (ACLs) is not: storing an ACL we do not enforce would lie. */
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.'];
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** Reads of a file's chunk list before giving up on one that never matches its attributes. */
const CONSISTENT_READ_ATTEMPTS = 50;
const isDir = (mode: number): boolean => (mode & S_IFMT) === fileTypes.dir;
const isFile = (mode: number): boolean => (mode & S_IFMT) === fileTypes.file;

export function toAttr(row: InodeRow, hasXattrs = false): Attr {
  return {
    ...(hasXattrs ? { xattrs: true as const } : {}),
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

/** A change made from a version of a file that is no longer its latest: the caller reads it again. */
export class VersionMoved extends DfsError {
  constructor(path: string) {
    super('VERSION_MOVED', `${path} changed since the change to it was made from it`);
  }
}

/** The changes of one operation: applied to the tree at once, and kept for the engine. */
class Edit {
  readonly mutations: Mutation[] = [];
  /** What this edit changes, for the change feed: names that come or go, folders moved or removed, inodes. */
  readonly changed = { entries: new Set<string>(), trees: new Set<string>(), inos: new Set<number>() };

  constructor(private readonly tree: Tree) {}

  private push(m: Mutation): void {
    if (m.kind === 'insertEntry') this.namesChange(m.entry.parent, m.entry.name, undefined);
    else if (m.kind === 'deleteEntry') this.namesChange(m.parent, m.name, this.tree.lookup(m.parent, m.name));
    else if (m.kind === 'updateInode' || m.kind === 'deleteInode' || m.kind === 'setXattr' || m.kind === 'removeXattr') this.changed.inos.add(m.ino);
    this.tree.apply(m);
    this.mutations.push(m);
  }

  /**
   * A name comes or goes in `parent`; if a folder goes (`gone`), whatever was known below its path is void.
   * (A folder that comes takes a path nothing was known below: what was there went first, and said so.)
   */
  private namesChange(parent: number, name: string, gone: InodeRow | undefined): void {
    const dir = this.tree.dirPath(parent);
    if (dir === undefined) return;
    const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
    this.changed.entries.add(path);
    if (gone && isDir(gone.mode)) this.changed.trees.add(path);
  }

  /** A mutation that does not change the tree (placement), carried in the same transaction. */
  raw(m: Mutation): void {
    this.push(m);
  }

  insertInode(fields: Omit<InodeRow, 'ino'>): InodeRow {
    const inode = { ino: this.tree.allocateIno(), ...fields };
    this.push({ kind: 'insertInode', inode });
    return this.tree.get(inode.ino)!;
  }

  updateInode(ino: number, patch: InodePatch): void {
    this.push({ kind: 'updateInode', ino, patch });
  }

  deleteInode(ino: number): void {
    this.push({ kind: 'deleteInode', ino });
  }

  insertEntry(parent: number, name: string, ino: number): void {
    this.push({ kind: 'insertEntry', entry: { parent, name, ino } });
  }

  deleteEntry(parent: number, name: string): void {
    this.push({ kind: 'deleteEntry', parent, name });
  }

  setChunks(ino: number, chunks: readonly ChunkRef[]): void {
    this.push({ kind: 'setChunks', ino, chunks });
  }

  copyChunks(from: number, to: number): void {
    this.push({ kind: 'copyChunks', from, to });
  }

  setXattr(ino: number, name: string, value: Buffer): void {
    this.push({ kind: 'setXattr', ino, name, value });
  }

  removeXattr(ino: number, name: string): void {
    this.push({ kind: 'removeXattr', ino, name });
  }
}

export class Namespace {
  private reloading: Promise<void> | undefined;
  /** What each change touched (names, folders, inodes), for mounts that cache the namespace. */
  readonly changes = new ChangeFeed();
  /** The client the operation being started is for (set by `by`, read as `change` starts). */
  private origin: string | undefined;

  private constructor(
    private readonly meta: MetaStore,
    private readonly options: NamespaceOptions,
    private tree: Tree,
    private readonly log: Logger,
  ) {}

  /** Builds the namespace from the database (once at start). */
  static async load(meta: MetaStore, options: NamespaceOptions, log: Logger): Promise<Namespace> {
    return new Namespace(meta, options, Tree.fromSnapshot(await meta.loadNamespace()), log);
  }

  /** The inode of the last name of a path, throwing ENOENT or ENOTDIR as a walk would. */
  private resolve(path: string): InodeRow {
    const names = splitPath(path);
    const steps = this.tree.walk(names);
    if (steps.length < names.length + 1) {
      const last = steps[steps.length - 1];
      throw fsError(last && !isDir(last.mode) ? 'ENOTDIR' : 'ENOENT', path);
    }
    return steps[steps.length - 1]!;
  }

  /** The parent directory of a path and the last name, checked: ENOENT/ENOTDIR for the parent. */
  private resolveParent(path: string): { parent: InodeRow; name: string; chain: number[] } {
    const names = splitPath(path);
    const name = names.pop();
    if (name === undefined) throw fsError('EBUSY', path);
    checkName(name);
    const steps = this.tree.walk(names);
    if (steps.length < names.length + 1) {
      const last = steps[steps.length - 1];
      throw fsError(last && !isDir(last.mode) ? 'ENOTDIR' : 'ENOENT', path);
    }
    const parent = steps[steps.length - 1]!;
    if (!isDir(parent.mode)) throw fsError('ENOTDIR', path);
    return { parent, name, chain: steps.map((s) => s.ino) };
  }

  /**
   * Runs one operation: `fn` checks and changes the tree synchronously (refusals throw before any
   * change), then the change is made durable. If the database fails, the tree is rebuilt from it.
   */
  private async change<T>(fn: (edit: Edit) => T, durable = false): Promise<T> {
    const origin = this.origin;
    this.origin = undefined;
    if (this.reloading) throw new DfsError('EIO', 'the name server is recovering from a metadata write failure');
    const edit = new Edit(this.tree);
    let result: T;
    try {
      result = fn(edit);
    } catch (err) {
      // A refusal after a change would leave the tree ahead of the database: a bug, so resynchronize.
      if (edit.mutations.length > 0) void this.reload(err);
      throw err;
    }
    if (edit.mutations.length === 0) return result;
    try {
      await this.meta.apply(edit.mutations, { durable });
    } catch (err) {
      void this.reload(err);
      throw new DfsError('EIO', `metadata write failed: ${(err as Error).message}`);
    }
    this.changes.publish(origin, edit.changed);
    return result;
  }

  /**
   * Runs `op` (a call of one of the changing methods) on behalf of client `origin`, whom the change feed
   * then leaves out: it knows what it did. `change` takes the origin before its first await.
   */
  by<T>(origin: string | undefined, op: () => T): T {
    this.origin = origin;
    try {
      return op();
    } finally {
      this.origin = undefined;
    }
  }

  /** Rebuilds the tree from what the database holds, then accepts changes again. */
  private reload(cause: unknown): Promise<void> {
    this.reloading ??= (async () => {
      this.log.error({ err: cause instanceof Error ? cause.message : String(cause) }, 'metadata write failed; reloading the namespace');
      for (;;) {
        try {
          this.tree = Tree.fromSnapshot(await this.meta.loadNamespace());
          this.changes.reset();
          break;
        } catch (err) {
          this.log.error({ err: (err as Error).message }, 'reloading the namespace failed; retrying');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
      this.meta.resume();
      this.reloading = undefined;
    })();
    return this.reloading;
  }

  /** Makes every change answered so far durable (changes other than commits may reach the disk later). */
  sync(): Promise<void> {
    return this.meta.sync();
  }

  /** An inode's attributes as clients see them. */
  attr(row: InodeRow): Attr {
    return toAttr(row, this.tree.hasXattrs(row.ino));
  }

  counts(): { files: number; dirs: number; bytes: number } {
    return { files: this.tree.files, dirs: this.tree.dirs, bytes: this.tree.bytes };
  }

  stat(path: string): Attr {
    return this.attr(this.resolve(path));
  }

  inode(path: string): InodeRow {
    return this.resolve(path);
  }

  inodeByNumber(ino: number): InodeRow | undefined {
    return this.tree.get(ino);
  }

  list(path: string): { attr: Attr; entries: { name: string; attr: Attr }[] } {
    const dir = this.resolve(path);
    if (!isDir(dir.mode)) throw fsError('ENOTDIR', path);
    return { attr: this.attr(dir), entries: this.tree.entries(dir.ino).map((e) => ({ name: e.name, attr: this.attr(e.inode) })) };
  }

  readlink(path: string): string {
    const inode = this.resolve(path);
    if (inode.target === null) throw fsError('EINVAL', path);
    return inode.target;
  }

  /**
   * A file's attributes and the chunk list of that same version. The tree runs ahead of the database
   * while a change is being made durable, and a commit may land while the list is read: a list of another
   * version than the attributes (an append's new size with the old list, or the reverse) is read again once
   * the writes under way are done.
   */
  async fileChunks(path: string): Promise<{ inode: InodeRow; chunks: StoredChunk[] }> {
    for (let attempt = 1; ; attempt++) {
      const inode = this.resolve(path);
      if (isDir(inode.mode)) throw fsError('EISDIR', path);
      const seen = { ...inode };
      const stored = await this.meta.read.fileChunks(seen.ino);
      if (stored.version === seen.version) return { inode: seen, chunks: stored.chunks };
      if (attempt >= CONSISTENT_READ_ATTEMPTS) throw new DfsError('EBUSY', `${path} changed on every one of ${attempt} reads`);
      await this.meta.written();
    }
  }

  mkdir(path: string, mode: number, uid: number, gid: number, parents: boolean): Promise<Attr> {
    return this.change((edit) => {
      const names = splitPath(path);
      if (names.length === 0) {
        if (parents) return this.attr(this.tree.get(ROOT_INO)!);
        throw fsError('EEXIST', path);
      }
      if (!parents) {
        const { parent, name } = this.resolveParent(path);
        if (this.tree.lookup(parent.ino, name)) throw fsError('EEXIST', path);
        return this.attr(this.makeDir(edit, parent, name, mode, uid, gid));
      }
      // mkdir -p: check the whole path first, so a refusal changes nothing.
      let dir = this.tree.get(ROOT_INO)!;
      let i = 0;
      for (; i < names.length; i++) {
        checkName(names[i]!);
        const existing = this.tree.lookup(dir.ino, names[i]!);
        if (!existing) break;
        if (!isDir(existing.mode)) throw fsError(i === names.length - 1 ? 'EEXIST' : 'ENOTDIR', '/' + names.slice(0, i + 1).join('/'));
        dir = existing;
      }
      for (const name of names.slice(i + 1)) checkName(name);
      for (; i < names.length; i++) dir = this.makeDir(edit, dir, names[i]!, mode, uid, gid);
      return this.attr(dir);
    });
  }

  private makeDir(edit: Edit, parent: InodeRow, name: string, mode: number, uid: number, gid: number): InodeRow {
    // A directory in a set-group-ID directory takes its group and its set-group-ID bit (as ext4).
    const inherit = (parent.mode & S_ISGID) !== 0;
    return this.addInode(edit, parent, name, {
      mode: fileTypes.dir | (mode & PERMISSION_BITS) | (inherit ? S_ISGID : 0),
      uid,
      gid,
      size: 0,
      nlink: 2,
      rdev: 0,
      target: null,
    });
  }

  /**
   * Makes a new inode under `name` in `parent`, now: a set-group-ID parent gives it its group, and a new
   * directory adds a link to its parent.
   */
  private addInode(edit: Edit, parent: InodeRow, name: string, fields: Pick<InodeRow, 'mode' | 'uid' | 'gid' | 'size' | 'nlink' | 'rdev' | 'target'>): InodeRow {
    const now = nowNs();
    const inode = edit.insertInode({ ...fields, gid: parent.mode & S_ISGID ? parent.gid : fields.gid, atime: now, mtime: now, ctime: now, version: 0 });
    edit.insertEntry(parent.ino, name, inode.ino);
    edit.updateInode(parent.ino, { ...(isDir(fields.mode) ? { nlink: parent.nlink + 1 } : {}), mtime: now, ctime: now });
    return inode;
  }

  create(path: string, mode: number, uid: number, gid: number, rdev: number, exclusive: boolean): Promise<Attr> {
    return this.change((edit) => {
      const { parent, name } = this.resolveParent(path);
      const existing = this.tree.lookup(parent.ino, name);
      if (existing) {
        if (exclusive) throw fsError('EEXIST', path);
        if (isDir(existing.mode)) throw fsError('EISDIR', path);
        return this.attr(existing);
      }
      const type = mode & S_IFMT || fileTypes.file;
      if (type === fileTypes.dir || type === fileTypes.symlink || typeOfMode(type) === undefined) throw fsError('EINVAL', path);
      return this.attr(this.addInode(edit, parent, name, { mode: type | (mode & PERMISSION_BITS), uid, gid, size: 0, nlink: 1, rdev, target: null }));
    });
  }

  symlink(path: string, target: string, uid: number, gid: number): Promise<Attr> {
    return this.change((edit) => {
      if (target.includes('\0')) throw new DfsError('EINVAL', 'a symlink target cannot contain NUL');
      const { parent, name } = this.resolveParent(path);
      if (this.tree.lookup(parent.ino, name)) throw fsError('EEXIST', path);
      return this.attr(this.addInode(edit, parent, name, { mode: fileTypes.symlink | 0o777, uid, gid, size: Buffer.byteLength(target), nlink: 1, rdev: 0, target }));
    });
  }

  link(existingPath: string, path: string): Promise<Attr> {
    return this.change((edit) => {
      const inode = this.resolve(existingPath);
      const { parent, name } = this.resolveParent(path);
      if (this.tree.lookup(parent.ino, name)) throw fsError('EEXIST', path);
      if (isDir(inode.mode)) throw fsError('EPERM', existingPath);
      const now = nowNs();
      edit.insertEntry(parent.ino, name, inode.ino);
      edit.updateInode(inode.ino, { nlink: inode.nlink + 1, ctime: now });
      edit.updateInode(parent.ino, { mtime: now, ctime: now });
      return this.attr(inode);
    });
  }

  /** Removes a name; resolves to the inode that lost it. */
  unlink(path: string): Promise<number> {
    return this.change((edit) => {
      const { parent, name } = this.resolveParent(path);
      const inode = this.tree.lookup(parent.ino, name);
      if (!inode) throw fsError('ENOENT', path);
      if (isDir(inode.mode)) throw fsError('EISDIR', path);
      const now = nowNs();
      const ino = inode.ino;
      edit.deleteEntry(parent.ino, name);
      this.dropLink(edit, inode, now);
      edit.updateInode(parent.ino, { mtime: now, ctime: now });
      return ino;
    });
  }

  rmdir(path: string): Promise<void> {
    return this.change((edit) => {
      const { parent, name } = this.resolveParent(path);
      const inode = this.tree.lookup(parent.ino, name);
      if (!inode) throw fsError('ENOENT', path);
      if (!isDir(inode.mode)) throw fsError('ENOTDIR', path);
      if (this.tree.hasChildren(inode.ino)) throw fsError('ENOTEMPTY', path);
      const now = nowNs();
      edit.deleteEntry(parent.ino, name);
      edit.deleteInode(inode.ino);
      edit.updateInode(parent.ino, { nlink: parent.nlink - 1, mtime: now, ctime: now });
    });
  }

  /**
   * rename(2): one metadata transaction, no data moves; replaces the target as Linux does. Resolves to
   * the inode of a file it replaced, if any.
   */
  rename(from: string, to: string, noReplace: boolean): Promise<number | undefined> {
    return this.change((edit) => {
      const src = this.resolveParent(from);
      const srcInode = this.tree.lookup(src.parent.ino, src.name);
      if (!srcInode) throw fsError('ENOENT', from);
      const dst = this.resolveParent(to);
      // Moving a directory into itself or below itself.
      if (isDir(srcInode.mode) && (dst.chain.includes(srcInode.ino) || dst.parent.ino === srcInode.ino)) throw fsError('EINVAL', to);
      const dstInode = this.tree.lookup(dst.parent.ino, dst.name);
      if (dstInode) {
        if (noReplace) throw fsError('EEXIST', to);
        // Two names of one inode: rename does nothing.
        if (dstInode.ino === srcInode.ino) return undefined;
        if (isDir(srcInode.mode) && !isDir(dstInode.mode)) throw fsError('ENOTDIR', to);
        if (!isDir(srcInode.mode) && isDir(dstInode.mode)) throw fsError('EISDIR', to);
        if (isDir(dstInode.mode) && this.tree.hasChildren(dstInode.ino)) throw fsError('ENOTEMPTY', to);
      }
      const now = nowNs();
      const replacedFile = dstInode && !isDir(dstInode.mode) ? dstInode.ino : undefined;
      // Link counts of the two parents, worked out before any change.
      const srcParent = src.parent.ino;
      const dstParent = dst.parent.ino;
      const srcNlink = src.parent.nlink;
      let dstNlink = dst.parent.nlink;
      if (dstInode) {
        edit.deleteEntry(dstParent, dst.name);
        if (isDir(dstInode.mode)) {
          edit.deleteInode(dstInode.ino);
          dstNlink -= 1;
        } else {
          this.dropLink(edit, dstInode, now);
        }
      }
      edit.deleteEntry(srcParent, src.name);
      edit.insertEntry(dstParent, dst.name, srcInode.ino);
      edit.updateInode(srcInode.ino, { ctime: now });
      if (srcParent === dstParent) {
        edit.updateInode(dstParent, { nlink: dstNlink, mtime: now, ctime: now });
      } else {
        const movedDir = isDir(srcInode.mode) ? 1 : 0;
        edit.updateInode(srcParent, { nlink: srcNlink - movedDir, mtime: now, ctime: now });
        edit.updateInode(dstParent, { nlink: dstNlink + movedDir, mtime: now, ctime: now });
      }
      return replacedFile;
    });
  }

  setattr(
    path: string,
    patch: { mode?: number | undefined; uid?: number | undefined; gid?: number | undefined; atime?: string | undefined; mtime?: string | undefined; size?: 0 | undefined },
  ): Promise<Attr> {
    return this.change((edit) => {
      const inode = this.resolve(path);
      if (patch.size !== undefined) {
        if (isDir(inode.mode)) throw fsError('EISDIR', path);
        if (!isFile(inode.mode)) throw fsError('EINVAL', path);
      }
      const now = nowNs();
      const next: InodePatch = { ctime: now, ...changedFields(inode, patch) };
      if (patch.mtime !== undefined) next.mtime = patch.mtime;
      if (patch.size !== undefined) {
        if (inode.size !== 0) {
          edit.setChunks(inode.ino, []);
          next.size = 0;
          next.version = inode.version + 1;
        }
        if (patch.mtime === undefined) next.mtime = now;
      }
      edit.updateInode(inode.ino, next);
      return this.attr(inode);
    });
  }

  /**
   * Replaces a file's content with a chunk list the caller has checked is held well enough (and pinned
   * against collection until this resolves). `basedOn`: the version the new content was made from; if the
   * file has moved on since, VersionMoved is thrown and nothing changes.
   */
  commit(
    path: string,
    ino: number | undefined,
    chunks: readonly ChunkRef[],
    size: number,
    mtime: string | undefined,
    placement: readonly Mutation[] = [],
    attrs: AttrChanges = {},
    basedOn?: number,
  ): Promise<Attr> {
    this.checkChunkList(path, chunks, size);
    return this.change((edit) => {
      const inode = ino !== undefined ? this.tree.get(ino) : this.resolve(path);
      if (!inode) throw fsError('ENOENT', path);
      if (isDir(inode.mode)) throw fsError('EISDIR', path);
      if (!isFile(inode.mode)) throw fsError('EINVAL', path);
      // Content made from the version read (an append): another commit since then would be lost.
      if (basedOn !== undefined && inode.version !== basedOn) throw new VersionMoved(path);
      const now = nowNs();
      // Copies the writer has receipts for are recorded first, in the same transaction.
      for (const m of placement) edit.raw(m);
      edit.setChunks(inode.ino, chunks);
      edit.updateInode(inode.ino, { ...changedFields(inode, attrs), size, version: inode.version + 1, mtime: mtime ?? now, ctime: now });
      return this.attr(inode);
      // A file's new content is what close() and fsync() wait for: on disk before the answer.
    }, true);
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
    return this.change((edit) => {
      const source = this.resolve(from);
      if (isDir(source.mode)) throw fsError('EISDIR', from);
      if (!isFile(source.mode)) throw fsError('EINVAL', from);
      const { parent, name } = this.resolveParent(to);
      const existing = this.tree.lookup(parent.ino, name);
      const now = nowNs();
      if (existing) {
        if (!overwrite) throw fsError('EEXIST', to);
        if (isDir(existing.mode)) throw fsError('EISDIR', to);
        if (!isFile(existing.mode)) throw fsError('EINVAL', to);
        if (existing.ino === source.ino) return this.attr(existing);
        edit.copyChunks(source.ino, existing.ino);
        edit.updateInode(existing.ino, { size: source.size, version: existing.version + 1, mtime: now, ctime: now });
        return this.attr(existing);
      }
      const { ino: _sourceIno, ...fields } = source;
      const inode = edit.insertInode({ ...fields, uid, gid, nlink: 1, atime: now, mtime: now, ctime: now, version: 1 });
      edit.insertEntry(parent.ino, name, inode.ino);
      edit.copyChunks(source.ino, inode.ino);
      edit.updateInode(parent.ino, { mtime: now, ctime: now });
      return this.attr(inode);
    });
  }

  getXattr(path: string, name: string): Buffer {
    const inode = this.resolve(path);
    checkXattrName(name);
    const value = this.tree.xattr(inode.ino, name);
    if (value === undefined) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
    return value;
  }

  listXattrs(path: string): string[] {
    return this.tree.xattrNames(this.resolve(path).ino);
  }

  setXattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    return this.change((edit) => {
      checkXattrName(name);
      if (value.length > XATTR_SIZE_MAX) throw new DfsError('E2BIG', `${name}: value longer than ${XATTR_SIZE_MAX} bytes`);
      const inode = this.resolve(path);
      // Linux allows user.* attributes only on regular files and directories.
      if (name.startsWith('user.') && !isFile(inode.mode) && !isDir(inode.mode)) throw fsError('EPERM', path);
      const exists = this.tree.xattr(inode.ino, name) !== undefined;
      if (flags & XATTR_CREATE && exists) throw fsError('EEXIST', path);
      if (flags & XATTR_REPLACE && !exists) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
      edit.setXattr(inode.ino, name, value);
      edit.updateInode(inode.ino, { ctime: nowNs() });
    });
  }

  removeXattr(path: string, name: string): Promise<void> {
    return this.change((edit) => {
      checkXattrName(name);
      const inode = this.resolve(path);
      if (this.tree.xattr(inode.ino, name) === undefined) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
      edit.removeXattr(inode.ino, name);
      edit.updateInode(inode.ino, { ctime: nowNs() });
    });
  }

  /** One name of an inode is gone: drop the inode with its last name. */
  private dropLink(edit: Edit, inode: InodeRow, now: string): void {
    if (inode.nlink <= 1) edit.deleteInode(inode.ino);
    else edit.updateInode(inode.ino, { nlink: inode.nlink - 1, ctime: now });
  }
}

function checkXattrName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > XATTR_NAME_MAX) throw new DfsError('ERANGE', `bad attribute name length: ${name.length}`);
  if (name.includes('\0')) throw new DfsError('EINVAL', 'an attribute name cannot contain NUL');
  if (!XATTR_NAMESPACES.some((prefix) => name.startsWith(prefix) && name.length > prefix.length)) {
    throw new DfsError('EOPNOTSUPP', `attribute ${name} is not supported (only ${XATTR_NAMESPACES.join(', ')})`);
  }
}
