import express, { type NextFunction, type Request, type Response } from 'express';
import { DfsError } from '../../protocol/errors.js';
import { errorHandler, notFound } from '../../protocol/express.js';
import { RouteTable } from '../../protocol/route-table.js';
import { HASH_PATTERN } from '../../protocol/schemas.js';
import { FORWARD_HEADER, storageApi, type StoreResult } from '../../protocol/storage-api.js';
import { openChunkUpload, putChunk, UPSTREAM_HEADER } from '../../protocol/storage-client.js';
import { bearer, signReceipt, verifyToken } from '../../protocol/token.js';
import type { Logger } from '../../common/log.js';
import type { ChunkStore } from './chunk-store.js';
import type { NameServerLink } from './name-server-link.js';

export interface StorageRouteDeps {
  id: string;
  url: () => string;
  secret: string;
  store: ChunkStore;
  link: NameServerLink;
  log: Logger;
  /** Largest chunk accepted. */
  maxChunkBytes: number;
}

/** Longest upload chain a request may name. */
const MAX_CHAIN = 8;
/** A delete issued this long after a re-store still spares the chunk: allows for clock skew between hosts. */
const CLOCK_SKEW_MS = 2_000;

function hashParam(params: Record<string, unknown>): string {
  const hash = params.hash;
  if (typeof hash !== 'string' || !HASH_PATTERN.test(hash)) throw new DfsError('BAD_REQUEST', 'a chunk name is 64 lowercase hex digits');
  return hash;
}

function parseForward(header: string | string[] | undefined): string[] {
  if (!header) return [];
  const urls = String(header).split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length > MAX_CHAIN) throw new DfsError('BAD_REQUEST', `an upload chain has at most ${MAX_CHAIN} servers`);
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new DfsError('BAD_REQUEST', `bad forward URL ${url}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DfsError('BAD_REQUEST', `bad forward URL ${url}`);
  }
  return urls;
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) throw new DfsError('BAD_REQUEST', `unsupported range ${header}`);
  const [, from, to] = match as unknown as [string, string, string];
  let start: number;
  let end: number;
  if (from === '') {
    start = Math.max(0, size - Number(to));
    end = size;
  } else {
    start = Number(from);
    end = to === '' ? size : Math.min(size, Number(to) + 1);
  }
  if (start >= size || start >= end) throw new DfsError('EINVAL', `range ${header} is outside the chunk's ${size} bytes`);
  return { start, end };
}

