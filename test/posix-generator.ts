import { NAMES, OPEN_FLAGS, Rng, type FlagName, type Op } from './posix-model.js';

/**
 * The operation generator of the differential POSIX test: seeded, over a small pool of names (six, up to
 * three levels), so that collisions and errors are frequent; biased towards paths that exist and names
 * that descriptors are open on, so that renames over, unlinks of and writes to open files happen often.
 */

/** What the generator knows of the reference tree: its paths by type (from the last snapshot). */
export interface TreeView {
  files: string[];
  dirs: string[];
  symlinks: string[];
}

/** Paths of open descriptors, as opened (the generator prefers them for unlink and rename). */
export type OpenPaths = (string | undefined)[];

/**
 * Generates operations. Offsets and sizes cluster around chunk boundaries (`chunkSize`) and a smaller
 * unit, so writes and truncates cross chunks, leave holes and cut chunks in the middle.
 */
export class OpGenerator {
  private readonly unit: number;

  constructor(
    private readonly rng: Rng,
    private readonly chunkSize: number,
  ) {
    this.unit = Math.min(chunkSize, 64 * 1024);
  }

  private randomPath(): string {
    const depth = this.rng.pick([1, 1, 1, 2, 2, 3]);
    const parts: string[] = [];
    for (let i = 0; i < depth; i++) parts.push(this.rng.pick(NAMES));
    return parts.join('/');
  }

  /** A name in an existing directory (the root included): most likely a new one. */
  private child(tree: TreeView): string {
    const parent = this.rng.chance(0.35) ? undefined : tree.dirs.length ? this.rng.pick(tree.dirs) : undefined;
    return parent === undefined ? this.rng.pick(NAMES) : `${parent}/${this.rng.pick(NAMES)}`;
  }

  /** A path: often one that exists (of the wanted kind), sometimes any path of the pool. */
  private path(tree: TreeView, want: 'file' | 'dir' | 'any' | 'new', open: OpenPaths = []): string {
    const r = this.rng;
    const existing = want === 'file' ? tree.files : want === 'dir' ? tree.dirs : [...tree.files, ...tree.dirs, ...tree.symlinks];
    let path: string;
    const opened = open.filter((p): p is string => p !== undefined);
    if (opened.length && r.chance(0.25)) path = r.pick(opened);
    else if (want === 'new' || !existing.length) path = r.chance(0.85) ? this.child(tree) : this.randomPath();
    else path = r.chance(0.8) ? r.pick(existing) : r.chance(0.5) ? this.child(tree) : this.randomPath();
    // A trailing slash now and then: the kernel then insists on a directory.
    return r.chance(0.03) ? `${path}/` : path;
  }

  private offset(): number {
    const r = this.rng;
    const u = this.unit;
    const cs = this.chunkSize;
    return r.pick([0, 0, 1, 100, u - 1, u, u + 1, 2 * u + 7, r.int(3 * u), r.int(u), cs - 3, cs, cs + 5]);
  }

  private length(): number {
    const r = this.rng;
    const u = this.unit;
    return r.pick([1, 10, 100, 4096, 4097, u - 1, u, u + 3, r.int(2 * u) + 1, r.int(300) + 1]);
  }

  private size(): number {
    const r = this.rng;
    const u = this.unit;
    return r.pick([0, 0, 1, 5, 100, u - 1, u, u + 1, 2 * u + 3, r.int(3 * u), this.chunkSize + 2]);
  }

  private mode(): number {
    const r = this.rng;
    return r.chance(0.1) ? r.int(0o10000) : r.pick([0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o777, 0o000, 0o4755, 0o2755, 0o1777]);
  }

  /** A time well before EXPLICIT_BEFORE_S, in whole milliseconds. */
  private time(): number {
    return 1_000_000_000 + this.rng.int(500_000_000) + this.rng.int(1000) / 1000;
  }

  private flags(): FlagName {
    return this.rng.pick(Object.keys(OPEN_FLAGS) as FlagName[]);
  }

