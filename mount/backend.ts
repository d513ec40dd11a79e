import type { DfsClient } from '../client/dfs-client.js';
import { Semaphore } from '../common/semaphore.js';
import type { Logger } from '../common/log.js';
import { DfsError } from '../protocol/errors.js';
import type { Input } from '../protocol/contract.js';
import { nameApi, type FileInfo } from '../protocol/name-api.js';
import type { Attr, ServerRef, StoredCopy } from '../protocol/schemas.js';
import { sha256Async } from '../common/sha256.js';
import type { ChunkCache } from './chunk-cache.js';
import type { FileBackend } from './open-file.js';

/** The cluster as open files see it: chunk bytes through the cache, uploads bounded, commits. */
export class MountBackend implements FileBackend {
  private readonly uploads: Semaphore;
  private relearning: Promise<void> | undefined;

  constructor(
    private readonly client: DfsClient,
    private readonly cache: ChunkCache,
    readonly chunkSize: number,
    private limit: number,
    uploadConcurrency: number,
    private readonly log: Logger,
  ) {
    this.uploads = new Semaphore(uploadConcurrency);
  }

  get inlineMax(): number {
    return this.limit;
  }

  inlineRefused(): void {
    // Until the name server says otherwise, small files go to storage servers (no refused commit each).
    this.limit = 0;
    this.relearning ??= this.client
      .layout({ fresh: true })
      .then(({ inlineMax }) => {
        this.limit = inlineMax;
        this.log.info({ inlineMax }, 'the name server keeps smaller files than before');
      })
      .catch(() => undefined)
      .finally(() => (this.relearning = undefined));
  }

  readChunk(hash: string, servers: readonly ServerRef[], path: string): Promise<Buffer> {
    return this.cache.fetch(hash, async () => {
      if (servers.length > 0) {
        try {
          return await this.client.chunks.read({ hash, servers: [...servers] });
        } catch (err) {
          this.log.warn({ hash, path, err: (err as Error).message }, 'replicas failed; asking the name server again');
        }
      }
      // Locations may have changed (a server died and repair moved the copies): ask again. A chunk the file
      // does not list (yet), or an open file that was unlinked: one this mount found already stored while
      // writing, asked for by its hash.
      const info = await this.client.info(path).catch(() => undefined);
      const location = info?.chunks.find((c) => c.hash === hash);
      if (location) return this.client.chunks.read(location);
      const held = (await this.locate([hash])).get(hash);
      if (!held) throw new DfsError('EIO', `${path}: chunk ${hash} is no longer part of the file`);
      return this.client.chunks.read({ hash, servers: held });
    });
  }

  prefetch(hash: string, servers: readonly ServerRef[], path: string): void {
    this.readChunk(hash, servers, path).catch(() => undefined);
  }

  hash(data: Buffer): Promise<string> {
    return sha256Async(data);
  }

  async locate(hashes: readonly string[]): Promise<Map<string, ServerRef[]>> {
    if (hashes.length === 0) return new Map();
    const answer = await this.client.ns.call(nameApi.chunksMissing, { hashes: [...hashes], locate: true });
    return new Map((answer.held ?? []).map((h) => [h.hash, h.servers]));
  }

  upload(hash: string, data: Buffer, options: { fanOut?: boolean } = {}): Promise<StoredCopy[]> {
    return this.client.chunks.upload(hash, data, options);
  }

  async uploadSlot(): Promise<() => void> {
    await this.uploads.acquire();
    return () => this.uploads.release();
  }

  remember(hash: string, data: Buffer): void {
    this.cache.put(hash, data);
  }

  commit(input: Input<typeof nameApi.commit>): Promise<Attr> {
    // A commit of a large file waits for the name server to copy chunks up to the quorum: allow for it.
    return this.client.ns.call(nameApi.commit, input, { timeoutMs: 300_000 });
  }

  append(input: Input<typeof nameApi.append>): Promise<Attr> {
    return this.client.ns.call(nameApi.append, input);
  }

  info(path: string): Promise<FileInfo> {
    return this.client.info(path);
  }
}
