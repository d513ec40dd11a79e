import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DfsError } from '../../protocol/errors.js';
import { HASH_PATTERN } from '../../protocol/schemas.js';
import { sha256Moving } from '../../common/sha256.js';

export interface ChunkInfo {
  hash: string;
  size: number;
  mtimeMs: number;
}

/** Bytes of a chunk gathered before they are written out. */
const WRITE_BATCH = 1024 * 1024;
/** Most pieces gathered for one writev (below the kernel's IOV_MAX of 1024). */
const MAX_PIECES = 256;
/** How long the disk's free space is trusted before asking again. */
const SPACE_TTL_MS = 1_000;
/** Renames into a directory are made durable together, at most this long after the first. */
const DIR_SYNC_MS = 200;
/** How many chunk verifications to remember, so range reads of a verified chunk skip re-hashing. */
const VERIFIED_CACHE_ENTRIES = 100_000;

/**
 * Immutable content-addressed chunks on local disk: `chunks/<first two hex>/<hash>`. Every write goes to
 * a temp file, is hashed as it arrives, fsynced, then renamed into place, so a crash never leaves a partial
 * chunk under a valid name. Knows nothing of paths.
 */
export class ChunkStore {
  private readonly chunksDir: string;
  private readonly tmpDir: string;
  private readonly corruptDir: string;
  private count = 0;
  private usedBytes = 0;
  /** hash → `${size}:${mtimeMs}` of the file when it last hashed right. */
  private readonly verified = new Map<string, string>();
  /** Per-chunk lock: a delete and a rename into place of the same chunk never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Chunk directories known to exist. */
  private readonly knownDirs = new Set<string>();
  /** The disk's last answer to statfs, and the bytes used then. */
  private disk: { at: number; total: number; free: number; used: number } | undefined;
  /** Directories with renames not yet fsynced. */
  private readonly dirtyDirs = new Set<string>();
  private dirSyncTimer: NodeJS.Timeout | undefined;

  /** Told of every corrupt chunk found (and moved aside), to report it. */
  onCorrupt: ((hash: string) => void) | undefined;

  constructor(
    readonly root: string,
    private readonly capacityLimit: number | undefined,
  ) {
    this.chunksDir = join(root, 'chunks');
    this.tmpDir = join(root, 'tmp');
    this.corruptDir = join(root, 'corrupt');
  }

  /** Creates the layout, clears temp files a crash left behind, and counts what is held. */
  async open(): Promise<void> {
    await mkdir(this.chunksDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.corruptDir, { recursive: true });
    const all = await this.list();
    this.count = all.length;
    this.usedBytes = all.reduce((sum, c) => sum + c.size, 0);
  }

  get chunkCount(): number {
    return this.count;
  }

  get used(): number {
    return this.usedBytes;
  }

  pathOf(hash: string): string {
    if (!HASH_PATTERN.test(hash)) throw new DfsError('BAD_REQUEST', 'a chunk name is 64 lowercase hex digits');
    return join(this.chunksDir, hash.slice(0, 2), hash);
  }

  /** Capacity and free bytes: the disk's, capped by the configured capacity. */
  async space(): Promise<{ capacity: number; free: number }> {
    // The disk is asked at most every SPACE_TTL_MS; bytes stored since are counted off its answer.
    if (!this.disk || Date.now() - this.disk.at > SPACE_TTL_MS) {
      const fsStat = await statfs(this.root);
      this.disk = { at: Date.now(), total: fsStat.blocks * fsStat.bsize, free: fsStat.bavail * fsStat.bsize, used: this.usedBytes };
    }
    const diskTotal = this.disk.total;
    const diskFree = Math.max(0, this.disk.free - (this.usedBytes - this.disk.used));
    const capacity = this.capacityLimit !== undefined ? Math.min(this.capacityLimit, diskTotal) : diskTotal;
    const free = Math.max(0, Math.min(diskFree, capacity - (this.capacityLimit !== undefined ? this.usedBytes : diskTotal - diskFree)));
    return { capacity, free };
  }

