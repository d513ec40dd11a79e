import { randomUUID } from 'node:crypto';
import { Mutex } from '../common/semaphore.js';
import { DfsError, outcomeUnknown } from '../protocol/errors.js';
import type { Input } from '../protocol/contract.js';
import { keptByNameServer, keptBytes, nameApi, type AttrChanges, type FileInfo } from '../protocol/name-api.js';
import type { Attr, ChunkLocation, ChunkRef, InlineChunk, Receipt, ServerRef, StoredCopy } from '../protocol/schemas.js';
import { commitUploadingMissing, receiptsOf } from '../client/chunk-io.js';
import { nowNs } from '../protocol/time.js';

/** What an open file needs from the rest of the mount. */
export interface FileBackend {
  readonly chunkSize: number;
  /** A chunk's bytes: from the cache, else from `servers`, else from wherever the name server says. */
  readChunk(hash: string, servers: readonly ServerRef[], path: string): Promise<Buffer>;
  /** Starts reading a chunk into the cache, without waiting. */
  prefetch(hash: string, servers: readonly ServerRef[], path: string): void;
  hash(data: Buffer): Promise<string>;
  /**
   * Where the cluster holds those of these chunks it can serve back (live copies); the others are to be
   * uploaded (kept by the name server as another small file's bytes, they are nowhere to read back from).
   */
  locate(hashes: readonly string[]): Promise<Map<string, ServerRef[]>>;
  /** Stores a chunk on a replication chain; the servers that hold it now, with their receipts. */
  upload(hash: string, data: Buffer, options?: { fanOut?: boolean }): Promise<StoredCopy[]>;
  /** Waits for a place among the uploads in flight (bounds the memory that dirty data takes). */
  uploadSlot(): Promise<() => void>;
  /** Keeps a chunk's bytes in the cache (just written: reading it back costs nothing). */
  remember(hash: string, data: Buffer): void;
  /** Files up to this many bytes go to the name server with their commit, not to storage servers (0: none). */
  readonly inlineMax: number;
  /** The name server would not keep a small file's bytes: its limit was lowered since it was learnt. */
  inlineRefused(): void;
  /** `appendedTo`: the content is bytes appended to that version: VERSION_MOVED if the file is past it. */
  commit(input: Input<typeof nameApi.commit>): Promise<Attr>;
  /** Has the name server add bytes to the end of a small file it keeps; NOT_KEPT if it does not keep it. */
  append(input: Input<typeof nameApi.append>): Promise<Attr>;
  /** A file's attributes and chunks, as the name server has them now. */
  info(path: string): Promise<FileInfo>;
}

/**
 * Bytes written through append-only handles to a file whose content this mount never fetched: close sends
 * them alone, for the name server to add to the small file it keeps. Opening and appending then take one
 * round trip, the close's, and appends from many clients all land.
 */
interface Appended {
  parts: Buffer[];
  /**
   * Bytes sent under this id whose answer never came: sent again first, with the same id, they land once.
   * `sent`: whether they were sent before (the name server then checks whether it made them before a restart).
   */
  inDoubt?: { id: string; data: Buffer; sent: boolean };
}

/**
 * The committed version (and its size) that every change made since the last commit was appended to, with
 * the id the commit of them goes under (it is made once however often it is sent).
 */
interface AppendBase {
  version: number;
  size: number;
  id: string;
  /**
   * The commit under this id got no answer: it may have been made. It is sent again, unchanged, before
   * anything else changes the file, or the id would name other content.
   */
  inDoubt: boolean;
}

function newBase(version: number, size: number): AppendBase {
  return { version, size, id: randomUUID(), inDoubt: false };
}

/** A chunk of the file as this mount holds it. */
type Slot =
  /** On storage servers (committed, or uploaded and not yet committed), or kept by the name server (`inline`). */
  | StoredSlot
  /** All zeros (a hole made by truncate or a write past the end); nothing is held. */
  | { kind: 'zero'; size: number }
  /** Changed here; `data` holds at least `size` bytes. */
  | DirtySlot
  /** Being uploaded; writers wait for it to become stored. */
  | { kind: 'uploading'; data: Buffer; size: number; done: Promise<void> };