/** The storage server's JSON routes, and the express app of its chunk streams. */
export function storageRoutes(deps: StorageRouteDeps): { routes: RouteTable; app: express.Express } {
  const { id, secret, store, link, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Small JSON bodies only: chunk bytes go through the streaming routes below.
  const routes = new RouteTable(secret, log, 4 * 1024);

  routes.serve(storageApi.status, async () => {
    const space = await store.space();
    return { id, url: deps.url(), capacity: space.capacity, free: space.free, used: store.used, chunks: store.chunkCount };
  });

  routes.serve(storageApi.dumpTree, async () => ({ id, chunks: await store.list() }));

  // Store a chunk, and forward it down the chain as the bytes arrive (pipelined chain replication).
  app.put('/file/:hash', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const claims = verifyToken(secret, bearer(req.headers.authorization), ['write']);
      const hash = hashParam(req.params);
      const size = Number(req.headers['content-length']);
      if (!Number.isSafeInteger(size) || size < 0) throw new DfsError('BAD_REQUEST', 'content-length is required');
      if (size > deps.maxChunkBytes) throw new DfsError('PAYLOAD_TOO_LARGE', `a chunk is at most ${deps.maxChunkBytes} bytes`);
      const forward = parseForward(req.headers[FORWARD_HEADER]);
      const token = bearer(req.headers.authorization) as string;
      const writer = await store.beginWrite(hash, size);
      const [next0, ...rest] = forward;
      const downstream = next0 ? openChunkUpload(next0, hash, size, { token, forward: rest, upstreamId: id }) : undefined;
      let downstreamDone: Promise<StoreResult> | undefined;
      try {
        for await (const piece of req as AsyncIterable<Buffer>) {
          await writer.write(piece);
          await downstream?.write(piece);
        }
        // The next server finishes its copy while this one syncs its own.
        downstreamDone = downstream?.end();
        downstreamDone?.catch(() => undefined);
        await writer.commit();
      } catch (err) {
        await writer.abort();
        downstream?.abort();
        throw err;
      }
      log.debug({ hash, size, upstream: req.headers[UPSTREAM_HEADER] }, 'chunk stored');
      const result: StoreResult = { hash, size, stored: [{ id, url: deps.url(), receipt: signReceipt(secret, hash, size, id) }], failed: [] };
      if (downstreamDone && next0) {
        try {
          const down = await downstreamDone;
          result.stored.push(...down.stored);
          result.failed.push(...down.failed);
        } catch (err) {
          const error = err instanceof DfsError ? err : new DfsError('UPSTREAM', String(err));
          result.failed.push({ url: next0, code: error.code, message: error.message });
          log.warn({ hash, next: next0, err: error.message }, 'chain forward failed');
        }
      }
      // Course flow step 4, off the write path: the writer's commit carries the receipts, so the name server
      // counts these copies at once; the report (batched, each server of the chain its own copy) covers
      // writers that never commit.
      if (claims.report) link.reportStored(hash, size);
      res.json(result);
    } catch (err) {
      // The body may be unread: do not reuse this connection.
      res.setHeader('connection', 'close');
      next(diskFull(err));
    }
  });

  app.get('/file/:hash', async (req: Request, res: Response, next: NextFunction) => {
    try {
      verifyToken(secret, bearer(req.headers.authorization), ['client', 'replicate', 'admin']);
      const hash = hashParam(req.params);
      const info = await store.info(hash);
      if (!info) throw new DfsError('ENOENT', `chunk ${hash} is not here`);
      const range = parseRange(req.headers.range, info.size);
      res.setHeader('content-type', 'application/octet-stream');
      if (!range) {
        const data = await store.readForServing(hash);
        res.setHeader('content-length', String(data.length));
        res.end(data);
        return;
      }
      const stream = await store.readRange(hash, range.start, range.end);
      res.status(206);
      res.setHeader('content-range', `bytes ${range.start}-${range.end - 1}/${info.size}`);
      res.setHeader('content-length', String(range.end - range.start));
      stream.on('error', (err) => res.destroy(err));
      stream.pipe(res);
    } catch (err) {
      next(err);
    }
  });

  routes.serve(storageApi.deleteChunk, async (_input, { params, claims }) => {
    const hash = hashParam(params);
    if (claims?.hash !== hash) throw new DfsError('FORBIDDEN', 'this delete token is for another chunk');
    const deleted = await store.delete(hash, claims.iat - CLOCK_SKEW_MS);
    await link.forgetReports(hash);
    log.debug({ hash, deleted }, 'chunk delete');
    return { deleted };
  });

  routes.serve(storageApi.verify, async (input) => {
    try {
      await store.readVerified(input.hash);
      return { ok: true };
    } catch (err) {
      if (err instanceof DfsError && (err.code === 'HASH_MISMATCH' || err.code === 'ENOENT')) return { ok: false };
      throw err;
    }
  });

  routes.serve(
    storageApi.replicate,
    async (input, { claims }) => {
      if (claims?.hash !== input.hash) throw new DfsError('FORBIDDEN', 'this replicate token is for another chunk');
      const data = await store.readVerified(input.hash);
      return putChunk(input.target, input.hash, data, data.length, { token: input.writeToken });
    },
    { bodyLimit: 64 * 1024 },
  );

  app.use(notFound);
  app.use(errorHandler(log));
  return { routes, app };
}

/**
 * The disk ran out of space (or quota) under a write that the free-space check let through (it samples
 * statfs at most once a second): ENOSPC to the writer, who tries another server, not an internal error.
 */
function diskFull(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? new DfsError('ENOSPC', `no space left on this server's disk: ${(err as Error).message}`) : err;
}
