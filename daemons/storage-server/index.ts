import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { announce, type Logger } from '../../common/log.js';
import { listen } from '../../protocol/route-table.js';
import { ChunkStore } from './chunk-store.js';
import { loadOrCreateServerId } from './identity.js';
import { NameServerLink } from './name-server-link.js';
import { storageRoutes } from './routes.js';
import { Scrubber } from './scrubber.js';

export interface StorageServerOptions {
  dataDir: string;
  nameServerUrl: string;
  secret: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Address to listen on. */
  host: string;
  /** URL the name server and clients reach this server at; defaults to http://host:port. */
  advertiseUrl?: string;
  /** Bytes this server may use; defaults to the whole disk. */
  capacity?: number;
  registerIntervalMs: number;
  maxChunkBytes: number;
  /** Bytes per second the background scrub reads; 0 turns it off. */
  scrubBytesPerSecond: number;
  log: Logger;
}

export const storageServerDefaults = {
  port: 7701,
  host: '127.0.0.1',
  /** Re-registering every few seconds lets a name server that lost its database find us again soon. */
  registerIntervalMs: 5_000,
  /** Well above the default 4 MiB chunk, so a cluster may choose larger chunks. */
  maxChunkBytes: 64 * 1024 * 1024,
  /** 16 MiB/s: a full disk is checked every day or two, without getting in the way of clients. */
  scrubBytesPerSecond: 16 * 1024 * 1024,
};

export interface RunningStorageServer {
  id: string;
  url: string;
  store: ChunkStore;
  close(): Promise<void>;
}

/** Starts a storage server: opens its data dir, listens, then registers with the name server. */
export async function startStorageServer(options: StorageServerOptions): Promise<RunningStorageServer> {
  await mkdir(options.dataDir, { recursive: true });
  const id = await loadOrCreateServerId(options.dataDir);
  const store = new ChunkStore(options.dataDir, options.capacity);
  await store.open();
  let url = options.advertiseUrl ?? '';
  const identity = { id, url: () => url };
  const link = new NameServerLink(options.nameServerUrl, options.secret, identity, store, options.registerIntervalMs, options.log);
  store.onCorrupt = (hash) => link.reportCorrupt(hash);
  const scrubber = new Scrubber(store, options.scrubBytesPerSecond, options.log);
  const { routes, app } = storageRoutes({ id, url: identity.url, secret: options.secret, store, link, log: options.log, maxChunkBytes: options.maxChunkBytes });
  const server = await listen(routes, app, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  if (!url) url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  announce(options.log, 'listening', { url, id, dataDir: options.dataDir, chunks: store.chunkCount });
  link.start();
  scrubber.start();
  return {
    id,
    url,
    store,
    async close() {
      link.stop();
      scrubber.stop();
      await store.flushDirs();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
