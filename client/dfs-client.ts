import { randomUUID } from 'node:crypto';
import { DfsError } from '../protocol/errors.js';
import { RouteClient } from '../protocol/http-client.js';
import { keptByNameServer, nameApi, type FileInfo } from '../protocol/name-api.js';
import type { Attr, ChunkRef, InlineChunk, Receipt } from '../protocol/schemas.js';
import { sha256 } from '../common/sha256.js';
import { TokenMinter } from '../protocol/token.js';
import { ChunkIO, commitUploadingMissing, receiptsOf } from './chunk-io.js';
import { forEachLimited } from '../common/limit.js';

export interface ClientOptions {
  nameServerUrl: string;
  secret: string;
  /** Chunks uploaded or downloaded at once. */
  parallel?: number;
}

/** Random access to the bytes being written, so a chunk can be read again if the commit asks for it. */
export interface ByteSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export interface TransferProgress {
  (bytesDone: number, bytesTotal: number): void;
}

export interface ClusterLayout {
  chunkSize: number;
  /** Files up to this many bytes are kept by the name server (0: none). */
  inlineMax: number;
}

/** How often a commit is retried after uploading chunks it said were missing. */
const COMMIT_ATTEMPTS = 4;

/** A client of one cluster: namespace calls, and whole-file writes and reads (CLI, tests, tools). */
export class DfsClient {
  readonly ns: RouteClient;
  readonly chunks: ChunkIO;
  private readonly parallel: number;
  private layoutCache: ClusterLayout | undefined;

  constructor(options: ClientOptions) {
    const minter = new TokenMinter(options.secret, 'client', undefined, { client: randomUUID() });
    this.ns = new RouteClient(options.nameServerUrl, () => minter.get());
    this.chunks = new ChunkIO(this.ns, () => minter.get());
    this.parallel = options.parallel ?? 4;
  }

  /**
   * How the cluster cuts files: its chunk size, and the largest file the name server keeps itself. Asked
   * once; `fresh` asks again (the name server refused bytes to keep: its limit was lowered since).
   */
  async layout(options: { fresh?: boolean } = {}): Promise<ClusterLayout> {
    if (!this.layoutCache || options.fresh) {
      const { chunkSize, inlineMax } = await this.ns.call(nameApi.status, {});
      this.layoutCache = { chunkSize, inlineMax };
    }
    return this.layoutCache;
  }

  async chunkSize(): Promise<number> {
    return (await this.layout()).chunkSize;
  }

  stat(path: string): Promise<Attr> {
    return this.ns.call(nameApi.stat, { path });
  }

  info(path: string): Promise<FileInfo> {
    return this.ns.call(nameApi.info, { path });
  }

