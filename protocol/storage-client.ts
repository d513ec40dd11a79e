import { request as httpRequest } from 'node:http';
import { sha256Moving } from '../common/sha256.js';
import { DfsError } from './errors.js';
import { errorFromBody, httpExchange, keepAliveAgent, toDfsError } from './http-client.js';
import { chunkPath, FORWARD_HEADER, StoreResult } from './storage-api.js';

/** Chunk bytes to and from storage servers. JSON storage routes go through RouteClient instead. */

/**
 * Time allowed to move one chunk (4 MiB by default, a fraction of a second on a LAN) even on a slow, loaded
 * machine. It is also how long a writer waits on a server that dropped off the network before it tries
 * another, so it is no longer than that needs.
 */
export const CHUNK_TIMEOUT_MS = 20_000;

export interface PutChunkOptions {
  token: string;
  /** The rest of the chain: the server stores and forwards to these, in order. */
  forward?: readonly string[];
  timeoutMs?: number;
}

/** Stores a chunk on `serverUrl` (and down its chain); resolves with who holds it now. */
export async function putChunk(serverUrl: string, hash: string, body: Buffer, size: number, options: PutChunkOptions): Promise<StoreResult> {
  const url = new URL(chunkPath(hash), serverUrl).toString();
  // No retry here: the caller tries another chain, which beats waiting on a server that just failed.
  const response = await httpExchange(url, {
    method: 'PUT',
    body,
    timeoutMs: options.timeoutMs ?? CHUNK_TIMEOUT_MS,
    retry: false,
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      ...(options.forward?.length ? { [FORWARD_HEADER]: options.forward.join(',') } : {}),
    },
  });
  try {
    return StoreResult.parse(JSON.parse(response.body.toString('utf8')));
  } catch {
    throw new DfsError('EIO', `PUT ${url}: malformed reply`);
  }
}

export interface GetChunkOptions {
  token: string;
  /** Byte range within the chunk, end exclusive. The whole chunk is verified by hash; a range cannot be. */
  range?: { start: number; end: number };
  timeoutMs?: number;
}

/** Fetches a chunk (or part of one). A whole chunk is checked against its hash: corrupt bytes are an EIO. */
export async function getChunk(serverUrl: string, hash: string, options: GetChunkOptions): Promise<Buffer> {
  const url = new URL(chunkPath(hash), serverUrl).toString();
  // No retry here: the caller fails over to the next replica at once.
  const { body } = await httpExchange(url, {
    method: 'GET',
    timeoutMs: options.timeoutMs ?? CHUNK_TIMEOUT_MS,
    retry: false,
    headers: {
      authorization: `Bearer ${options.token}`,
      ...(options.range ? { range: `bytes=${options.range.start}-${options.range.end - 1}` } : {}),
    },
  });
  if (options.range) return body;
  // The body owns its memory: it is lent to a hashing worker (off the main thread), not copied.
  const { hash: actual, data } = await sha256Moving(body);
  if (actual !== hash) throw new DfsError('HASH_MISMATCH', `${url}: served bytes do not match the chunk's hash`, { hash, url: serverUrl });
  return data;
}

/** Header a chain hop sets on the request it forwards, so only the head of the chain reports the chunk. */
export const UPSTREAM_HEADER = 'x-dfs-upstream';

/**
 * An upload whose body is written piece by piece as it arrives from upstream (chain replication: a storage
 * server stores and forwards at once). Never throws from write(): a failed downstream is reported by end().
 */
export interface StreamingUpload {
  write(data: Buffer): Promise<void>;
  end(): Promise<StoreResult>;
  abort(): void;
}

export function openChunkUpload(
  serverUrl: string,
  hash: string,
  size: number,
  options: PutChunkOptions & { upstreamId: string },
): StreamingUpload {
  const url = new URL(chunkPath(hash), serverUrl);
  let failure: DfsError | undefined;
  const request = httpRequest(url, {
    method: 'PUT',
    agent: keepAliveAgent,
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      [UPSTREAM_HEADER]: options.upstreamId,
      ...(options.forward?.length ? { [FORWARD_HEADER]: options.forward.join(',') } : {}),
    },
    timeout: options.timeoutMs ?? CHUNK_TIMEOUT_MS,
  });
  const response = new Promise<StoreResult>((resolve, reject) => {
    request.on('timeout', () => request.destroy(new DfsError('ETIMEDOUT', `PUT ${url}: timed out`)));
    request.on('error', (err) => reject(toDfsError(err, `PUT ${url}`)));
    request.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('error', (err) => reject(toDfsError(err, `PUT ${url}`)));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        try {
          if ((res.statusCode ?? 500) >= 400) reject(errorFromBody(text, res.statusCode ?? 500, `PUT ${url}`));
          else resolve(StoreResult.parse(JSON.parse(text)));
        } catch {
          reject(new DfsError('EIO', `PUT ${url}: HTTP ${res.statusCode} with a malformed body`));
        }
      });
    });
  });
  response.catch((err: DfsError) => {
    failure = err;
  });
  return {
    async write(data: Buffer): Promise<void> {
      if (failure || request.destroyed) return;
      if (!request.write(data)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            request.off('drain', done);
            request.off('close', done);
            resolve();
          };
          request.on('drain', done);
          request.on('close', done);
        });
      }
    },
    end(): Promise<StoreResult> {
      if (!request.destroyed) request.end();
      return response;
    },
    abort(): void {
      request.destroy(new DfsError('UPSTREAM', 'upload aborted'));
    },
  };
}