  next(tree: TreeView, open: OpenPaths): Op {
    const r = this.rng;
    const used = open.flatMap((p, i) => (p !== undefined ? [i] : []));
    const free = open.flatMap((p, i) => (p === undefined ? [i] : []));
    let kind = r.weighted({
      create: 8, write: 10, append: 5, truncate: 6, rename: 12, unlink: 7, mkdir: 8, rmdir: 5, symlink: 4, link: 5,
      chmod: 4, utimes: 5, readdir: 3, stat: 4, readlink: 2, readFile: 2,
      fdopen: 6, fdwrite: 10, fdread: 5, fdtruncate: 3, fdstat: 3, fdsync: 2, fdutimes: 1, fdclose: 4,
    });
    if (kind.startsWith('fd') && kind !== 'fdopen' && used.length === 0) kind = 'fdopen';
    if (kind === 'fdopen' && free.length === 0) kind = 'fdclose';
    const slot = kind === 'fdopen' ? r.pick(free) : r.pick(used.length ? used : [0]);
    switch (kind) {
      case 'create':
        return { op: 'create', path: this.path(tree, r.chance(0.7) ? 'new' : 'any'), flags: r.pick(['wx', 'creat', 'w', 'a'] as const), mode: this.mode() & 0o777 };
      case 'write':
        return { op: 'write', path: this.path(tree, 'file'), offset: this.offset(), len: this.length(), fill: r.int(2 ** 31) };
      case 'append':
        return { op: 'append', path: this.path(tree, 'file'), len: this.length(), fill: r.int(2 ** 31) };
      case 'truncate':
        return { op: 'truncate', path: this.path(tree, 'file'), size: this.size(), syscall: r.chance(0.4) ? 'truncate' : 'ftruncate' };
      case 'rename': {
        const fromDir = r.chance(0.4);
        const from = this.path(tree, fromDir ? 'dir' : 'any', open);
        // Targets: a new name, an existing entry, inside the source itself, or the source itself.
        const to = r.chance(0.1) ? from : r.chance(0.1) ? `${from}/${r.pick(NAMES)}` : this.path(tree, r.pick(['new', 'any', 'dir', 'file'] as const), open);
        return { op: 'rename', from, to };
      }
      case 'unlink':
        return { op: 'unlink', path: this.path(tree, r.chance(0.8) ? 'file' : 'any', open) };
      case 'mkdir':
        return { op: 'mkdir', path: this.path(tree, r.chance(0.8) ? 'new' : 'any'), mode: this.mode() & 0o7777 };
      case 'rmdir':
        return { op: 'rmdir', path: this.path(tree, r.chance(0.8) ? 'dir' : 'any') };
      case 'symlink': {
        const target = r.chance(0.1) ? 'nowhere' : r.chance(0.1) ? r.pick(NAMES) : this.path(tree, 'any').replace(/\/$/, '');
        return { op: 'symlink', target, path: this.path(tree, 'new') };
      }
      case 'link':
        return { op: 'link', from: this.path(tree, r.chance(0.8) ? 'file' : 'any', open), to: this.path(tree, r.chance(0.8) ? 'new' : 'any') };
      case 'chmod':
        return { op: 'chmod', path: this.path(tree, 'any', open), mode: this.mode() };
      case 'utimes':
        return { op: 'utimes', path: this.path(tree, 'any', open), atime: this.time(), mtime: this.time(), follow: r.chance(0.8) };
      case 'readdir':
        return { op: 'readdir', path: r.chance(0.1) ? '.' : this.path(tree, 'dir') };
      case 'stat':
        return { op: 'stat', path: this.path(tree, 'any', open), follow: r.chance(0.5) };
      case 'readlink':
        return { op: 'readlink', path: r.chance(0.7) && tree.symlinks.length ? r.pick(tree.symlinks) : this.path(tree, 'any') };
      case 'readFile':
        return { op: 'readFile', path: this.path(tree, 'file') };
      case 'fdopen':
        return { op: 'fdopen', slot, path: this.path(tree, r.chance(0.85) ? 'file' : r.chance(0.5) ? 'new' : 'dir'), flags: this.flags(), mode: this.mode() & 0o777 };
      case 'fdwrite':
        return { op: 'fdwrite', slot, position: r.chance(0.15) ? null : this.offset(), len: this.length(), fill: r.int(2 ** 31) };
      case 'fdread':
        return { op: 'fdread', slot, position: r.chance(0.3) ? 0 : this.offset(), len: this.length() + 200 };
      case 'fdtruncate':
        return { op: 'fdtruncate', slot, size: this.size() };
      case 'fdstat':
        return { op: 'fdstat', slot };
      case 'fdsync':
        return { op: 'fdsync', slot };
      case 'fdutimes':
        return { op: 'fdutimes', slot, atime: this.time(), mtime: this.time() };
      default:
        return { op: 'fdclose', slot };
    }
  }
}
