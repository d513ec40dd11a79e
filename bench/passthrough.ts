/**
 * A minimal passthrough file system over the project's (patched) fuse-native: every operation maps onto
 * node:fs on a backing folder, with the dfs mount's options. It is the ceiling of our binding: what a FUSE
 * file system in Node can do with no network and no metadata service behind it.
 *
 *   node dist/bench/passthrough.js --backing DIR --mount DIR
 *
 * Prints `{"msg":"mounted","mountpoint":…}` once mounted; SIGTERM or SIGINT unmounts and exits.
 */
import fs, { type BigIntStats } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Fuse, { type FuseOps, type FuseStat, type Timespec } from 'fuse-native';
import { fuseMountOptions } from '../mount/fuse-options.js';
import { mountDefaults } from '../mount/index.js';
import { setReadAhead } from '../mount/mountinfo.js';

const { values } = parseArgs({ options: { backing: { type: 'string' }, mount: { type: 'string' } } });
if (!values.backing || !values.mount) {
  process.stderr.write('usage: passthrough --backing DIR --mount DIR\n');
  process.exit(2);
}
const backing = resolve(values.backing);
const mountpoint = resolve(values.mount);
const real = (path: string): string => backing + path;

/** Node's errno is already negative on Linux (-2 for ENOENT), as fuse-native wants it. */
const errnoOf = (err: NodeJS.ErrnoException): number => (typeof err.errno === 'number' && err.errno < 0 ? err.errno : -5);
const done = (cb: (err: number) => void) => (err: NodeJS.ErrnoException | null) => cb(err ? errnoOf(err) : 0);

function toStat(st: BigIntStats): FuseStat {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    nlink: Number(st.nlink),
    ino: Number(st.ino),
    rdev: Number(st.rdev),
    blksize: Number(st.blksize),
    blocks: Number(st.blocks),
    atime: st.atimeNs,
    mtime: st.mtimeNs,
    ctime: st.ctimeNs,
  };
}

/** utimensat's times as fs.lutimes takes them: seconds, with UTIME_NOW and UTIME_OMIT resolved. */
function seconds(t: Timespec, current: bigint): number {
  if (t.nsec === Fuse.UTIME_NOW) return Date.now() / 1000;
  if (t.nsec === Fuse.UTIME_OMIT) return Number(current) / 1e9;
  return t.sec + t.nsec / 1e9;
}

const ops: FuseOps = {
  init: (cb) => cb(0),
  access: (path, mode, cb) => fs.access(real(path), mode, done(cb)),
  statfs: (path, cb) =>
    fs.statfs(real(path), (err, st) => {
      if (err) return cb(errnoOf(err));
      cb(0, { bsize: st.bsize, frsize: st.bsize, blocks: st.blocks, bfree: st.bfree, bavail: st.bavail, files: st.files, ffree: st.ffree, favail: st.ffree, fsid: 0, flag: 0, namemax: 255 });
    }),
  getattr: (path, cb) => fs.lstat(real(path), { bigint: true }, (err, st) => (err ? cb(errnoOf(err)) : cb(0, toStat(st)))),
  fgetattr: (_path, fd, cb) => fs.fstat(fd, { bigint: true }, (err, st) => (err ? cb(errnoOf(err)) : cb(0, toStat(st)))),
  readdir: (path, cb) => fs.readdir(real(path), (err, names) => (err ? cb(errnoOf(err)) : cb(0, names))),
  mkdir: (path, mode, cb) => fs.mkdir(real(path), { mode }, done(cb)),
  rmdir: (path, cb) => fs.rmdir(real(path), done(cb)),
  create: (path, mode, flags, cb) => fs.open(real(path), flags | fs.constants.O_CREAT, mode, (err, fd) => (err ? cb(errnoOf(err)) : cb(0, fd))),
  open: (path, flags, cb) => fs.open(real(path), flags, (err, fd) => (err ? cb(errnoOf(err)) : cb(0, fd))),
  read: (_path, fd, buffer, length, position, cb) => fs.read(fd, buffer, 0, length, position, (err, bytes) => cb(err ? errnoOf(err) : bytes)),
  write: (_path, fd, buffer, length, position, cb) => fs.write(fd, buffer, 0, length, position, (err, bytes) => cb(err ? errnoOf(err) : bytes)),
  flush: (_path, _fd, cb) => cb(0),
  fsync: (_path, datasync, fd, cb) => (datasync ? fs.fdatasync(fd, done(cb)) : fs.fsync(fd, done(cb))),
  fsyncdir: (_path, _datasync, _fd, cb) => cb(0),
  release: (_path, fd, cb) => fs.close(fd, done(cb)),
  truncate: (path, size, cb) => fs.truncate(real(path), size, done(cb)),
  ftruncate: (_path, fd, size, cb) => fs.ftruncate(fd, size, done(cb)),
  unlink: (path, cb) => fs.unlink(real(path), done(cb)),
  rename: (from, to, cb) => fs.rename(real(from), real(to), done(cb)),
  link: (existing, path, cb) => fs.link(real(existing), real(path), done(cb)),
  symlink: (target, path, cb) => fs.symlink(target, real(path), done(cb)),
  readlink: (path, cb) => fs.readlink(real(path), (err, target) => (err ? cb(errnoOf(err)) : cb(0, target))),
  chmod: (path, mode, cb) => fs.chmod(real(path), mode, done(cb)),
  chown: (path, uid, gid, cb) => fs.lchown(real(path), uid, gid, done(cb)),
  utimens: (path, atime, mtime, cb) => {
    const apply = (current?: BigIntStats): void =>
      fs.lutimes(real(path), seconds(atime, current?.atimeNs ?? 0n), seconds(mtime, current?.mtimeNs ?? 0n), done(cb));
    if (atime.nsec === Fuse.UTIME_OMIT || mtime.nsec === Fuse.UTIME_OMIT) {
      fs.lstat(real(path), { bigint: true }, (err, st) => (err ? cb(errnoOf(err)) : apply(st)));
    } else apply();
  },
  // Node has no xattr calls: answer as a file system without extended attributes does, so the kernel
  // makes the same round trips as on the dfs mount (ls -l asks for ACLs).
  getxattr: (_path, _name, _position, cb) => cb(0, null),
  listxattr: (_path, cb) => cb(0, []),
  setxattr: (_path, _name, _value, _position, _flags, cb) => cb(-95),
  removexattr: (_path, _name, cb) => cb(-61),
};

const fuse = new Fuse(mountpoint, ops, {
  // As the dfs mount with its default caching.
  ...fuseMountOptions(mountDefaults),
  allowOther: process.getuid?.() === 0,
  defaultPermissions: process.getuid?.() === 0,
  fsname: 'dfsbench-passthrough',
  subtype: 'passthrough',
});

fuse.mount(async (err) => {
  if (err) {
    process.stderr.write(`passthrough: mount failed: ${err.message}\n`);
    process.exit(1);
  }
  // The same kernel read-ahead as the dfs mount.
  await setReadAhead(mountpoint);
  process.stdout.write(`${JSON.stringify({ msg: 'mounted', mountpoint, backing, pid: process.pid })}\n`);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  fuse.unmount((err) => {
    if (err) process.stderr.write(`passthrough: unmount failed: ${err.message}\n`);
    // fuse-native's thread keeps the process alive after an unmount: leave explicitly.
    process.exit(err ? 1 : 0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
