import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import express from 'express';
import { announce, type Logger } from '../../common/log.js';
import { errorHandler, notFound } from '../../protocol/express.js';
import { listen, RouteTable } from '../../protocol/route-table.js';
import { fileTypes, MAX_INLINE_BYTES } from '../../protocol/schemas.js';
import { nowNs } from '../../protocol/time.js';
import { ChunkGuards } from './chunk-guards.js';
import { ChunkService } from './chunk-service.js';
import { Collector } from './collector.js';
import { SqliteMetaStore, type SyncMode } from './meta/sqlite.js';
import { ROOT_INO, type MetaStore } from './meta/store.js';
import { Namespace } from './namespace.js';
import { StorageRegistry } from './registry.js';
import { Replicator } from './replicator.js';
import { Restorer } from './restorer.js';
import { clusterRoutes } from './routes/cluster-routes.js';
import { fsRoutes } from './routes/fs-routes.js';
import { StorageCalls } from './storage-calls.js';

export interface NameServerOptions {
  dbFile: string;
  secret: string;
  port: number;
  host: string;
  replicas: number;
  /** Chunk size of a new database; an existing one keeps its own. */
  chunkSize: number;
  healthIntervalMs: number;
  healthMisses: number;
  /** How long a chunk that lost its last reference waits before deletion. */
  deleteGraceMs: number;
  /** How long an uploaded, never-committed chunk is kept. */
  uploadGraceMs: number;
  /** 'full': every acknowledged change survives power loss; 'normal': survives a crash of the process. */
  synchronous: SyncMode;
  /** Files up to this many bytes are kept in the database rather than on storage servers (0: none). */
  inlineMax: number;
  log: Logger;
}

/** Every default once, with its reason. */
export const nameServerDefaults = {
  port: 7700,
  host: '127.0.0.1',
  /** Two copies survive any one storage server's death. */
  replicas: 2,
  /** 4 MiB: large enough that per-chunk overhead is small, small enough that a one-line append re-uploads little. */
  chunkSize: 4 * 1024 * 1024,
  healthIntervalMs: 1_000,
  /** Three missed checks: a restart or a GC pause does not trigger a replication storm. */
  healthMisses: 3,
  /** Covers a racing commit that found the chunk present a moment before its last reference went. */
  deleteGraceMs: 5_000,
  /** An upload of a very large file may take this long between its first chunk and its commit. */
  uploadGraceMs: 60 * 60_000,
  synchronous: 'full' as SyncMode,
  /**
   * 64 KiB: most files of a source tree, a mail folder or a home directory. Kept with the file's metadata,
   * such a file is written in one commit and read in the open that fetches its chunk list, instead of a
   * round trip to each of two storage servers more; the database grows by their bytes.
   */
  inlineMax: 64 * 1024,
};

export interface RunningNameServer {
  url: string;
  meta: MetaStore;
  close(): Promise<void>;
}

export async function startNameServer(options: NameServerOptions): Promise<RunningNameServer> {
  const log = options.log;
  await mkdir(dirname(options.dbFile), { recursive: true });
  const meta = await SqliteMetaStore.open({
    file: options.dbFile,
    synchronous: options.synchronous,
    deleteGraceMs: options.deleteGraceMs,
    initialize: async (tx) => {
      const now = nowNs();
      const root = { ino: ROOT_INO, mode: fileTypes.dir | 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, size: 0, nlink: 2, rdev: 0, atime: now, mtime: now, ctime: now, version: 0, target: null };
      await tx.apply([{ kind: 'insertInode', inode: root }]);
      await tx.setMeta('chunk_size', String(options.chunkSize));
      await tx.setMeta('cluster_id', randomBytes(8).toString('hex'));
    },
  });
  const chunkSize = Number(await meta.read.getMeta('chunk_size'));
  const inlineMax = Math.min(options.inlineMax, chunkSize, MAX_INLINE_BYTES);
  const calls = new StorageCalls(options.secret);
  const restorer = new Restorer(meta, calls, options.uploadGraceMs, log);
  let replicator: Replicator | undefined;
  let collector: Collector | undefined;
  const registry = new StorageRegistry(
    meta,
    calls,
    { healthIntervalMs: options.healthIntervalMs, healthMisses: options.healthMisses },
    {
      onDead: () => replicator?.kick(),
      onAlive: () => {
        replicator?.kick();
        collector?.kick();
      },
      restore: (node) => restorer.restore(node),
    },
    log,
  );
  await registry.load();
  replicator = new Replicator(meta, registry, calls, { replicas: options.replicas, concurrency: 4, intervalMs: options.healthIntervalMs }, log);
  const namespace = await Namespace.load(meta, { chunkSize }, log);
  const guards = new ChunkGuards();
  const chunks = new ChunkService(meta, namespace, registry, replicator, { replicas: options.replicas, chunkSize, uploadGraceMs: options.uploadGraceMs, secret: options.secret, inlineMax }, guards, calls);
  collector = new Collector(meta, registry, calls, { intervalMs: Math.min(options.healthIntervalMs, options.deleteGraceMs), concurrency: 8 }, log, guards);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // A commit of a very large file lists many chunks.
  const routes = new RouteTable(options.secret, log, 64 * 1024 * 1024);
  fsRoutes(routes, namespace, chunks);
  clusterRoutes(routes, {
    meta,
    namespace,
    registry,
    chunks,
    calls,
    replicas: options.replicas,
    chunkSize,
    inlineMax,
    activity: () => ({ copiesMade: replicator?.copiesMade ?? 0, copiesTrimmed: replicator?.copiesTrimmed ?? 0, deletes: collector?.deletesDone ?? 0 }),
  });
  app.use(notFound);
  app.use(errorHandler(log));
  const server = await listen(routes, app, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  registry.start();
  replicator.start();
  collector.start();
  announce(log, 'listening', { url, db: options.dbFile, replicas: options.replicas, chunkSize, inlineMax });
  return {
    url,
    meta,
    async close() {
      registry.stop();
      replicator?.stop();
      collector?.stop();
      namespace.changes.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await meta.close();
    },
  };
}
