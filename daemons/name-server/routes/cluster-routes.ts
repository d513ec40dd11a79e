import type { RouteTable } from '../../../protocol/route-table.js';
import { nameApi, type ClusterStatus } from '../../../protocol/name-api.js';
import type { ChunkService } from '../chunk-service.js';
import type { MetaStore } from '../meta/store.js';
import type { Namespace } from '../namespace.js';
import type { StorageRegistry } from '../registry.js';
import type { StorageCalls } from '../storage-calls.js';

export interface ClusterRouteDeps {
  meta: MetaStore;
  namespace: Namespace;
  registry: StorageRegistry;
  chunks: ChunkService;
  calls: StorageCalls;
  replicas: number;
  chunkSize: number;
  inlineMax: number;
  activity: () => { copiesMade: number; copiesTrimmed: number; deletes: number };
}

/** Health, placement and the storage servers' side of the protocol. */
export function clusterRoutes(routes: RouteTable, deps: ClusterRouteDeps): void {
  const { meta, registry, chunks, calls } = deps;

  routes.serve(nameApi.status, async (): Promise<ClusterStatus> => {
    const [counts, replicaCounts] = await Promise.all([meta.read.counts(), meta.read.replicaCounts(registry.holderIds(), deps.replicas)]);
    const tree = deps.namespace.counts();
    const servers = registry.summary();
    const alive = servers.filter((s) => s.state === 'alive');
    return {
      ok: alive.length > 0,
      chunkSize: deps.chunkSize,
      inlineMax: deps.inlineMax,
      replicas: deps.replicas,
      files: tree.files,
      dirs: tree.dirs,
      chunks: counts.chunks,
      bytes: tree.bytes,
      underReplicated: replicaCounts.under,
      unavailable: replicaCounts.unavailable,
      overReplicated: replicaCounts.over,
      pendingDeletes: counts.pendingDeletes,
      activity: deps.activity(),
      storage: {
        alive: alive.length,
        suspect: servers.filter((s) => s.state === 'suspect').length,
        dead: servers.filter((s) => s.state === 'dead').length,
        capacity: alive.reduce((sum, s) => sum + s.capacity, 0),
        free: alive.reduce((sum, s) => sum + s.free, 0),
      },
      servers,
    };
  });

  routes.serve(nameApi.available, (input) => {
    const exclude = new Set((input.exclude ?? '').split(',').filter(Boolean));
    const count = input.count ?? deps.replicas;
    const servers = registry.pickTargets(count, input.size ?? deps.chunkSize, exclude, false).map((n) => ({ id: n.id, url: n.url }));
    return { token: calls.writeToken(true), servers, chunkSize: deps.chunkSize, replicas: deps.replicas };
  });

  routes.serve(nameApi.register, async (input) => ({ chunkSize: deps.chunkSize, known: await registry.register(input) }));

  routes.serve(nameApi.chunksStored, async (input) => {
    await chunks.stored(input.chunks);
    return {};
  });

  routes.serve(nameApi.chunksBad, async (input, { claims }) => ({ dropped: await chunks.badCopies(input.chunks, claims?.scope === 'storage') }));

  routes.serve(nameApi.chunksMissing, (input) => chunks.missing(input.hashes, input.locate));
}
