import { z } from 'zod';
import { route } from './contract.js';
import { Hash, ServerRef, StoredCopy, Uint } from './schemas.js';

/**
 * Storage-server routes. Chunk bytes travel raw (`PUT /file/:hash`, `GET /file/:hash`); everything else
 * is JSON. A chunk is named by its SHA-256 and nothing else reaches the disk.
 */

export const StorageStatus = z.object({
  id: z.string(),
  url: z.string(),
  capacity: Uint,
  free: Uint,
  used: Uint,
  chunks: Uint,
});
export type StorageStatus = z.infer<typeof StorageStatus>;

export const StoreResult = z.object({
  hash: Hash,
  size: Uint,
  /** Servers of the chain that now hold the chunk, this one first, each with its receipt. */
  stored: z.array(StoredCopy),
  /** Servers of the chain that failed, with why. */
  failed: z.array(z.object({ url: z.string(), code: z.string(), message: z.string() })),
});
export type StoreResult = z.infer<typeof StoreResult>;

/** Header naming the rest of an upload chain: each server stores and forwards to the next as bytes arrive. */
export const FORWARD_HEADER = 'x-dfs-forward';

export const storageApi = {
  status: route({ method: 'GET', path: '/status', input: z.object({}), output: StorageStatus, auth: null, idempotent: true }),

  /** Every chunk held, with size and when it was last stored (for restoration). */
  dumpTree: route({
    method: 'GET',
    path: '/dump_tree',
    input: z.object({}),
    output: z.object({ id: z.string(), chunks: z.array(z.object({ hash: Hash, size: Uint, mtimeMs: z.number() })) }),
    auth: ['admin'],
    idempotent: true,
  }),

  /** Course flow steps 5–6: push a held chunk to another storage server. */
  replicate: route({
    method: 'POST',
    path: '/replicate',
    input: z.object({ hash: Hash, target: z.url(), writeToken: z.string() }),
    output: StoreResult,
    auth: ['replicate'],
    idempotent: true,
  }),

  /** Re-reads a chunk from disk and checks its hash (a corrupt copy is moved aside). */
  verify: route({
    method: 'POST',
    path: '/verify',
    input: z.object({ hash: Hash }),
    output: z.object({ ok: z.boolean() }),
    auth: ['admin'],
    idempotent: true,
  }),

  deleteChunk: route({
    method: 'DELETE',
    path: '/file/:hash',
    input: z.object({}),
    output: z.object({ deleted: z.boolean() }),
    auth: ['delete'],
    idempotent: true,
  }),
};

export const chunkPath = (hash: string): string => `/file/${hash}`;
export { ServerRef };