interface StoredSlot {
  kind: 'stored';
  hash: string;
  size: number;
  servers: ServerRef[];
  /** The bytes of a chunk the name server keeps (a small file's): they came with the chunk list. */
  inline?: Buffer;
}

/** A committed chunk as the name server lists it, with the bytes it keeps itself. */
function storedSlot(c: ChunkLocation): StoredSlot {
  return { kind: 'stored', hash: c.hash, size: c.size, servers: c.servers, ...(c.data !== undefined ? { inline: keptBytes(c, c.data) } : {}) };
}

interface DirtySlot {
  kind: 'dirty';
  data: Buffer;
  size: number;
}

/** Smallest buffer a dirty chunk starts with: small files do not take a whole chunk of memory. */
const MIN_BUFFER = 64 * 1024;
/** Chunks read ahead of the one being read. */
const READ_AHEAD = 2;
/** How many commits to try when the name server says chunks are missing (re-uploading them between). */
const COMMIT_ATTEMPTS = 3;
/** How often appended bytes are laid at a new end after other clients' commits moved it, before giving up. */
const REBASE_ATTEMPTS = 20;
/**
 * Files up to this size upload their bytes without asking first whether the cluster holds them (sending
 * 64 KiB costs about what the question does, and a small file's bytes are rarely stored), and to every
 * replica at once rather than down a chain.
 */
const SMALL_FILE_BYTES = 64 * 1024;

/**
 * One file open in this mount, shared by every handle on its inode. Writes change chunks in memory;
 * each chunk that a write fills is uploaded in the background (bounded), and flush/fsync uploads the
 * rest and commits the new chunk list: close-to-open consistency, with close returning only once the
 * commit is acknowledged. Only changed chunks are uploaded, and (but for small files) only if the
 * cluster lacks them.
 */
export class OpenFile {
  private slots: Slot[];
  size: number;
  /** The last committed attributes. */
  attr: Attr;
  dirty = false;
  /** Handles open on it in this mount. */
  handles = 0;
  private lastWrite: string | undefined;
  /** Times set while the file had unflushed changes; they win over the time of the last write. */
  private mtimeOverride: string | undefined;
  /** chmod, chown and atime changes made while the file had unflushed changes: the commit carries them. */
  private attrChanges: AttrChanges = {};
  private readonly lock = new Mutex();
  /** An upload that failed in the background: the next write and flush report it. */
  private stickyError: unknown;
  private readonly uploads = new Set<Promise<void>>();
  /** Receipts of chunks uploaded since the last commit: the next commit hands them to the name server. */
  private receipts: Receipt[] = [];
  /** Opened for appending only: the content is not here (`slots` is empty), only what was appended. */
  private appended: Appended | undefined;
  /**
   * Set while every change since the last commit was an append (O_APPEND): the commit is then made only on
   * the version they were appended to, and another client's commit since makes them go at its new end, so
   * appends from many clients all land (as the name server's own appends do for the small files it keeps).
   */
  private appendBase: AppendBase | undefined;

  constructor(
    readonly ino: number,
    public path: string,
    attr: Attr,
    chunks: readonly ChunkLocation[],
    private readonly backend: FileBackend,
  ) {
    this.attr = attr;
    this.size = attr.size;
    this.slots = chunks.map(storedSlot);
  }

  /**
   * A file opened for appending only, whose content is fetched only if something needs it: a read, a write
   * elsewhere, a truncate, more bytes than the name server keeps, or an append it refuses. `attr` is what
   * this mount last knew of it.
   */
  static appending(ino: number, path: string, attr: Attr, backend: FileBackend): OpenFile {
    const file = new OpenFile(ino, path, attr, [], backend);
    file.appended = { parts: [] };
    return file;
  }

  /**
   * Takes a newer committed version (another client's close) if nothing here is unflushed. An older one is
   * ignored: an open whose lookup left before this file's last commit answers with the version before it,
   * and taking that would make the next append drop what the commit wrote.
   */
  refresh(attr: Attr, chunks: readonly ChunkLocation[]): void {
    if (this.dirty || (attr.version <= this.attr.version && !this.appended)) return;
    this.appended = undefined;
    this.attr = attr;
    this.size = attr.size;
    this.slots = chunks.map(storedSlot);
  }

  /** The modification time stat should show while changes are unflushed. */
  get pendingMtime(): string | undefined {
    return this.dirty ? (this.mtimeOverride ?? this.lastWrite) : undefined;
  }

