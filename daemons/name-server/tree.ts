import { fileTypes, S_IFMT } from '../../protocol/schemas.js';
import { ROOT_INO, type InodeRow, type InodePatch, type Mutation, type NamespaceSnapshot } from './meta/store.js';

const isDirMode = (mode: number): boolean => (mode & S_IFMT) === fileTypes.dir;
const isFileMode = (mode: number): boolean => (mode & S_IFMT) === fileTypes.file;

/**
 * The whole namespace in memory (as MooseFS's master keeps it): inodes, directory entries and xattrs.
 * Reads never touch the database; every change is made here and written through by the engine. Holds
 * no rules: namespace.ts decides, this only stores.
 */
export class Tree {
  private readonly inodes = new Map<number, InodeRow>();
  private readonly children = new Map<number, Map<string, number>>();
  private readonly xattrs = new Map<number, Map<string, Buffer>>();
  /** Where each directory sits (a directory has one name), so a change can name the folder it touched. */
  private readonly dirNames = new Map<number, { parent: number; name: string }>();
  private nextIno = ROOT_INO + 1;
  /** Kept as changes happen, so status never walks the tree. */
  files = 0;
  dirs = 0;
  bytes = 0;

  static fromSnapshot(snapshot: NamespaceSnapshot): Tree {
    const tree = new Tree();
    for (const inode of snapshot.inodes) tree.insertInode({ ...inode });
    for (const entry of snapshot.entries) tree.insertEntry(entry.parent, entry.name, entry.ino);
    for (const x of snapshot.xattrs) tree.setXattr(x.ino, x.name, Buffer.from(x.value));
    return tree;
  }

  get(ino: number): InodeRow | undefined {
    return this.inodes.get(ino);
  }

  lookup(parent: number, name: string): InodeRow | undefined {
    const ino = this.children.get(parent)?.get(name);
    return ino === undefined ? undefined : this.inodes.get(ino);
  }

  hasChildren(dir: number): boolean {
    return (this.children.get(dir)?.size ?? 0) > 0;
  }

  /** A directory's entries, sorted by name. */
  entries(dir: number): { name: string; inode: InodeRow }[] {
    const names = this.children.get(dir);
    if (!names) return [];
    return [...names.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, ino]) => ({ name, inode: this.inodes.get(ino)! }));
  }

  /** Follows `names` from the root as far as they exist; the first step is the root. */
  walk(names: readonly string[]): InodeRow[] {
    const steps: InodeRow[] = [this.inodes.get(ROOT_INO)!];
    for (const name of names) {
      const next = this.lookup(steps[steps.length - 1]!.ino, name);
      if (!next) break;
      steps.push(next);
    }
    return steps;
  }

  allocateIno(): number {
    return this.nextIno++;
  }

  xattr(ino: number, name: string): Buffer | undefined {
    return this.xattrs.get(ino)?.get(name);
  }

  hasXattrs(ino: number): boolean {
    return (this.xattrs.get(ino)?.size ?? 0) > 0;
  }

  xattrNames(ino: number): string[] {
    return [...(this.xattrs.get(ino)?.keys() ?? [])].sort();
  }

  /** Applies a mutation (the engine applies the same one to the database). */
  apply(m: Mutation): void {
    switch (m.kind) {
      case 'insertInode':
        this.insertInode({ ...m.inode });
        break;
      case 'updateInode':
        this.updateInode(m.ino, m.patch);
        break;
      case 'deleteInode':
        this.deleteInode(m.ino);
        break;
      case 'insertEntry':
        this.insertEntry(m.entry.parent, m.entry.name, m.entry.ino);
        break;
      case 'deleteEntry':
        this.deleteEntry(m.parent, m.name);
        break;
      case 'setXattr':
        this.setXattr(m.ino, m.name, m.value);
        break;
      case 'removeXattr':
        this.xattrs.get(m.ino)?.delete(m.name);
        break;
      case 'setChunks':
      case 'copyChunks':
      case 'addReplicas':
      case 'keepInline':
        // Chunk lists, placement and kept bytes live in the database only.
        break;
    }
  }

  private insertInode(inode: InodeRow): void {
    this.inodes.set(inode.ino, inode);
    if (inode.ino >= this.nextIno) this.nextIno = inode.ino + 1;
    this.count(inode, +1);
  }

  private updateInode(ino: number, patch: InodePatch): void {
    const inode = this.inodes.get(ino);
    if (!inode) return;
    this.count(inode, -1);
    Object.assign(inode, patch);
    this.count(inode, +1);
  }

  private deleteInode(ino: number): void {
    const inode = this.inodes.get(ino);
    if (!inode) return;
    this.count(inode, -1);
    this.inodes.delete(ino);
    this.children.delete(ino);
    this.dirNames.delete(ino);
    this.xattrs.delete(ino);
  }

  private insertEntry(parent: number, name: string, ino: number): void {
    let names = this.children.get(parent);
    if (!names) this.children.set(parent, (names = new Map()));
    names.set(name, ino);
    const inode = this.inodes.get(ino);
    if (inode && isDirMode(inode.mode)) this.dirNames.set(ino, { parent, name });
  }

  private deleteEntry(parent: number, name: string): void {
    const names = this.children.get(parent);
    const ino = names?.get(name);
    if (ino === undefined) return;
    names!.delete(name);
    const at = this.dirNames.get(ino);
    // A rename may have given the directory its new name first.
    if (at && at.parent === parent && at.name === name) this.dirNames.delete(ino);
  }

  /** The path of a directory, or undefined if it is not in the tree. */
  dirPath(ino: number): string | undefined {
    const names: string[] = [];
    for (let at = ino; at !== ROOT_INO; ) {
      const entry = this.dirNames.get(at);
      if (!entry || names.length > 4096) return undefined;
      names.push(entry.name);
      at = entry.parent;
    }
    return `/${names.reverse().join('/')}`;
  }

  private setXattr(ino: number, name: string, value: Buffer): void {
    let names = this.xattrs.get(ino);
    if (!names) this.xattrs.set(ino, (names = new Map()));
    names.set(name, value);
  }

  private count(inode: InodeRow, sign: 1 | -1): void {
    if (isDirMode(inode.mode)) this.dirs += sign;
    else if (isFileMode(inode.mode)) {
      this.files += sign;
      this.bytes += sign * inode.size;
    }
  }
}
