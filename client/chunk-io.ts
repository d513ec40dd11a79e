import { DfsError } from '../protocol/errors.js';
import type { Attr, ChunkLocation, InlineChunk, Receipt, ServerRef, StoredCopy } from '../protocol/schemas.js';
import { getChunk, putChunk } from '../protocol/storage-client.js';
import type { RouteClient } from '../protocol/http-client.js';
import { keptBytes, nameApi } from '../protocol/name-api.js';

interface Placement {
  token: string;
  servers: ServerRef[];
  replicas: number;
  until: number;
}

/** Most servers a placement lists (the /available limit). */
const MAX_SERVERS = 16;

/**
 * Moving chunk bytes for a client: uploads down a replication chain chosen by the name server, reads
 * from any live replica with failover. Shared by the CLI and the mount.
 */
export class ChunkIO {
  private placement: Placement | undefined;
  private turn = 0;

  constructor(
    private readonly ns: RouteClient,
    private readonly readToken: () => string,
  ) {}

  /**
   * Every alive server, most free space first, with a write token. Reused for a few seconds, so a many-chunk
   * upload does not ask once per chunk.
   */
  private async servers(size: number, exclude: readonly string[]): Promise<Placement> {
    if (exclude.length === 0 && this.placement && this.placement.until > Date.now()) return this.placement;
    const reply = await this.ns.call(nameApi.available, { size, count: MAX_SERVERS, ...(exclude.length ? { exclude: exclude.join(',') } : {}) });
    const placement = { token: reply.token, servers: reply.servers, replicas: reply.replicas, until: Date.now() + 5_000 };
    if (exclude.length === 0) this.placement = placement;
    return placement;
  }

  /**
   * Stores one chunk on a chain of servers. Resolves once at least one server holds it; the commit brings
   * it up to the write quorum. Retries another chain when a server fails. `fanOut` sends the bytes to every
   * server of the chain at once instead: for a small file, one hop is faster than a chain of them, and
   * sending its bytes once per copy costs nothing worth counting.
   */
  async upload(hash: string, data: Buffer, options: { fanOut?: boolean } = {}): Promise<StoredCopy[]> {
    const exclude: string[] = [];
    let lastError: unknown;
    /** Servers that refused the chunk for want of space. */
    let full = 0;
    for (let attempt = 0; attempt < 4; attempt++) {
      let placement: Placement;
      try {
        placement = await this.servers(data.length, exclude);
      } catch (err) {
        // Every server tried was full and no other is left: the cluster is out of space (the name server,
        // whose view of free space lags the disks, still offered them).
        if (full > 0 && full === exclude.length && err instanceof DfsError && err.code === 'NO_STORAGE') throw new DfsError('ENOSPC', 'every storage server is full');
        throw err;
      }
      const { token, servers, replicas } = placement;
      if (servers.length === 0) throw new DfsError('NO_STORAGE');
      // A chain of `replicas` servers from a window that moves one server per chunk: copies spread evenly.
      const start = this.turn++ % servers.length;
      const chain = [...servers.slice(start), ...servers.slice(0, start)].slice(0, Math.max(1, replicas));
      // A chain is tried through its head (which reports how the rest did); a fan-out through every server.
      const heads = options.fanOut && chain.length > 1 ? chain : chain.slice(0, 1);
      const forward = heads.length === 1 ? chain.slice(1).map((s) => s.url) : [];
      const results = await Promise.allSettled(heads.map((head) => putChunk(head.url, hash, data, data.length, { token, forward })));
      const stored = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.stored : []));
      if (stored.length > 0) return stored;
      for (const [i, r] of results.entries()) {
        const err: unknown = r.status === 'rejected' ? r.reason : new DfsError('EIO', `${heads[i]!.url} stored no copy of chunk ${hash}`);
        lastError = err;
        if (err instanceof DfsError && (err.code === 'HASH_MISMATCH' || err.code === 'PAYLOAD_TOO_LARGE' || err.code === 'UNAUTHORIZED')) throw err;
        if (err instanceof DfsError && err.code === 'ENOSPC') full += 1;
        exclude.push(heads[i]!.id);
      }
      this.placement = undefined;
    }
    throw lastError instanceof DfsError ? lastError : new DfsError('EIO', `upload of chunk ${hash} failed`);
  }

  /**
   * Reads a chunk (or a range of it): the bytes the name server sent with it (a small file's), else from the
   * first replica that serves it whole and right.
   */
  async read(chunk: ChunkLocation | Pick<ChunkLocation, 'hash' | 'servers'>, range?: { start: number; end: number }): Promise<Buffer> {
    if ('data' in chunk && chunk.data !== undefined) {
      const data = keptBytes(chunk, chunk.data);
      return range ? data.subarray(range.start, range.end) : data;
    }
    let lastError: unknown = new DfsError('EIO', `chunk ${chunk.hash} has no live copy`);
    for (const server of chunk.servers) {
      try {
        return await getChunk(server.url, chunk.hash, { token: this.readToken(), ...(range ? { range } : {}) });
      } catch (err) {
        lastError = err;
        // Bytes that do not hash right: tell the name server, which has the server check its copy.
        if (err instanceof DfsError && err.code === 'HASH_MISMATCH') {
          this.ns.call(nameApi.chunksBad, { chunks: [{ hash: chunk.hash, server: server.id }] }).catch(() => undefined);
        }
      }
    }
    throw lastError instanceof DfsError ? new DfsError('EIO', lastError.message) : new DfsError('EIO', String(lastError));
  }
}

/** The receipts of the servers that stored a chunk, as a commit carries them. */
export function receiptsOf(hash: string, size: number, copies: readonly StoredCopy[]): Receipt[] {
  return copies.map((c) => ({ hash, size, server: c.id, receipt: c.receipt }));
}

/**
 * Commits a chunk list until the name server takes it: when it answers CHUNKS_MISSING (copies lost since the
 * upload, or bytes it would not keep because its limit was lowered), `upload` sends those chunks to storage
 * servers and the commit is sent again, at most `attempts` times in all. Bytes it would not keep are not
 * handed over again, and `inlineRefused` is told.
 */
export async function commitUploadingMissing(options: {
  commit: (inline: InlineChunk[]) => Promise<Attr>;
  inline: InlineChunk[];
  attempts: number;
  upload: (missing: Set<string>) => Promise<void>;
  inlineRefused: () => void;
}): Promise<Attr> {
  let inline = options.inline;
  for (let attempt = 1; ; attempt++) {
    try {
      return await options.commit(inline);
    } catch (err) {
      if (!(err instanceof DfsError) || err.code !== 'CHUNKS_MISSING' || attempt >= options.attempts) throw err;
      const missing = new Set((err.details?.missing as string[] | undefined) ?? []);
      if (inline.some((c) => missing.has(c.hash))) {
        inline = [];
        options.inlineRefused();
      }
      await options.upload(missing);
    }
  }
}