  /**
   * Writes a whole file: hashes it chunk by chunk, uploads only the chunks the cluster lacks, then commits
   * the chunk list. Resolves once the commit is acknowledged (new chunks held by the write quorum).
   */
  async writeFile(path: string, source: ByteSource, options: { mode?: number; onProgress?: TransferProgress } = {}): Promise<Attr> {
    const { chunkSize, inlineMax } = await this.layout();
    const create = { path, exclusive: false, ...(options.mode !== undefined ? { mode: options.mode } : {}) };
    if (keptByNameServer(source.size, inlineMax)) {
      // A small file: its bytes go to the name server with the commit, no storage server involved (unless
      // the name server's limit was lowered since: then the commit asks for an upload, as for any chunk).
      const data = await source.read(0, source.size);
      const hash = sha256(data);
      await this.ns.call(nameApi.create, create);
      const attr = await this.commitWithRetry(path, [{ hash, size: data.length }], source, chunkSize, [], [{ hash, data: data.toString('base64') }]);
      options.onProgress?.(data.length, source.size);
      return attr;
    }
    const offsets: number[] = [];
    for (let offset = 0; offset < source.size; offset += chunkSize) offsets.push(offset);
    const refs: ChunkRef[] = new Array(offsets.length);
    const receipts: Receipt[] = [];
    let done = 0;
    // Hash and upload in windows, asking the name server once per window which chunks it lacks.
    const window = this.parallel * 4;
    for (let i = 0; i < offsets.length; i += window) {
      const batch = offsets.slice(i, i + window).map((offset, j) => ({ index: i + j, offset }));
      const pieces = new Map<number, Buffer>();
      await forEachLimited(batch, this.parallel, async ({ index, offset }) => {
        const data = await source.read(offset, Math.min(chunkSize, source.size - offset));
        refs[index] = { hash: sha256(data), size: data.length };
        pieces.set(index, data);
      });
      const { missing } = await this.ns.call(nameApi.chunksMissing, { hashes: batch.map(({ index }) => refs[index]!.hash) });
      const wanted = new Set(missing);
      await forEachLimited(batch, this.parallel, async ({ index }) => {
        const ref = refs[index]!;
        if (wanted.delete(ref.hash)) receipts.push(...receiptsOf(ref.hash, ref.size, await this.chunks.upload(ref.hash, pieces.get(index)!)));
        done += ref.size;
        options.onProgress?.(done, source.size);
      });
    }
    // Data first, the name last: a failed upload leaves no empty file behind.
    await this.ns.call(nameApi.create, create);
    return this.commitWithRetry(path, refs, source, chunkSize, receipts);
  }

  private commitWithRetry(path: string, refs: ChunkRef[], source: ByteSource, chunkSize: number, receipts: Receipt[], inline: InlineChunk[] = []): Promise<Attr> {
    return commitUploadingMissing({
      commit: (kept) => this.ns.call(nameApi.commit, { path, chunks: refs, size: source.size, receipts, ...(kept.length > 0 ? { inline: kept } : {}) }),
      inline,
      attempts: COMMIT_ATTEMPTS,
      // The name server's limit for the bytes it keeps was lowered: learn it again.
      inlineRefused: () => (this.layoutCache = undefined),
      upload: (missing) =>
        forEachLimited(
          refs.map((ref, index) => ({ ref, index })).filter(({ ref }) => missing.delete(ref.hash)),
          this.parallel,
          async ({ ref, index }) => {
            const data = await source.read(index * chunkSize, ref.size);
            if (sha256(data) !== ref.hash) throw new DfsError('EIO', `${path}: the source changed while it was being written`);
            receipts.push(...receiptsOf(ref.hash, ref.size, await this.chunks.upload(ref.hash, data)));
          },
        ),
    });
  }

  /** Reads a whole file chunk by chunk, in order, fetching a few chunks ahead. */
  async *readFile(path: string, options: { onProgress?: TransferProgress } = {}): AsyncGenerator<Buffer> {
    const info = await this.info(path);
    if (info.attr.type !== 'file') throw new DfsError(info.attr.type === 'dir' ? 'EISDIR' : 'EINVAL', `${path} is not a regular file`);
    const ahead: Promise<Buffer>[] = [];
    let next = 0;
    let done = 0;
    // The version read is the one opened: its chunk list is fixed for the whole read.
    const fetch = (index: number): Promise<Buffer> =>
      this.chunks.read(info.chunks[index]!).catch(async () => {
        // Locations may have moved (a server died, repair ran): ask again once, for the same chunk. If a new
        // version replaced it meanwhile, its old chunks may be gone: fail rather than mix two versions.
        const fresh = (await this.info(path)).chunks[index];
        if (!fresh || fresh.hash !== info.chunks[index]!.hash) throw new DfsError('EIO', `${path} was replaced while it was being read`);
        return this.chunks.read(fresh);
      });
    while (next < info.chunks.length || ahead.length > 0) {
      while (next < info.chunks.length && ahead.length < this.parallel) {
        const pending = fetch(next++);
        pending.catch(() => undefined);
        ahead.push(pending);
      }
      const data = await ahead.shift()!;
      done += data.length;
      options.onProgress?.(done, info.attr.size);
      yield data;
    }
  }
}
