import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The operations of the differential POSIX test (posix-diff.test.ts), and an interpreter that applies
 * one to a tree with node:fs from the test process and reports what happened: a value, or the exact
 * errno code. The same operation runs on a local folder (the kernel's own file system) and on the mount;
 * posix-generator.ts makes them up, posix-check.ts compares the two sides.
 */

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same run, everywhere. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A key from `weights`, with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let r = this.next() * entries.reduce((sum, [, w]) => sum + w, 0);
    for (const [key, w] of entries) if ((r -= w) < 0) return key;
    return entries[entries.length - 1]![0];
  }
}

/** Bytes of a write: a function of (length, fill) only, so both trees get the same. */
export function payload(len: number, fill: number): Buffer {
  const rng = new Rng(fill);
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = rng.int(256);
  return out;
}

/** Open flags by name (node's names, and a few combinations node has no name for). */
export const OPEN_FLAGS = {
  r: constants.O_RDONLY,
  'r+': constants.O_RDWR,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  'w+': constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC,
  wx: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
  'wx+': constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
  'a+': constants.O_RDWR | constants.O_CREAT | constants.O_APPEND,
  creat: constants.O_WRONLY | constants.O_CREAT,
  'creat+': constants.O_RDWR | constants.O_CREAT,
  'trunc+': constants.O_RDWR | constants.O_TRUNC,
} as const;
export type FlagName = keyof typeof OPEN_FLAGS;

export type Op =
  | { op: 'create'; path: string; flags: FlagName; mode: number }
  | { op: 'write'; path: string; offset: number; len: number; fill: number }
  | { op: 'append'; path: string; len: number; fill: number }
  /** `syscall: 'truncate'` is truncate(2) by path (node has only open + ftruncate). */
  | { op: 'truncate'; path: string; size: number; syscall: 'ftruncate' | 'truncate' }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'rmdir'; path: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'utimes'; path: string; atime: number; mtime: number; follow: boolean }
  | { op: 'readdir'; path: string }
  | { op: 'stat'; path: string; follow: boolean }
  | { op: 'readlink'; path: string }
  | { op: 'readFile'; path: string }
  | { op: 'fdopen'; slot: number; path: string; flags: FlagName; mode: number }
  | { op: 'fdwrite'; slot: number; position: number | null; len: number; fill: number }
  | { op: 'fdread'; slot: number; position: number; len: number }
  | { op: 'fdtruncate'; slot: number; size: number }
  | { op: 'fdstat'; slot: number }
  | { op: 'fdsync'; slot: number }
  | { op: 'fdutimes'; slot: number; atime: number; mtime: number }
  | { op: 'fdclose'; slot: number };

export const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];
export const FD_SLOTS = 3;
/** Times set by utimes lie before this (seconds): a time after it was set by the file system ("now"). */
export const EXPLICIT_BEFORE_S = 1_600_000_000;

/** What an operation did: its value, or the errno code it failed with. */
export type Outcome = { ok: true; value?: unknown } | { ok: false; code: string };

/** Attributes worth comparing of one inode, as stat gives them. */
export interface StatSummary {
  type: string;
  perm: number;
  nlink: number;
  /** Regular files and symlinks only (directory sizes are the file system's business). */
  size: number | undefined;
  ino: string;
  mtimeNs: string;
  atimeNs: string;
}

export function typeOf(s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): string {
  return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other';
}

export function summarize(s: import('node:fs').BigIntStats): StatSummary {
  const type = typeOf(s);
  return {
    type,
    perm: Number(s.mode) & 0o7777,
    nlink: Number(s.nlink),
    size: type === 'dir' ? undefined : Number(s.size),
    ino: s.ino.toString(),
    mtimeNs: s.mtimeNs.toString(),
    atimeNs: s.atimeNs.toString(),
  };
}

export function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

/** libfuse 2 keeps a file unlinked while open under this name until its last close. */
export const isHidden = (name: string): boolean => name.startsWith('.fuse_hidden');

/** truncate(2) by path, which node lacks (it opens and ftruncates): perl calls the system call itself. */
function truncateByPath(path: string, size: number): Promise<void> {
  const script = 'truncate($ARGV[0], $ARGV[1]) and exit 0; for (keys %!) { if ($!{$_}) { print $_; exit 1 } } exit 2';
  return new Promise((resolve, reject) =>
    execFile('perl', ['-e', script, path, String(size)], (err, stdout) => {
      if (!err) return resolve();
      const code = stdout.trim();
      reject(Object.assign(new Error(`truncate ${path}: ${code || err.message}`), { code: code || 'PERL_FAILED' }));
    }),
  );
}

