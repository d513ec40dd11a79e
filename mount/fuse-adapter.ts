import Fuse, { type FuseOps, type FuseStat, type Timespec } from 'fuse-native';
import type { Logger } from '../common/log.js';
import { DfsError, errnoOf } from '../protocol/errors.js';
import type { Attr } from '../protocol/schemas.js';
import type { TimeSet, Vfs } from './vfs.js';

/**
 * The thin layer between fuse-native's callbacks and the Vfs: argument shapes in, errno out. Every
 * handler captures the caller before its first await (fuse-native's context is per operation).
 */

const BLOCK = 4096;

export function toFuseStat(attr: Attr): FuseStat {
  return {
    mode: attr.mode,
    uid: attr.uid,
    gid: attr.gid,
    size: attr.size,
    nlink: attr.nlink,
    ino: attr.ino,
    rdev: attr.rdev,
    blksize: BLOCK,
    blocks: Math.ceil(attr.size / 512),
    atime: BigInt(attr.atime),
    mtime: BigInt(attr.mtime),
    ctime: BigInt(attr.ctime),
  };
}

function timeSet(t: Timespec): TimeSet {
  if (t.nsec === Fuse.UTIME_OMIT) return 'omit';
  if (t.nsec === Fuse.UTIME_NOW) return 'now';
  return { ns: (BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec)).toString() };
}

export function fuseOps(vfs: Vfs, fuse: () => Fuse, log: Logger): FuseOps {
  /** A negative errno for any error; unknown ones are logged and become EIO, never ENOENT. */
  const errno = (op: string, path: string, err: unknown): number => {
    if (!(err instanceof DfsError) || err.code === 'INTERNAL' || err.code === 'EIO' || err.code === 'UPSTREAM') {
      log.warn({ op, path, err: err instanceof Error ? err.message : String(err) }, 'operation failed');
    }
    return -errnoOf(err);
  };
  const done = (op: string, path: string, promise: Promise<unknown>, cb: (err: number) => void): void => {
    promise.then(
      () => cb(0),
      (err: unknown) => cb(errno(op, path, err)),
    );
  };
  const caller = (): { uid: number; gid: number } => {
    const ctx = fuse().context;
    return { uid: ctx.uid, gid: ctx.gid };
  };

  return {
    init: (cb) => cb(0),
    getattr: (path, cb) => {
      vfs.getattr(path).then(
        (attr) => cb(0, toFuseStat(attr)),
        (err: unknown) => cb(errno('getattr', path, err)),
      );
    },
    fgetattr: (path, fd, cb) => {
      vfs.fgetattr(path, fd).then(
        (attr) => cb(0, toFuseStat(attr)),
        (err: unknown) => cb(errno('fgetattr', path, err)),
      );
    },
    access: (path, _mode, cb) => done('access', path, vfs.access(path), cb),
    statfs: (path, cb) => {
      vfs.statfs().then(
        ({ capacity, free, files }) => {
          // 32-bit block counts: grow the block size until they fit.
          let frsize = BLOCK;
          while (capacity / frsize > 0xffffffff) frsize *= 2;
          cb(0, {
            bsize: frsize,
            frsize,
            blocks: Math.floor(capacity / frsize),
            bfree: Math.floor(free / frsize),
            bavail: Math.floor(free / frsize),
            files: Math.min(0xffffffff, files + 1_000_000),
            ffree: 1_000_000,
            favail: 1_000_000,
            fsid: 0,
            flag: 0,
            namemax: 255,
          });
        },
        (err: unknown) => cb(errno('statfs', path, err)),
      );
    },
    readdir: (path, cb) => {
      vfs.readdir(path).then(
        (entries) =>
          cb(
            0,
            entries.map((e) => e.name),
            entries.map((e) => toFuseStat(e.attr)),
          ),
        (err: unknown) => cb(errno('readdir', path, err)),
      );
    },
    mkdir: (path, mode, cb) => done('mkdir', path, vfs.mkdir(path, mode, caller()), cb),
    mknod: (path, mode, dev, cb) => done('mknod', path, vfs.mknod(path, mode, dev, caller()), cb),
    create: (path, mode, flags, cb) => {
      vfs.create(path, mode, flags, caller()).then(
        (fd) => cb(0, fd),
        (err: unknown) => cb(errno('create', path, err)),
      );
    },
    open: (path, flags, cb) => {
      vfs.open(path, flags).then(
        (fd) => cb(0, fd),
        (err: unknown) => cb(errno('open', path, err)),
      );
    },
    read: (path, fd, buffer, length, position, cb) => {
      vfs.read(fd, position, length, buffer).then(
        (bytes) => cb(bytes),
        (err: unknown) => cb(errno('read', path, err)),
      );
    },
    write: (path, fd, buffer, length, position, cb) => {
      vfs.write(fd, position, buffer.subarray(0, length)).then(
        (bytes) => cb(bytes),
        (err: unknown) => cb(errno('write', path, err)),
      );
    },
    flush: (path, fd, cb) => done('flush', path, vfs.flush(fd), cb),
    fsync: (path, _datasync, fd, cb) => done('fsync', path, vfs.fsync(fd), cb),
    fsyncdir: (path, _datasync, _fd, cb) => done('fsyncdir', path, vfs.fsyncdir(), cb),
    release: (path, fd, cb) => done('release', path, vfs.release(fd), cb),
    truncate: (path, size, cb) => done('truncate', path, vfs.truncate(path, size), cb),
    ftruncate: (path, fd, size, cb) => done('ftruncate', path, vfs.ftruncate(fd, size), cb),
    unlink: (path, cb) => done('unlink', path, vfs.unlink(path), cb),
    rmdir: (path, cb) => done('rmdir', path, vfs.rmdir(path), cb),
    rename: (from, to, cb) => done('rename', from, vfs.rename(from, to), cb),
    link: (existing, path, cb) => done('link', path, vfs.link(existing, path), cb),
    symlink: (target, path, cb) => done('symlink', path, vfs.symlink(target, path, caller()), cb),
    readlink: (path, cb) => {
      vfs.readlink(path).then(
        (target) => cb(0, target),
        (err: unknown) => cb(errno('readlink', path, err)),
      );
    },
    chmod: (path, mode, cb) => done('chmod', path, vfs.chmod(path, mode), cb),
    chown: (path, uid, gid, cb) => done('chown', path, vfs.chown(path, uid, gid), cb),
    utimens: (path, atime, mtime, cb) => done('utimens', path, vfs.utimens(path, timeSet(atime), timeSet(mtime)), cb),
    getxattr: (path, name, _position, cb) => {
      vfs.getxattr(path, name).then(
        (value) => cb(0, value),
        (err: unknown) => cb(errno('getxattr', path, err)),
      );
    },
    listxattr: (path, cb) => {
      vfs.listxattr(path).then(
        (names) => cb(0, names),
        (err: unknown) => cb(errno('listxattr', path, err)),
      );
    },
    setxattr: (path, name, value, _position, flags, cb) => done('setxattr', path, vfs.setxattr(path, name, Buffer.from(value), flags), cb),
    removexattr: (path, name, cb) => done('removexattr', path, vfs.removexattr(path, name), cb),
  };
}
