import { constants } from 'node:fs';
import type { ClusterLayout, DfsClient } from '../client/dfs-client.js';
import type { Logger } from '../common/log.js';
import { RecentMap } from '../common/recent-map.js';
import { DfsError, fsError, outcomeUnknown } from '../protocol/errors.js';
import { changedFields, keptByNameServer, nameApi, type ClusterStatus, type FileInfo } from '../protocol/name-api.js';
import { parentAndName } from '../protocol/names.js';
import { fileTypes, type Attr } from '../protocol/schemas.js';
import { nowNs } from '../protocol/time.js';
import { AttrCache } from './attr-cache.js';
import { MountBackend } from './backend.js';
import { ChangeWatcher } from './change-watcher.js';
import { ChunkCache } from './chunk-cache.js';
import { OpenFile } from './open-file.js';

export interface VfsOptions {
  /** How long attributes and names are trusted without asking the name server (other clients' changes). */
  attrTtlMs: number;
  /** Bytes of chunk data kept in memory. */
  cacheBytes: number;
  /** Chunk uploads in flight at once (bounds the memory unflushed writes take). */
  uploadConcurrency: number;
}

export interface Caller {
  uid: number;
  gid: number;
}

/** A time as utimensat gives it: a time, now, or leave it alone. */
export type TimeSet = { ns: string } | 'now' | 'omit';

interface Handle {
  file: OpenFile;
  flags: number;
}

/** chown's "leave unchanged" (-1 as an unsigned 32-bit id). */
const ID_UNCHANGED = 0xffffffff;
const O_ACCMODE = 3;
const XATTR_PREFIX = 'user.dfs.';
/** Commits remembered for racing opens: the race lasts one round trip, so the recent ones are plenty. */
const MAX_COMMITTED_VERSIONS = 10_000;
/** How `user.dfs.servers` names the name server, for a small file's chunk it keeps itself. */
const NAME_SERVER_HOLDER = 'name-server';
const VIRTUAL_XATTRS = ['replicas', 'copies', 'version', 'chunks', 'servers', 'fully_replicated'].map((n) => XATTR_PREFIX + n);

function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function parentOf(path: string): string {
  return path === '/' ? '/' : parentAndName(path).parent;
}

/**
 * The POSIX file system over the cluster, with no kernel in sight: every method takes paths or handles
 * and returns values or throws a DfsError (mapped to an errno in one place by the FUSE adapter).
 * Open files are shared per inode; attribute and chunk caches sit in front of the name server and the
 * storage servers.
 */
export class Vfs {
  private readonly files = new Map<number, OpenFile>();
  private readonly handles = new Map<number, Handle>();
  private nextFd = 1;
  private statfsCache: { at: number; status: ClusterStatus } | undefined;
  readonly attrs: AttrCache;
  readonly chunks: ChunkCache;
  private readonly backend: MountBackend;
  readonly chunkSize: number;
  /** Inode → the version this mount last committed, for opens that race it. */
  private readonly committed = new RecentMap<number, number>(MAX_COMMITTED_VERSIONS);
  /** Other clients' changes to names and inodes, as the name server's change feed reports them. */
  private readonly feed: ChangeWatcher;

  private constructor(
    private readonly client: DfsClient,
    layout: ClusterLayout,
    options: VfsOptions,
    private readonly log: Logger,
  ) {
    this.chunkSize = layout.chunkSize;
    this.feed = new ChangeWatcher(client, (changes) => this.attrs.changedElsewhere(changes), log);
    this.attrs = new AttrCache(options.attrTtlMs, () => this.feed.live());
    this.chunks = new ChunkCache(options.cacheBytes);
    this.backend = new MountBackend(client, this.chunks, layout.chunkSize, layout.inlineMax, options.uploadConcurrency, log);
  }