  setTimes(mtime: string | undefined): void {
    if (this.dirty && mtime !== undefined) this.mtimeOverride = mtime;
  }

  /** Attribute changes stat should show while changes are unflushed. */
  get pendingAttrs(): AttrChanges | undefined {
    return this.dirty ? this.attrChanges : undefined;
  }

  /**
   * Takes a chmod, chown or utimens to commit together with the unflushed content, if there is any: tar
   * and rsync set a file's times, owner and mode just before they close it, and that is then one call to
   * the name server, not four. False when nothing is unflushed: the caller changes them at once.
   */
  deferAttrs(changes: AttrChanges & { mtime?: string | undefined }): Promise<boolean> {
    return this.lock.run(async () => {
      await this.settleCommit();
      if (!this.dirty) return false;
      const { mtime, ...rest } = changes;
      this.attrChanges = { ...this.attrChanges, ...rest };
      if (mtime !== undefined) this.mtimeOverride = mtime;
      return true;
    });
  }

  async read(offset: number, length: number, out: Buffer): Promise<number> {
    if (this.appended) await this.lock.run(() => this.fetchContent());
    if (offset >= this.size || length === 0) return 0;
    const end = Math.min(this.size, offset + length);
    const cs = this.backend.chunkSize;
    const first = Math.floor(offset / cs);
    const last = Math.floor((end - 1) / cs);
    const parts: Promise<Buffer | undefined>[] = [];
    for (let i = first; i <= last; i++) parts.push(this.bytesOf(this.slots[i]));
    // Read ahead: the next chunks are fetched while this one is being consumed.
    for (let ahead = 1; ahead <= READ_AHEAD; ahead++) this.prefetch(last + ahead);
    const buffers = await Promise.all(parts);
    for (let i = first; i <= last; i++) {
      const chunkStart = i * cs;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(end, chunkStart + cs);
      const data = buffers[i - first];
      if (data) {
        const copied = data.copy(out, from - offset, from - chunkStart, to - chunkStart);
        if (copied < to - from) out.fill(0, from - offset + copied, to - offset);
      } else {
        out.fill(0, from - offset, to - offset);
      }
    }
    return end - offset;
  }

  /** A chunk's bytes (undefined for a hole), whatever state it is in. */
  private bytesOf(slot: Slot | undefined): Promise<Buffer | undefined> {
    if (!slot || slot.kind === 'zero') return Promise.resolve(undefined);
    if (slot.kind === 'dirty' || slot.kind === 'uploading') return Promise.resolve(slot.data);
    return this.storedBytes(slot);
  }

  private storedBytes(slot: StoredSlot): Promise<Buffer> {
    return slot.inline ? Promise.resolve(slot.inline) : this.backend.readChunk(slot.hash, slot.servers, this.path);
  }

  private prefetch(index: number): void {
    const slot = this.slots[index];
    if (slot?.kind === 'stored' && !slot.inline) this.backend.prefetch(slot.hash, slot.servers, this.path);
  }

  /** Writes bytes at `offset`. */
  write(offset: number, data: Buffer): Promise<number> {
    return this.lock.run(async () => {
      await this.settleCommit();
      await this.fetchContent();
      // Not an append: the content is this mount's to replace (the last commit wins, as ever).
      this.appendBase = undefined;
      return this.writeAt(offset, data);
    });
  }

  /** Writes bytes at the end (O_APPEND), wherever the kernel thinks the end is. */
  append(data: Buffer): Promise<number> {
    return this.lock.run(async () => {
      await this.settleCommit();
      const appended = this.appended;
      // `size` is what this mount knows (another client may have appended since): the name server decides.
      if (appended && keptByNameServer(this.size + data.length, this.backend.inlineMax)) {
        // FUSE lends the bytes only until the write is answered.
        appended.parts.push(Buffer.from(data));
        this.size += data.length;
        this.wrote();
        return data.length;
      }
      await this.fetchContent();
      if (!this.dirty) this.appendBase = newBase(this.attr.version, this.size);
      return this.writeAt(this.size, data);
    });
  }

