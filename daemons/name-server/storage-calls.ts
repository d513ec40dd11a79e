import type { Output } from '../../protocol/contract.js';
import { RouteClient } from '../../protocol/http-client.js';
import { storageApi, type StorageStatus, type StoreResult } from '../../protocol/storage-api.js';
import { CHUNK_TIMEOUT_MS } from '../../protocol/storage-client.js';
import { issueToken } from '../../protocol/token.js';

/** Lifetime of a token the name server gives a storage server for one chunk operation. */
const OP_TOKEN_TTL_MS = 5 * 60_000;

/** Calls the name server makes on storage servers, each with a token for that one operation. */
export class StorageCalls {
  constructor(private readonly secret: string) {}

  private client(url: string, timeoutMs: number): RouteClient {
    return new RouteClient(url, () => undefined, timeoutMs);
  }

  /** A write token for storing chunks, handed to clients (reported uploads) or to a replicating server. */
  writeToken(report: boolean): string {
    return issueToken(this.secret, 'write', 10 * 60_000, { report });
  }

  status(url: string, timeoutMs: number): Promise<StorageStatus> {
    // No retries: the registry counts misses itself, and a retried check would stretch every miss (and so
    // the time to declare a server dead) by the retry back-off.
    return this.client(url, timeoutMs).call(storageApi.status, {}, { retry: false });
  }

  dumpTree(url: string): Promise<Output<typeof storageApi.dumpTree>> {
    return this.client(url, 120_000).call(storageApi.dumpTree, {}, { token: issueToken(this.secret, 'admin', OP_TOKEN_TTL_MS) });
  }

  /** Asks `sourceUrl` to push chunk `hash` to `targetUrl`. */
  replicate(sourceUrl: string, hash: string, targetUrl: string): Promise<StoreResult> {
    // The source's own push to the target is limited to CHUNK_TIMEOUT_MS; this leaves it room to read the
    // chunk first. Not retried: the replicator picks the next target itself.
    return this.client(sourceUrl, CHUNK_TIMEOUT_MS + 10_000).call(
      storageApi.replicate,
      { hash, target: targetUrl, writeToken: this.writeToken(false) },
      { token: issueToken(this.secret, 'replicate', OP_TOKEN_TTL_MS, { hash }), retry: false },
    );
  }

  /** Has a server re-read its copy of a chunk and check the hash. */
  async verify(url: string, hash: string): Promise<boolean> {
    return (await this.client(url, 120_000).call(storageApi.verify, { hash }, { token: issueToken(this.secret, 'admin', OP_TOKEN_TTL_MS) })).ok;
  }

  /** Deletes a chunk unless the server stored it again after now. */
  deleteChunk(url: string, hash: string): Promise<{ deleted: boolean }> {
    return this.client(url, 15_000).call(storageApi.deleteChunk, {}, { params: { hash }, token: issueToken(this.secret, 'delete', OP_TOKEN_TTL_MS, { hash }) });
  }
}
