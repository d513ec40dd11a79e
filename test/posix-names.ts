import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { FD_SLOTS, type Op } from './posix-model.js';

/**
 * Which name each open descriptor was opened through, followed across renames and unlinks, on the local
 * (reference) tree. FUSE 2's high-level API (libfuse's path-based nodes) gives every *name* its own kernel
 * inode, so two hard links of one file have two page caches in the kernel: bytes written through one name
 * are not seen by a descriptor that was already open through the other until it is opened again (libfuse
 * invalidates the cache at open when the size or modification time changed). A descriptor that has
 * missed writes that way is "stale", and its reads are not compared. libfuse also hides the target of a
 * rename when that name is open, even when source and target are links of one inode, where Linux does
 * nothing; such a rename is skipped.
 */

interface OpenName {
  /** The name the kernel inode stands for (relative to the root), or a unique `\0hidden` one once gone. */
  name: string;
  ino: string;
  /** Written through another name since it was opened. */
  stale: boolean;
}

const TRUNCATING = new Set<string>(['w', 'w+', 'trunc+']);

export class OpenNames {
  private readonly slots: (OpenName | undefined)[] = new Array<OpenName | undefined>(FD_SLOTS).fill(undefined);
  private hiddenCounter = 0;
  private realRoot = '';

  constructor(private readonly root: string) {}

  /** The canonical name of a path: its directory resolved, the last name followed if `follow`. */
  private async canon(path: string, follow: boolean): Promise<string | undefined> {
    this.realRoot ||= await fsp.realpath(this.root);
    const clean = path.replace(/\/+$/, '');
    try {
      if (follow) return relative(this.realRoot, await fsp.realpath(join(this.root, clean)));
      const dir = relative(this.realRoot, await fsp.realpath(join(this.root, dirname(clean))));
      return dir === '' ? basename(clean) : `${dir}/${basename(clean)}`;
    } catch {
      return undefined;
    }
  }

  private async ino(path: string, follow: boolean): Promise<string | undefined> {
    const at = join(this.root, path);
    const s = await (follow ? fsp.stat(at, { bigint: true }) : fsp.lstat(at, { bigint: true })).catch(() => undefined);
    return s?.ino.toString();
  }

  isStale(slot: number): boolean {
    return this.slots[slot]?.stale ?? false;
  }

  /** Whether closing this slot closes the last descriptor on a name that is gone (libfuse's hidden name). */
  lastThroughHiddenName(slot: number): boolean {
    const name = this.slots[slot]?.name;
    return name !== undefined && name.startsWith('\0hidden') && this.slots.filter((s) => s?.name === name).length === 1;
  }

  /** Whether libfuse would hide the target of this rename although it is a link of the source's inode. */
  async renamesOntoOpenLink(op: Op): Promise<boolean> {
    if (op.op !== 'rename') return false;
    const [from, to] = [await this.canon(op.from, false), await this.canon(op.to, false)];
    if (from === undefined || to === undefined || from === to) return false;
    const ino = await this.ino(op.from, false);
    return ino !== undefined && ino === (await this.ino(op.to, false)) && this.slots.some((s) => s?.name === to);
  }

  /** What must be known before an operation changes names: its canonical source and target. */
  async before(op: Op): Promise<{ from?: string | undefined; to?: string | undefined; sameInode?: boolean }> {
    if (op.op === 'rename') {
      const ino = await this.ino(op.from, false);
      return { from: await this.canon(op.from, false), to: await this.canon(op.to, false), sameInode: ino !== undefined && ino === (await this.ino(op.to, false)) };
    }
    if (op.op === 'unlink') return { from: await this.canon(op.path, false) };
    return {};
  }

  /** Follows a successful operation: names that moved or went away, and writes through other names. */
  async after(op: Op, before: { from?: string | undefined; to?: string | undefined; sameInode?: boolean }, localFd: FileHandle | undefined): Promise<void> {
    const { from, to } = before;
    switch (op.op) {
      case 'fdopen': {
        const name = await this.canon(op.path, true);
        const ino = (await localFd!.stat({ bigint: true })).ino.toString();
        this.slots[op.slot] = { name: name ?? this.hide(), ino, stale: false };
        if (TRUNCATING.has(op.flags)) this.written(ino, name);
        return;
      }
      case 'fdclose':
        this.slots[op.slot] = undefined;
        return;
      case 'unlink': {
        // One hidden name for every descriptor opened through the name (they share libfuse's node).
        const hidden = this.hide();
        for (const s of this.slots) if (s && s.name === from) s.name = hidden;
        return;
      }
      case 'rename': {
        if (from === undefined || to === undefined || from === to) return;
        const hidden = this.hide();
        for (const s of this.slots) {
          if (!s) continue;
          // libfuse moves the source's node onto the target name even when Linux does nothing (one inode).
          if (s.name === to && !before.sameInode) s.name = hidden;
          else if (s.name === from) s.name = to;
          else if (s.name.startsWith(`${from}/`)) s.name = to + s.name.slice(from.length);
        }
        return;
      }
      case 'write':
      case 'append':
      case 'truncate':
      case 'create': {
        if (op.op === 'create' && op.flags !== 'w') return;
        const ino = await this.ino(op.path, true);
        if (ino !== undefined) this.written(ino, await this.canon(op.path, true));
        return;
      }
      case 'fdwrite':
      case 'fdtruncate': {
        const s = this.slots[op.slot];
        if (s) this.written(s.ino, s.name);
        return;
      }
      default:
    }
  }

  private written(ino: string, through: string | undefined): void {
    for (const s of this.slots) if (s && s.ino === ino && s.name !== through) s.stale = true;
  }

  private hide(): string {
    return `\0hidden${++this.hiddenCounter}`;
  }
}