  /**
   * Fetches the content of a file opened for appending only and lays what was appended over it. Callers
   * hold the lock.
   */
  private async fetchContent(): Promise<void> {
    const appended = this.appended;
    if (!appended) return;
    // Whether bytes sent before are in the content must be known before it is read.
    await this.settleDoubt(appended);
    // Everything pending is appended: it goes on the version fetched, and on no other.
    await this.reload();
    this.appended = undefined;
    for (const part of appended.parts) await this.writeAt(this.size, part);
  }

  /**
   * Takes the file as the name server has it now, as the base of what is appended next. Callers hold the
   * lock.
   */
  private async reload(): Promise<void> {
    const info = await this.backend.info(this.path);
    if (info.attr.ino !== this.ino) throw new DfsError('EIO', `${this.path} was replaced by another file while open for appending`);
    this.attr = info.attr;
    this.size = info.attr.size;
    this.slots = info.chunks.map(storedSlot);
    this.appendBase = newBase(info.attr.version, info.attr.size);
  }

  /**
   * Sends appended bytes under their id (again, if their answer was lost: they land once). False if the
   * name server refused them (NOT_KEPT: not made): they are put back in front of the bytes appended since.
   * Callers hold the lock.
   */
  private async settleDoubt(appended: Appended): Promise<boolean> {
    const sent = appended.inDoubt;
    if (!sent) return true;
    try {
      const resent = sent.sent;
      sent.sent = true;
      this.attr = await this.backend.append({ path: this.path, ino: this.ino, data: sent.data.toString('base64'), id: sent.id, ...(resent ? { resent } : {}), ...this.pendingChanges() });
      this.attrChanges = {};
      appended.inDoubt = undefined;
      return true;
    } catch (err) {
      // No answer: the bytes stay in doubt, to be sent again under the same id.
      if (!(err instanceof DfsError) || err.code !== 'NOT_KEPT') throw err;
      appended.inDoubt = undefined;
      appended.parts.unshift(sent.data);
      return false;
    }
  }

  private wrote(): void {
    this.dirty = true;
    this.lastWrite = nowNs();
    this.mtimeOverride = undefined;
  }

  /** Writes bytes at `offset` into the content. Callers hold the lock. */
  private async writeAt(offset: number, data: Buffer): Promise<number> {
    if (this.stickyError) throw this.stickyError;
    const end = offset + data.length;
    if (end > this.size) await this.resize(end);
    const cs = this.backend.chunkSize;
    const first = Math.floor(offset / cs);
    const last = Math.floor((end - 1) / cs);
    for (let i = first; i <= last; i++) {
      const slot = await this.materialize(i);
      const chunkStart = i * cs;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(end, chunkStart + cs);
      ensureCapacity(slot, to - chunkStart, cs);
      data.copy(slot.data, from - chunkStart, from - offset, to - offset);
    }
    this.wrote();
    // A chunk this write filled to its end is done being written, most likely: send it on its way.
    for (let i = first; i <= last; i++) {
      const slot = this.slots[i];
      if (slot?.kind === 'dirty' && slot.size === cs && (i + 1) * cs <= end) await this.stage(i, slot);
    }
    return data.length;
  }

  /**
   * Cuts or extends the file. The modification time moves even when the size does not: FUSE 2 sends
   * open(O_TRUNC) and ftruncate as this same call, and Linux updates the time for both (`: > stamp`).
   */
  truncate(size: number): Promise<void> {
    return this.lock.run(async () => {
      await this.settleCommit();
      await this.fetchContent();
      this.appendBase = undefined;
      if (size !== this.size) await this.resize(size);
      this.wrote();
    });
  }

  /** Grows (with zeros) or shrinks the file to `size`. Callers hold the lock. */
  private async resize(size: number): Promise<void> {
    const cs = this.backend.chunkSize;
    if (size > this.size) {
      const lastIndex = this.slots.length - 1;
      const lastSlot = this.slots[lastIndex];
      if (lastSlot && lastSlot.size < cs) {
        const target = Math.min(cs, size - lastIndex * cs);
        if (lastSlot.kind === 'zero') lastSlot.size = target;
        else {
          const dirty = await this.materialize(lastIndex);
          ensureCapacity(dirty, target, cs);
          dirty.size = target;
        }
      }
      for (let i = this.slots.length; i * cs < size; i++) this.slots.push({ kind: 'zero', size: Math.min(cs, size - i * cs) });
    } else {
      const keep = Math.ceil(size / cs);
      this.slots.length = keep;
      if (keep > 0) {
        const lastSize = size - (keep - 1) * cs;
        const slot = this.slots[keep - 1]!;
        if (slot.size > lastSize) {
          if (slot.kind === 'zero') slot.size = lastSize;
          else {
            const dirty = await this.materialize(keep - 1);
            // Zero what was cut off: growing again must read zeros there.
            dirty.data.fill(0, lastSize);
            dirty.size = lastSize;
          }
        }
      }
    }
    this.size = size;
  }

