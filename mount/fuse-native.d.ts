// Types for fuse-native 2.2.6 as patched in patches/ (caller context, create flags, whole utimens
// timespecs, nanosecond stat times, verbatim -o options). Its index.js and fuse-native.c are the truth.
declare module 'fuse-native' {
  type Cb = (err: number) => void;
  type CbValue<T> = (err: number, value?: T) => void;

  export interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    dev?: number;
    nlink: number;
    ino: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    /** A bigint of nanoseconds is exact; a Date or a number of milliseconds is not. */
    atime: bigint | Date | number;
    mtime: bigint | Date | number;
    ctime: bigint | Date | number;
  }

  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  /** tv_nsec may be Fuse.UTIME_NOW or Fuse.UTIME_OMIT. */
  export interface Timespec {
    sec: number;
    nsec: number;
  }

  export interface FuseOps {
    init?(cb: Cb): void;
    access?(path: string, mode: number, cb: Cb): void;
    statfs?(path: string, cb: CbValue<FuseStatfs>): void;
    getattr?(path: string, cb: CbValue<FuseStat>): void;
    fgetattr?(path: string, fd: number, cb: CbValue<FuseStat>): void;
    flush?(path: string, fd: number, cb: Cb): void;
    fsync?(path: string, datasync: number, fd: number, cb: Cb): void;
    fsyncdir?(path: string, datasync: number, fd: number, cb: Cb): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
    truncate?(path: string, size: number, cb: Cb): void;
    ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
    utimens?(path: string, atime: Timespec, mtime: Timespec, cb: Cb): void;
    readlink?(path: string, cb: CbValue<string>): void;
    chown?(path: string, uid: number, gid: number, cb: Cb): void;
    chmod?(path: string, mode: number, cb: Cb): void;
    mknod?(path: string, mode: number, dev: number, cb: Cb): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
    getxattr?(path: string, name: string, position: number, cb: CbValue<Buffer | null>): void;
    listxattr?(path: string, cb: CbValue<string[]>): void;
    removexattr?(path: string, name: string, cb: Cb): void;
    open?(path: string, flags: number, cb: CbValue<number>): void;
    opendir?(path: string, flags: number, cb: CbValue<number>): void;
    /** Answer with the byte count; the buffer is valid only until cb. */
    read?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (bytes: number) => void): void;
    write?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (bytes: number) => void): void;
    release?(path: string, fd: number, cb: Cb): void;
    releasedir?(path: string, fd: number, cb: Cb): void;
    create?(path: string, mode: number, flags: number, cb: CbValue<number>): void;
    unlink?(path: string, cb: Cb): void;
    rename?(src: string, dest: string, cb: Cb): void;
    link?(src: string, dest: string, cb: Cb): void;
    /** `target` is the link's content, `path` the new link. */
    symlink?(target: string, path: string, cb: Cb): void;
    mkdir?(path: string, mode: number, cb: Cb): void;
    rmdir?(path: string, cb: Cb): void;
  }

  export interface FuseOptions {
    /** ms per operation, or per operation name with a default. */
    timeout?: number | false | ({ default?: number } & Record<string, number | false>);
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    autoCache?: boolean;
    fsname?: string;
    subtype?: string;
    /** Passed to libfuse as they are. */
    options?: string[];
    /** Seconds the kernel keeps a directory's attributes (our patch; attr_timeout covers files with several names). */
    dirAttrTimeout?: number;
    /** Seconds the kernel keeps the attributes of a file with one name (our patch). */
    fileAttrTimeout?: number;
  }

  export default class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    /** The process behind the operation being handled, valid until the handler's first await. */
    context: { uid: number; gid: number; pid: number; umask: number };
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static UTIME_NOW: number;
    static UTIME_OMIT: number;
  }
}