  static async create(client: DfsClient, options: VfsOptions, log: Logger): Promise<Vfs> {
    const vfs = new Vfs(client, await client.layout(), options, log);
    if (options.attrTtlMs > 0) vfs.feed.start();
    return vfs;
  }

  /** Stops listening for other clients' changes (unmounting). */
  stop(): void {
    this.feed.stop();
  }

  private ns(): DfsClient['ns'] {
    return this.client.ns;
  }

  /** Attributes with what this mount has not flushed yet laid over them (size, times, mode, owner). */
  private overlay(attr: Attr): Attr {
    const file = this.files.get(attr.ino);
    if (!file?.dirty) return attr;
    return { ...attr, size: file.size, mtime: file.pendingMtime ?? attr.mtime, ...changedFields(attr, file.pendingAttrs ?? {}) };
  }

  async getattr(path: string): Promise<Attr> {
    let attr = this.attrs.get(path);
    if (!attr) {
      if (this.attrs.knownMissing(path)) throw fsError('ENOENT', path);
      const mark = this.feed.mark();
      attr = await this.ns().call(nameApi.stat, { path });
      this.attrs.put(path, attr, this.feed.unchangedSince(mark));
    }
    return this.overlay(attr);
  }

  async fgetattr(path: string, fd: number): Promise<Attr> {
    const handle = this.handles.get(fd);
    if (!handle) return this.getattr(path);
    const attr = this.attrs.get(path);
    return this.overlay(attr && attr.ino === handle.file.ino ? attr : handle.file.attr);
  }

  /** Entries of a directory with their attributes, `.` and `..` first. */
  async readdir(path: string): Promise<{ name: string; attr: Attr }[]> {
    const mark = this.feed.mark();
    const { attr, entries } = await this.ns().call(nameApi.list, { path });
    this.attrs.put(path, attr);
    const kept = this.feed.unchangedSince(mark);
    this.attrs.listedAll(path, entries.map((entry) => entry.name), kept);
    const parent = (path !== '/' && this.attrs.get(parentOf(path))) || attr;
    const out = [
      { name: '.', attr },
      { name: '..', attr: parent },
    ];
    for (const entry of entries) {
      this.attrs.put(childPath(path, entry.name), entry.attr, kept);
      out.push({ name: entry.name, attr: this.overlay(entry.attr) });
    }
    return out;
  }

  /**
   * One of this mount's own changes. Its change feed leaves it out, so a lookup answered across it is not
   * kept past the timeout (the feed's generation moves before and after it); this mount's bookkeeping
   * once it returns keeps the rest right. If it is refused (EEXIST: another client made the name), what
   * this mount held about `paths` is wrong: forget it. If no answer came (a timeout after the name server
   * made the change), whatever it held below them may be wrong too.
   */
  private async changing<T>(paths: readonly string[], call: () => Promise<T>): Promise<T> {
    this.feed.ownChange();
    try {
      return await call();
    } catch (err) {
      for (const path of paths) {
        this.attrs.forgetListing(parentOf(path));
        // A whole tree is one pass over the cache: only when the change may have been made.
        if (outcomeUnknown(err)) this.attrs.forgetTree(path);
        else this.attrs.forget(path);
      }
      throw err;
    } finally {
      this.feed.ownChange();
    }
  }

  /** A name was made: it is in its directory's listing, if that is known. */
  private added(path: string): void {
    this.touched(path);
    this.attrs.entryAdded(path);
  }

  /** A name went. */
  private removed(path: string): void {
    this.touched(path);
    this.attrs.entryRemoved(path);
  }

  /** An entry came or went: its own attributes are asked for again; its directory's times move. */
  private touched(...paths: string[]): void {
    const now = nowNs();
    for (const path of paths) {
      this.attrs.forget(path);
      this.attrs.touchDir(parentOf(path), now);
    }
  }

  /** A subdirectory came or went: the directories' link counts changed, so ask for them again. */
  private touchedDirs(...paths: string[]): void {
    for (const path of paths) {
      this.attrs.forget(path);
      this.attrs.forget(parentOf(path));
    }
  }