  /** Makes a chunk changeable in memory, loading its current bytes. Callers hold the lock. */
  private async materialize(index: number): Promise<DirtySlot> {
    for (;;) {
      const slot = this.slots[index];
      if (!slot) throw new DfsError('EIO', `chunk ${index} of ${this.path} is past the end`);
      if (slot.kind === 'dirty') return slot;
      if (slot.kind === 'uploading') {
        await slot.done;
        continue;
      }
      let data: Buffer;
      if (slot.kind === 'stored') {
        const content = await this.storedBytes(slot);
        data = Buffer.alloc(Math.max(MIN_BUFFER, slot.size));
        content.copy(data, 0, 0, slot.size);
      } else if (index > 0) {
        // A new chunk past the first of a file: most likely a large file written in order, which fills it.
        // One whole-chunk buffer costs less than growing one by doubling (copies, and garbage to collect).
        data = Buffer.alloc(this.backend.chunkSize);
      } else {
        data = Buffer.alloc(Math.min(this.backend.chunkSize, Math.max(MIN_BUFFER, slot.size)));
      }
      const dirty: DirtySlot = { kind: 'dirty', data, size: slot.size };
      this.slots[index] = dirty;
      return dirty;
    }
  }

  /** Uploads a full chunk in the background, once a place among the uploads in flight is free. */
  private async stage(index: number, slot: DirtySlot): Promise<void> {
    const release = await this.backend.uploadSlot();
    const data = slot.data.subarray(0, slot.size);
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const uploading: Slot = { kind: 'uploading', data: slot.data, size: slot.size, done };
    this.slots[index] = uploading;
    const work = (async () => {
      try {
        const hash = await this.backend.hash(data);
        // Already stored: where, so that the bytes can be read back once the cache lets go of them (the file
        // does not list the chunk until its commit).
        let servers = (await this.backend.locate([hash])).get(hash);
        if (!servers) {
          const copies = await this.backend.upload(hash, data);
          this.receipts.push(...receiptsOf(hash, slot.size, copies));
          servers = copies;
        }
        // Nothing writes into a buffer once it is uploading (writers wait, then copy): the cache can have it.
        this.backend.remember(hash, forCache(data));
        if (this.slots[index] === uploading) this.slots[index] = { kind: 'stored', hash, size: slot.size, servers };
      } catch (err) {
        this.stickyError = err;
        if (this.slots[index] === uploading) this.slots[index] = slot;
      } finally {
        release();
        finish();
      }
    })();
    this.uploads.add(work);
    void work.finally(() => this.uploads.delete(work));
  }

  /**
   * Uploads whatever the cluster lacks and commits the chunk list. Resolves once the commit is
   * acknowledged (the new chunks on the write quorum of servers); throws EIO, ENOSPC … when it is not.
   */
  flush(): Promise<void> {
    return this.lock.run(() => this.flushLocked());
  }

  private async flushLocked(): Promise<void> {
    if (!this.dirty) return;
    if (this.appended && (await this.flushAppended(this.appended))) return;
    for (let attempt = 1; ; attempt++) {
      // (Background uploads done first: the chunks as they are before this commit are its fallback.)
      await Promise.all(this.uploads);
      const before = [...this.slots];
      try {
        return await this.commitContent();
      } catch (err) {
        if (this.appendBase && outcomeUnknown(err)) this.appendBase.inDoubt = true;
        // Another client's commit moved the file on since the bytes here were appended to it (and this commit,
        // if it was sent before, was not made): they go at its new end (O_APPEND), from the chunks as they
        // were before this commit (its uploads may not be readable).
        if (!(err instanceof DfsError) || err.code !== 'VERSION_MOVED' || !this.appendBase || attempt >= REBASE_ATTEMPTS) throw err;
        this.appendBase.inDoubt = false;
        this.slots = before;
        await this.rebase(this.appendBase);
      }
    }
  }