/** One of the two trees: its root and the descriptors open on it (by slot). */
export class Side {
  readonly fds: (FileHandle | undefined)[] = new Array<FileHandle | undefined>(FD_SLOTS).fill(undefined);
  /** The bytes of the last read (readFile, fdread), to show where two reads differ. */
  lastRead: Buffer = Buffer.alloc(0);

  constructor(
    readonly name: 'local' | 'mount',
    readonly root: string,
  ) {}

  private at(path: string): string {
    return join(this.root, path);
  }

  private fd(slot: number): FileHandle {
    const fd = this.fds[slot];
    if (!fd) throw Object.assign(new Error(`slot ${slot} is not open`), { code: 'MODEL_NO_FD' });
    return fd;
  }

  async apply(op: Op): Promise<Outcome> {
    try {
      return { ok: true, value: await this.run(op) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code !== 'string') throw err;
      return { ok: false, code };
    }
  }

  private async run(op: Op): Promise<unknown> {
    switch (op.op) {
      case 'create': {
        const fd = await fsp.open(this.at(op.path), OPEN_FLAGS[op.flags], op.mode);
        await fd.close();
        return undefined;
      }
      case 'write': {
        const fd = await fsp.open(this.at(op.path), 'r+');
        try {
          return (await fd.write(payload(op.len, op.fill), 0, op.len, op.offset)).bytesWritten;
        } finally {
          await fd.close();
        }
      }
      case 'append':
        return fsp.appendFile(this.at(op.path), payload(op.len, op.fill));
      case 'truncate':
        return op.syscall === 'truncate' ? truncateByPath(this.at(op.path), op.size) : fsp.truncate(this.at(op.path), op.size);
      case 'rename':
        return fsp.rename(this.at(op.from), this.at(op.to));
      case 'unlink':
        return fsp.unlink(this.at(op.path));
      case 'mkdir':
        return fsp.mkdir(this.at(op.path), op.mode);
      case 'rmdir':
        return fsp.rmdir(this.at(op.path));
      case 'symlink':
        return fsp.symlink(op.target, this.at(op.path));
      case 'link':
        return fsp.link(this.at(op.from), this.at(op.to));
      case 'chmod':
        return fsp.chmod(this.at(op.path), op.mode);
      case 'utimes':
        return op.follow ? fsp.utimes(this.at(op.path), op.atime, op.mtime) : fsp.lutimes(this.at(op.path), op.atime, op.mtime);
      case 'readdir':
        return (await fsp.readdir(this.at(op.path))).filter((n) => !isHidden(n)).sort();
      case 'stat':
        return summarize(op.follow ? await fsp.stat(this.at(op.path), { bigint: true }) : await fsp.lstat(this.at(op.path), { bigint: true }));
      case 'readlink':
        return fsp.readlink(this.at(op.path));
      case 'readFile': {
        const data = (this.lastRead = await fsp.readFile(this.at(op.path)));
        return { size: data.length, sha: sha(data) };
      }
      case 'fdopen':
        this.fds[op.slot] = await fsp.open(this.at(op.path), OPEN_FLAGS[op.flags], op.mode);
        return undefined;
      case 'fdwrite':
        return (await this.fd(op.slot).write(payload(op.len, op.fill), 0, op.len, op.position)).bytesWritten;
      case 'fdread': {
        const buffer = Buffer.alloc(op.len);
        const { bytesRead } = await this.fd(op.slot).read(buffer, 0, op.len, op.position);
        this.lastRead = buffer.subarray(0, bytesRead);
        return { bytesRead, sha: sha(buffer.subarray(0, bytesRead)) };
      }
      case 'fdtruncate':
        return this.fd(op.slot).truncate(op.size);
      case 'fdstat':
        return summarize(await this.fd(op.slot).stat({ bigint: true }));
      case 'fdsync':
        return this.fd(op.slot).sync();
      case 'fdutimes':
        return this.fd(op.slot).utimes(op.atime, op.mtime);
      case 'fdclose': {
        const fd = this.fd(op.slot);
        this.fds[op.slot] = undefined;
        return fd.close();
      }
    }
  }

  /** Closes every descriptor (end of a run, or a failure), ignoring errors. */
  async closeAll(): Promise<void> {
    await Promise.all(this.fds.map((fd) => fd?.close().catch(() => undefined)));
    this.fds.fill(undefined);
  }
}