  async info(hash: string): Promise<ChunkInfo | undefined> {
    try {
      const st = await stat(this.pathOf(hash));
      return { hash, size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Starts writing a chunk; the caller feeds bytes and then commits (or aborts). */
  async beginWrite(hash: string, size: number): Promise<ChunkWriter> {
    const finalPath = this.pathOf(hash);
    const { free } = await this.space();
    if (size > free) throw new DfsError('ENOSPC', `no room for ${size} bytes (${free} free)`);
    const tmpPath = join(this.tmpDir, `${hash}.${randomBytes(6).toString('hex')}`);
    const handle = await open(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    return new ChunkWriter(this, hash, size, tmpPath, finalPath, handle);
  }

  /**
   * A chunk was renamed into `dir`. The chunk's bytes were fsynced before the rename; the directory entry
   * is fsynced within DIR_SYNC_MS, together with every other rename into it since. An acknowledged chunk
   * is on the other copies' servers too, so one server losing power in that moment loses no data.
   */
  renamedInto(dir: string): void {
    this.dirtyDirs.add(dir);
    this.dirSyncTimer ??= setTimeout(() => void this.syncDirs(), DIR_SYNC_MS);
  }

  private async syncDirs(): Promise<void> {
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs.clear();
    await Promise.all(dirs.map((dir) => syncDir(dir).catch(() => undefined)));
    this.dirSyncTimer = this.dirtyDirs.size > 0 ? setTimeout(() => void this.syncDirs(), DIR_SYNC_MS) : undefined;
  }

  /** Syncs what is pending (on shutdown). */
  async flushDirs(): Promise<void> {
    if (this.dirSyncTimer) clearTimeout(this.dirSyncTimer);
    this.dirSyncTimer = undefined;
    await this.syncDirs();
  }

  /** Runs `fn` while no other locked operation on the same chunk runs. */
  async withLock<T>(hash: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(hash) ?? Promise.resolve();
    const current = previous.then(fn, fn);
    const settled = current.catch(() => undefined);
    this.locks.set(hash, settled);
    try {
      return await current;
    } finally {
      if (this.locks.get(hash) === settled) this.locks.delete(hash);
    }
  }

  /** Called by a writer once its chunk is in place. */
  noteStored(hash: string, size: number, replaced: boolean, mtimeMs: number): void {
    if (!replaced) {
      this.count += 1;
      this.usedBytes += size;
    }
    this.verified.set(hash, `${size}:${mtimeMs}`);
    this.trimVerified();
  }

  /** Makes a chunk directory once; later chunks skip the call. */
  async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }

  /**
   * Reads a whole chunk and checks it against its name. A corrupt chunk is moved aside and reported as
   * HASH_MISMATCH instead of being served.
   */
  async readVerified(hash: string): Promise<Buffer> {
    const path = this.pathOf(hash);
    let read: Buffer;
    try {
      read = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DfsError('ENOENT', `chunk ${hash} is not here`);
      throw err;
    }
    // readFile's buffer is the chunk's alone: it is lent to a hashing worker, not copied.
    const { hash: actual, data } = await sha256Moving(read);
    if (actual !== hash) {
      await this.quarantine(hash);
      this.onCorrupt?.(hash);
      throw new DfsError('HASH_MISMATCH', `chunk ${hash} is corrupt on this server`, { hash });
    }
    const st = await stat(path).catch(() => undefined);
    if (st) this.verified.set(hash, `${st.size}:${st.mtimeMs}`);
    this.trimVerified();
    return data;
  }

  /**
   * A whole chunk for serving: checked against its hash unless it already hashed right since it last
   * changed on disk (the reader checks it again anyway; this keeps a hot chunk from being hashed twice).
   */
  async readForServing(hash: string): Promise<Buffer> {
    const path = this.pathOf(hash);
    const st = await stat(path).catch(() => undefined);
    if (st && this.verified.get(hash) === `${st.size}:${st.mtimeMs}`) {
      const data = await readFile(path);
      if (data.length === st.size) return data;
    }
    return this.readVerified(hash);
  }

  /**
   * A stream of part of a chunk. The chunk must have hashed right since it last changed on disk; if it
   * has not been checked yet, it is checked first.
   */
  async readRange(hash: string, start: number, end: number): Promise<ReadStream> {
    const path = this.pathOf(hash);
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new DfsError('ENOENT', `chunk ${hash} is not here`);
      throw err;
    });
    if (this.verified.get(hash) !== `${st.size}:${st.mtimeMs}`) await this.readVerified(hash);
    return createReadStream(path, { start, end: end - 1 });
  }

  /**
   * Deletes a chunk unless it was stored again after `unlessStoredAfterMs` (a delete racing a new upload
   * of the same bytes must not win). Returns whether a file was removed.
   */
  async delete(hash: string, unlessStoredAfterMs?: number): Promise<boolean> {
    return this.withLock(hash, () => this.deleteUnlocked(hash, unlessStoredAfterMs));
  }

  private async deleteUnlocked(hash: string, unlessStoredAfterMs?: number): Promise<boolean> {
    const existing = await this.info(hash);
    if (!existing) return false;
    if (unlessStoredAfterMs !== undefined && existing.mtimeMs > unlessStoredAfterMs) {
      throw new DfsError('CHUNK_REFRESHED', `chunk ${hash} was stored again after the delete was issued`);
    }
    try {
      await unlink(this.pathOf(hash));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    this.count -= 1;
    this.usedBytes -= existing.size;
    this.verified.delete(hash);
    return true;
  }

  /** Every chunk held. */
  async list(): Promise<ChunkInfo[]> {
    const out: ChunkInfo[] = [];
    for (const prefix of await readdir(this.chunksDir)) {
      const dir = join(this.chunksDir, prefix);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!HASH_PATTERN.test(name)) continue;
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (st?.isFile()) out.push({ hash: name, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
    return out;
  }

  private async quarantine(hash: string): Promise<void> {
    const existing = await this.info(hash);
    try {
      await rename(this.pathOf(hash), join(this.corruptDir, `${hash}.${Date.now()}`));
      if (existing) {
        this.count -= 1;
        this.usedBytes -= existing.size;
      }
    } catch {
      // already gone
    }
    this.verified.delete(hash);
  }

  private trimVerified(): void {
    if (this.verified.size <= VERIFIED_CACHE_ENTRIES) return;
    const oldest = this.verified.keys().next();
    if (!oldest.done) this.verified.delete(oldest.value);
  }
}

/** One chunk being written: bytes are hashed and written to a temp file, then fsynced and renamed. */
export class ChunkWriter {
  private readonly hasher = createHash('sha256');
  private written = 0;
  private done = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly store: ChunkStore,
    readonly hash: string,
    readonly size: number,
    private readonly tmpPath: string,
    private readonly finalPath: string,
    private readonly handle: FileHandle,
  ) {}

  /** Takes the next piece of the body; pieces go to disk in batches (one system call per MiB, not per 64 KiB). */
  async write(data: Buffer): Promise<void> {
    this.written += data.length;
    if (this.written > this.size) throw new DfsError('BAD_REQUEST', `body is longer than its content-length ${this.size}`);
    this.hasher.update(data);
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes >= WRITE_BATCH || this.pending.length >= MAX_PIECES) await this.flushPending();
  }

  private async flushPending(): Promise<void> {
    if (this.pendingBytes === 0) return;
    // One writev of the pieces as they came: no copy into one buffer, which would double the external
    // memory a chunk churns through and with it V8's major collections.
    let pieces = this.pending;
    let left = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    while (left > 0) {
      const { bytesWritten } = await this.handle.writev(pieces);
      left -= bytesWritten;
      if (left > 0) pieces = dropBytes(pieces, bytesWritten);
    }
  }

  /** Checks length and hash, makes the bytes durable and puts the chunk in place. */
  async commit(): Promise<void> {
    this.done = true;
    try {
      if (this.written !== this.size) throw new DfsError('BAD_REQUEST', `body has ${this.written} bytes, content-length said ${this.size}`);
      const actual = this.hasher.digest('hex');
      if (actual === this.hash) await this.flushPending();
      if (actual !== this.hash) throw new DfsError('HASH_MISMATCH', `body hashes to ${actual}, not ${this.hash}`, { hash: this.hash });
      await this.handle.sync();
      await this.store.withLock(this.hash, async () => {
        // Calls that do not depend on each other go to the thread pool together (a small chunk's PUT is
        // made of such round trips). The chunk keeps this file's mtime through the rename: remember it as
        // verified.
        const [{ mtimeMs }, existing] = await Promise.all([this.handle.stat(), this.store.info(this.hash), this.store.ensureDir(dirnameOf(this.finalPath))]);
        const existed = existing !== undefined;
        await Promise.all([rename(this.tmpPath, this.finalPath), this.handle.close()]);
        this.store.renamedInto(dirnameOf(this.finalPath));
        this.store.noteStored(this.hash, this.size, existed, mtimeMs);
      });
    } catch (err) {
      await this.cleanup();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await unlink(this.tmpPath).catch(() => undefined);
  }
}

/** The pieces without their first `count` bytes (after a short write). */
function dropBytes(pieces: readonly Buffer[], count: number): Buffer[] {
  const out: Buffer[] = [];
  for (const piece of pieces) {
    if (count >= piece.length) count -= piece.length;
    else {
      out.push(count > 0 ? piece.subarray(count) : piece);
      count = 0;
    }
  }
  return out;
}

function dirnameOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}

/** fsync a directory so a rename into it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