  /** Sends a commit in doubt again (unchanged) before the file changes. Callers hold the lock. */
  private async settleCommit(): Promise<void> {
    if (this.appendBase?.inDoubt) await this.flushLocked();
  }

  /**
   * Lays the bytes appended since `base` at the end of the file as the name server has it now. Callers hold
   * the lock.
   */
  private async rebase(base: AppendBase): Promise<void> {
    const old = { slots: this.slots, size: this.size, attr: this.attr };
    const cs = this.backend.chunkSize;
    try {
      await this.reload();
      // A chunk at a time: an append of gigabytes is uploaded as it is laid, not held whole.
      for (let at = base.size; at < old.size; ) {
        const index = Math.floor(at / cs);
        const start = index * cs;
        const to = Math.min(old.size, start + cs);
        const bytes = await this.bytesOf(old.slots[index]);
        await this.writeAt(this.size, bytes ? bytes.subarray(at - start, to - start) : Buffer.alloc(to - at));
        at = to;
      }
    } catch (err) {
      // Laid in part: the bytes appended are still only in the old layout, which the next flush starts from.
      this.slots = old.slots;
      this.size = old.size;
      this.attr = old.attr;
      this.appendBase = base;
      throw err;
    }
  }

  /** Uploads what the cluster lacks and commits the content. Callers hold the lock. */
  private async commitContent(): Promise<void> {
    // (Background uploads were awaited by the caller.)
    this.stickyError = undefined;
    const contents = new Map<string, Buffer>();
    const pending: { index: number; data: Buffer; size: number }[] = [];
    // Holes share one zero buffer per size (and so one hash): a 10 GiB truncate is one chunk to store.
    const zeros = new Map<number, Buffer>();
    this.slots.forEach((slot, index) => {
      if (slot.kind === 'dirty') pending.push({ index, data: slot.data.subarray(0, slot.size), size: slot.size });
      else if (slot.kind === 'zero') {
        let data = zeros.get(slot.size);
        if (!data) zeros.set(slot.size, (data = Buffer.alloc(slot.size)));
        pending.push({ index, data, size: slot.size });
      }
    });
    const hashOf = new Map<Buffer, Promise<string>>();
    const hashes = await Promise.all(
      pending.map((p) => {
        let hash = hashOf.get(p.data);
        if (!hash) hashOf.set(p.data, (hash = this.backend.hash(p.data)));
        return hash;
      }),
    );
    pending.forEach((p, i) => contents.set(hashes[i]!, p.data));
    // A small file's bytes go with the commit, for the name server to keep: no storage server is involved.
    if (keptByNameServer(this.size, this.backend.inlineMax) && this.slots.length === 1 && pending.length === 1) {
      const hash = hashes[0]!;
      const data = forCache(pending[0]!.data);
      const unsent = this.slots[0]!;
      this.slots[0] = { kind: 'stored', hash, size: data.length, servers: [], inline: data };
      try {
        this.finishCommit(await this.commitWithRetry(contents, [{ hash, data: data.toString('base64') }]));
      } catch (err) {
        // The bytes are still this mount's alone: the next flush sends them again, to the name server.
        this.slots[0] = unsent;
        throw err;
      }
      return;
    }
    // Only what the cluster lacks is sent: a copy of stored bytes uploads nothing (but for small files).
    const small = this.size <= SMALL_FILE_BYTES;
    const located = small ? new Map<string, ServerRef[]>() : await this.backend.locate([...contents.keys()]);
    const missing = [...contents.keys()].filter((hash) => !located.has(hash));
    await Promise.all(
      missing.map(async (hash) => {
        const release = await this.backend.uploadSlot();
        try {
          const copies = await this.backend.upload(hash, contents.get(hash)!, { fanOut: small });
          located.set(hash, copies);
          this.receipts.push(...receiptsOf(hash, contents.get(hash)!.length, copies));
        } finally {
          release();
        }
      }),
    );
    pending.forEach((p, i) => {
      const hash = hashes[i]!;
      this.slots[p.index] = { kind: 'stored', hash, size: p.size, servers: located.get(hash) ?? [] };
    });
    const attr = await this.commitWithRetry(contents, []);
    // The dirty buffers are dropped with their slots: the cache can have them.
    for (const [hash, data] of contents) this.backend.remember(hash, forCache(data));
    this.finishCommit(attr);
  }