  async mkdir(path: string, mode: number, caller: Caller): Promise<Attr> {
    // A name another client made in the new folder may be heard before this answer (it was published at once),
    // and would then be missed by the listing made below: kept only if nothing was heard meanwhile.
    const heard = this.feed.heardMark();
    const attr = await this.changing([path], () => this.ns().call(nameApi.mkdir, { path, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid }));
    this.touchedDirs(path);
    this.attrs.entryAdded(path);
    this.attrs.put(path, attr);
    this.attrs.madeDir(path, this.feed.heardNothingSince(heard));
    return attr;
  }

  /** mknod: fifos, sockets and device nodes are metadata only; a regular file is an empty file. */
  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    const attr = await this.changing([path], () => this.ns().call(nameApi.create, { path, mode, rdev, uid: caller.uid, gid: caller.gid, exclusive: true }));
    this.added(path);
    this.attrs.put(path, attr);
    return attr;
  }

  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number> {
    const attr = await this.changing([path], () =>
      this.ns().call(nameApi.create, {
        path,
        mode: fileTypes.file | (mode & 0o7777),
        uid: caller.uid,
        gid: caller.gid,
        exclusive: (flags & constants.O_EXCL) !== 0,
      }),
    );
    this.added(path);
    this.attrs.put(path, attr);
    let file = this.files.get(attr.ino);
    if (!file) {
      // Another client may have made the file a moment before: then it has content to open.
      const chunks = attr.version > 0 ? (await this.infoToOpen(path)).chunks : [];
      file = new OpenFile(attr.ino, path, attr, chunks, this.backend);
    }
    return this.addHandle(file, flags);
  }

  /**
   * A file's info for opening it. An answer that left before this mount's own last commit of the file landed
   * (another handle's close, whose open file has since been dropped) would make the next append lose that
   * commit: then it asks again, once. That commit is acknowledged by now, so the second answer has it.
   */
  private async infoToOpen(path: string): Promise<FileInfo> {
    const info = await this.ns().call(nameApi.info, { path });
    if (info.attr.version >= (this.committed.get(info.attr.ino) ?? 0)) return info;
    return this.ns().call(nameApi.info, { path });
  }

  async open(path: string, flags: number): Promise<number> {
    const appendTo = await this.appendTarget(path, flags);
    if (appendTo) {
      const file = this.files.get(appendTo.ino) ?? OpenFile.appending(appendTo.ino, path, appendTo, this.backend);
      // The name it was opened by last: an append names the file by path (and checks its inode).
      file.path = path;
      return this.addHandle(file, flags);
    }
    const info = await this.infoToOpen(path);
    if (info.attr.type === 'dir') throw fsError('EISDIR', path);
    this.attrs.put(path, info.attr);
    let file = this.files.get(info.attr.ino);
    if (file) {
      file.refresh(info.attr, info.chunks);
      file.path = path;
    } else {
      file = new OpenFile(info.attr.ino, path, info.attr, info.chunks, this.backend);
    }
    return this.addHandle(file, flags);
  }

  /**
   * The file an open for appending only (`>>`) is of, when its content need not be fetched: a small file
   * (as far as this mount knows) the name server keeps. Its bytes go to the name server at close, to add
   * to the file (see OpenFile.appending): appends from other clients meanwhile are not overwritten.
   */
  private async appendTarget(path: string, flags: number): Promise<Attr | undefined> {
    if ((flags & O_ACCMODE) !== constants.O_WRONLY || !(flags & constants.O_APPEND) || flags & constants.O_TRUNC) return undefined;
    if (this.backend.inlineMax === 0) return undefined;
    const attr = await this.getattr(path);
    // Room for at least one more byte in a file the name server keeps.
    return attr.type === 'file' && keptByNameServer(attr.size + 1, this.backend.inlineMax) ? attr : undefined;
  }

  private addHandle(file: OpenFile, flags: number): number {
    this.files.set(file.ino, file);
    file.handles += 1;
    const fd = this.nextFd;
    // fuse-native treats fd 0 as "no handle"; stay within 32 bits.
    this.nextFd = this.nextFd >= 0x7fffffff ? 1 : this.nextFd + 1;
    this.handles.set(fd, { file, flags });
    return fd;
  }

  private handle(fd: number): Handle {
    const handle = this.handles.get(fd);
    if (!handle) throw new DfsError('EINVAL', `bad file handle ${fd}`);
    return handle;
  }

  async read(fd: number, offset: number, length: number, out: Buffer): Promise<number> {
    return this.handle(fd).file.read(offset, length, out);
  }

  async write(fd: number, offset: number, data: Buffer): Promise<number> {
    const handle = this.handle(fd);
    if ((handle.flags & O_ACCMODE) === constants.O_RDONLY) throw new DfsError('EBADF', 'file not open for writing');
    // O_APPEND writers append, wherever the kernel thinks the end is.
    return handle.flags & constants.O_APPEND ? handle.file.append(data) : handle.file.write(offset, data);
  }

  /** close(): commits this file's changes; resolves only once the commit is acknowledged. */
  async flush(fd: number): Promise<void> {
    const handle = this.handles.get(fd);
    if (!handle) return;
    await this.commit(handle.file);
  }

  /**
   * fsync(): the file's content, as close(). A commit is fsynced by the name server in every sync mode,
   * and with it every change before it; with nothing to commit, its name and attributes (which `--sync
   * data` may not have on disk yet) are synced on their own.
   */
  async fsync(fd: number): Promise<void> {
    const handle = this.handles.get(fd);
    if (!handle) return;
    if (!(await this.commit(handle.file))) await this.ns().call(nameApi.sync, {});
  }

  /** fsync() of a directory: its entries (creates, renames, unlinks) on the name server's disk. */
  async fsyncdir(): Promise<void> {
    await this.ns().call(nameApi.sync, {});
  }

  /** Commits a file's changes; whether there were any. */
  private async commit(file: OpenFile): Promise<boolean> {
    if (!file.dirty) return false;
    await this.changing([file.path], () => file.flush());
    this.attrs.putAttr(file.attr);
    this.committed.set(file.ino, file.attr.version);
    return true;
  }

  async release(fd: number): Promise<void> {
    const handle = this.handles.get(fd);
    if (!handle) return;
    this.handles.delete(fd);
    const { file } = handle;
    file.handles -= 1;
    if (file.handles > 0) return;
    try {
      await this.commit(file);
    } finally {
      if (file.handles === 0 && this.files.get(file.ino) === file) this.files.delete(file.ino);
    }
  }

  async truncate(path: string, size: number): Promise<void> {
    const attr = await this.getattr(path);
    if (attr.type === 'dir') throw fsError('EISDIR', path);
    if (attr.type !== 'file') throw fsError('EINVAL', path);
    const open = this.files.get(attr.ino);
    if (open) {
      await open.truncate(size);
      return;
    }
    if (size === 0) {
      this.attrs.putAttr(await this.changing([path], () => this.ns().call(nameApi.setattr, { path, size: 0 })));
      return;
    }
    // Any other size needs new content: open the file, cut or extend it, commit, close.
    const fd = await this.open(path, constants.O_WRONLY);
    try {
      await this.handle(fd).file.truncate(size);
      await this.flush(fd);
    } finally {
      await this.release(fd);
    }
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    return this.handle(fd).file.truncate(size);
  }

  async unlink(path: string): Promise<void> {
    // The name server says which inode lost the name: its other names show a new link count at once,
    // even when this mount has not looked the name up lately.
    const { ino } = await this.changing([path], () => this.ns().call(nameApi.unlink, { path }));
    this.removed(path);
    this.attrs.forgetIno(ino);
  }

  async rmdir(path: string): Promise<void> {
    await this.changing([path], () => this.ns().call(nameApi.rmdir, { path }));
    this.touchedDirs(path);
    this.attrs.forgetTree(path);
    this.attrs.entryRemoved(path);
  }

  async rename(from: string, to: string): Promise<void> {
    // Whether it is a directory that moves, as this mount last saw it (the kernel has just looked it up).
    const seen = this.attrs.get(from);
    const movingDir = !seen || seen.type === 'dir';
    const { replaced } = await this.changing([from, to], () => this.ns().call(nameApi.rename, { from, to }));
    if (movingDir) {
      this.attrs.forgetTree(from);
      this.attrs.forgetTree(to);
      this.touchedDirs(from, to);
    } else {
      // A file leaves both directories' link counts as they were: their times move, nothing else, so the
      // kernel's next permission check on them needs no round trip (renames in a loop made two each).
      this.touched(from, to);
    }
    // Renaming one name of a file onto another of its names does nothing, and says so in no way.
    if (seen && (seen.type === 'dir' || seen.nlink === 1)) this.attrs.entryRemoved(from);
    else this.attrs.forgetListing(parentOf(from));
    this.attrs.entryAdded(to);
    if (replaced !== undefined) this.attrs.forgetIno(replaced);
    for (const file of this.files.values()) {
      if (file.path === from) file.path = to;
      else if (file.path.startsWith(`${from}/`)) file.path = to + file.path.slice(from.length);
    }
  }

  async link(existing: string, path: string): Promise<Attr> {
    const attr = await this.changing([path, existing], () => this.ns().call(nameApi.link, { existing, path }));
    this.added(path);
    this.attrs.forgetIno(attr.ino);
    this.attrs.put(path, attr);
    return attr;
  }

  async symlink(target: string, path: string, caller: Caller): Promise<Attr> {
    const attr = await this.changing([path], () => this.ns().call(nameApi.symlink, { path, target, uid: caller.uid, gid: caller.gid }));
    this.added(path);
    this.attrs.put(path, attr);
    return attr;
  }

  async readlink(path: string): Promise<string> {
    return (await this.ns().call(nameApi.readlink, { path })).target;
  }

  private async setattr(path: string, patch: { mode?: number; uid?: number; gid?: number; atime?: string; mtime?: string }): Promise<void> {
    // A file open here with unflushed content takes the change with that content, in its commit.
    const cached = this.attrs.get(path);
    // Found by its path when nothing is cached: the attributes may have run out while it was open (a busy machine).
    const file = cached ? this.files.get(cached.ino) : [...this.files.values()].find((open) => open.path === path);
    if (file && (await file.deferAttrs(patch))) return;
    const attr = await this.changing([path], () => this.ns().call(nameApi.setattr, { path, ...patch }));
    this.attrs.put(path, attr);
  }

  async chmod(path: string, mode: number): Promise<void> {
    return this.setattr(path, { mode: mode & 0o7777 });
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    return this.setattr(path, { ...(uid !== ID_UNCHANGED ? { uid } : {}), ...(gid !== ID_UNCHANGED ? { gid } : {}) });
  }

  async utimens(path: string, atime: TimeSet, mtime: TimeSet): Promise<void> {
    const now = nowNs();
    const resolve = (t: TimeSet): string | undefined => (t === 'omit' ? undefined : t === 'now' ? now : t.ns);
    const a = resolve(atime);
    const m = resolve(mtime);
    if (a === undefined && m === undefined) return;
    await this.setattr(path, { ...(a !== undefined ? { atime: a } : {}), ...(m !== undefined ? { mtime: m } : {}) });
    const attr = this.attrs.get(path);
    if (attr) this.files.get(attr.ino)?.setTimes(m);
  }

  /** Capacity and free space of the live storage servers, divided by the replication factor. */
  async statfs(): Promise<{ capacity: number; free: number; files: number }> {
    if (!this.statfsCache || Date.now() - this.statfsCache.at > 2_000) {
      this.statfsCache = { at: Date.now(), status: await this.ns().call(nameApi.status, {}) };
    }
    const s = this.statfsCache.status;
    const replicas = Math.max(1, s.replicas);
    return { capacity: Math.floor(s.storage.capacity / replicas), free: Math.floor(s.storage.free / replicas), files: s.files + s.dirs };
  }

  async access(path: string): Promise<void> {
    await this.getattr(path);
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    if (name.startsWith(XATTR_PREFIX)) return Buffer.from(await this.virtualXattr(path, name));
    // Most files have no xattrs, yet the kernel asks for security.capability before every write: answer
    // from the names known lately rather than asking the name server each time.
    const attr = await this.getattr(path);
    if (!attr.xattrs) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
    const names = this.attrs.xattrNames(attr.ino) ?? new Set(await this.storedXattrs(path, attr.ino));
    if (!names.has(name)) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
    const { value } = await this.ns().call(nameApi.getxattr, { path, name });
    return Buffer.from(value, 'base64');
  }

  private async storedXattrs(path: string, ino: number): Promise<string[]> {
    const { names } = await this.ns().call(nameApi.listxattr, { path });
    this.attrs.putXattrNames(ino, names);
    return names;
  }

  async listxattr(path: string): Promise<string[]> {
    const attr = await this.getattr(path);
    const names = await this.storedXattrs(path, attr.ino);
    return attr.type === 'file' ? [...names, ...VIRTUAL_XATTRS] : names;
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    // dfs's own attributes describe the file; they cannot be set, and saying "stored" would be a lie.
    if (name.startsWith(XATTR_PREFIX)) throw new DfsError('EOPNOTSUPP', `${name} is read-only`);
    const { ino } = await this.getattr(path);
    await this.changing([path], () => this.ns().call(nameApi.setxattr, { path, name, value: value.toString('base64'), flags }));
    this.attrs.forget(path);
    this.attrs.forgetXattrs(ino);
  }

  async removexattr(path: string, name: string): Promise<void> {
    if (name.startsWith(XATTR_PREFIX)) throw new DfsError('EOPNOTSUPP', `${name} is read-only`);
    const { ino } = await this.getattr(path);
    await this.changing([path], () => this.ns().call(nameApi.removexattr, { path, name }));
    this.attrs.forget(path);
    this.attrs.forgetXattrs(ino);
  }

  private async virtualXattr(path: string, name: string): Promise<string> {
    const attr = await this.getattr(path);
    if (attr.type !== 'file' || !VIRTUAL_XATTRS.includes(name)) throw new DfsError('ENODATA', `${path}: no attribute ${name}`);
    const info = await this.client.info(path);
    // A chunk the name server keeps is one copy, held there.
    const holders = info.chunks.map((c) => (c.data !== undefined ? [NAME_SERVER_HOLDER] : c.servers.map((s) => s.id)));
    const copies = holders.length ? Math.min(...holders.map((ids) => ids.length)) : info.replicas;
    const servers = [...new Set(holders.flat())].sort();
    switch (name.slice(XATTR_PREFIX.length)) {
      case 'replicas':
        return String(info.replicas);
      case 'copies':
        return String(copies);
      case 'version':
        return String(info.attr.version);
      case 'chunks':
        return String(info.chunks.length);
      case 'servers':
        return servers.join(',');
      default:
        return info.fullyReplicated ? 'yes' : 'no';
    }
  }

  /** Commits every open file with unflushed changes (before unmounting). */
  async flushAll(): Promise<void> {
    await Promise.all(
      [...this.files.values()].map((file) =>
        this.commit(file).catch((err: unknown) => this.log.error({ path: file.path, err: (err as Error).message }, 'could not commit an open file')),
      ),
    );
  }
}