  /**
   * Sends what was appended for the name server to add to the file. False when it does not keep the file
   * (or would not with these bytes): the content is here then, to commit the usual way. Callers hold the lock.
   */
  private async flushAppended(appended: Appended): Promise<boolean> {
    let made = await this.settleDoubt(appended);
    if (made && appended.parts.length > 0) {
      appended.inDoubt = { id: randomUUID(), data: Buffer.concat(appended.parts), sent: false };
      appended.parts = [];
      made = await this.settleDoubt(appended);
    }
    if (!made) {
      // Refused: those bytes go with the content, committed the usual way.
      await this.fetchContent();
      return false;
    }
    this.finishCommit(this.attr);
    return true;
  }

  private finishCommit(attr: Attr): void {
    // A commit of appended bytes made before, sent again, is answered with the file as it is now, which may be
    // later than the version it made: this mount holds that version's content, and says so (a newer one is
    // then taken as any newer version is, and what is appended next is laid on it).
    if (this.appendBase && attr.version !== this.appendBase.version + 1) attr = { ...attr, version: this.appendBase.version + 1, size: this.size };
    this.appendBase = undefined;
    this.attr = attr;
    this.size = attr.size;
    this.dirty = false;
    this.lastWrite = undefined;
    this.mtimeOverride = undefined;
  }

  /** The time and attribute changes a commit or an append carries (none are sent empty). */
  private pendingChanges(): { mtime?: string; attrs?: AttrChanges } {
    const mtime = this.mtimeOverride ?? this.lastWrite;
    return { ...(mtime ? { mtime } : {}), ...(Object.keys(this.attrChanges).length > 0 ? { attrs: this.attrChanges } : {}) };
  }

  private async commitWithRetry(contents: Map<string, Buffer>, inline: InlineChunk[]): Promise<Attr> {
    const chunks: ChunkRef[] = this.slots.map((slot) => {
      if (slot.kind !== 'stored') throw new DfsError('EIO', `${this.path}: chunk not uploaded`);
      return { hash: slot.hash, size: slot.size };
    });
    const base = this.appendBase;
    const input = { path: this.path, ino: this.ino, chunks, size: this.size, receipts: this.receipts, ...this.pendingChanges(), ...(base ? { appendedTo: { version: base.version, id: base.id } } : {}) };
    const attr = await commitUploadingMissing({
      commit: (kept) => this.backend.commit({ ...input, ...(kept.length > 0 ? { inline: kept } : {}) }),
      inline,
      attempts: COMMIT_ATTEMPTS,
      inlineRefused: () => this.backend.inlineRefused(),
      upload: (missing) =>
        Promise.all(
          [...missing].map(async (hash) => {
            const slot = this.slots.find((s) => s.kind === 'stored' && s.hash === hash);
            const data = contents.get(hash) ?? (slot?.kind === 'stored' ? await this.storedBytes(slot) : undefined);
            if (!data) throw new DfsError('EIO', `${this.path}: chunk ${hash} was lost before the commit`);
            this.receipts.push(...receiptsOf(hash, data.length, await this.backend.upload(hash, data)));
          }),
        ).then(() => undefined),
    });
    this.receipts = [];
    this.attrChanges = {};
    return attr;
  }
}

/**
 * Bytes to keep in the chunk cache: the buffer itself when the bytes fill most of it, else a copy of just
 * the bytes (a 1 KiB file must not hold on to a 64 KiB buffer the cache counts as 1 KiB).
 */
function forCache(data: Buffer): Buffer {
  return data.byteLength * 2 >= data.buffer.byteLength ? data : Buffer.from(data);
}

/** Grows a dirty chunk's buffer (zero-filled) to hold `needed` bytes, doubling up to a whole chunk. */
function ensureCapacity(slot: DirtySlot, needed: number, chunkSize: number): void {
  if (needed > slot.size) slot.size = needed;
  if (slot.data.length >= needed) return;
  const grown = Buffer.alloc(Math.min(chunkSize, Math.max(needed, slot.data.length * 2)));
  slot.data.copy(grown);
  slot.data = grown;
}
