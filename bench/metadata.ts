/**
 * Name-server metadata benchmark: creates, stats, renames and lists per second over HTTP, with N
 * concurrent clients, against a real name server process (no storage servers needed for metadata).
 * Prints one JSON line per figure. First, creates and unlinks in a folder of their own bring the name
 * server to a steady state (its code compiled, its SQLite WAL grown to full size), as a server that has
 * been running is; they are printed as `warm-up …`, the figures of a cold start.
 *
 *   node dist/bench/metadata.js [--clients 8] [--ops 4000] [--warm-up 4000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnDaemon } from '../common/daemon-process.js';
import { RouteClient } from '../protocol/http-client.js';
import { nameApi } from '../protocol/name-api.js';
import { TokenMinter } from '../protocol/token.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '8' },
    ops: { type: 'string', default: '4000' },
    'warm-up': { type: 'string', default: '4000' },
    sync: { type: 'string', default: 'full' },
    /** A folder for a CPU profile of the name server (open it in Chrome's DevTools or speedscope). */
    'cpu-prof': { type: 'string' },
  },
});
const clients = Number(values.clients);
const opsPerPhase = Number(values.ops);

async function phase(name: string, total: number, run: (client: RouteClient, i: number) => Promise<unknown>, pool: RouteClient[]): Promise<void> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    pool.map(async (client) => {
      while (next < total) {
        const i = next++;
        await run(client, i);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ bench: 'metadata', op: name, clients: pool.length, ops: total, seconds: Number(seconds.toFixed(3)), opsPerSec: Math.round(total / seconds) }));
}

/** Creates and unlinks in a folder of their own, before the figures; printed as `warm-up …` (a cold start). */
async function warmUp(count: number, pool: RouteClient[]): Promise<void> {
  if (count <= 0) return;
  await pool[0]!.call(nameApi.mkdir, { path: '/warm' });
  await phase('warm-up create', count, (client, i) => client.call(nameApi.create, { path: `/warm/w${i}` }), pool);
  await phase('warm-up unlink', count, (client, i) => client.call(nameApi.unlink, { path: `/warm/w${i}` }), pool);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-bench-meta-'));
  const secret = randomBytes(32).toString('hex');
  const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  const ns = await spawnDaemon({ args: ['name-server', '--db', join(dir, 'meta.db'), '--port', '0', '--sync', values.sync!], env: { DFS_SECRET: secret, DFS_LOG_LEVEL: 'warn' }, nodeArgs });
  // Stopped from outside (npm run bench's Ctrl-C or SIGTERM): the name server and its folder go too.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void ns.stop().finally(() => rm(dir, { recursive: true, force: true }).finally(() => process.exit(130))));
  }
  try {
    const minter = new TokenMinter(secret, 'client');
    const pool = Array.from({ length: clients }, () => new RouteClient(ns.url, () => minter.get()));
    await pool[0]!.call(nameApi.mkdir, { path: '/d' });
    for (let c = 0; c < 50; c++) await pool[0]!.call(nameApi.mkdir, { path: `/d/${c}` });
    const pathOf = (i: number): string => `/d/${i % 50}/f${i}`;
    await warmUp(Number(values['warm-up']), pool);
    await phase('create', opsPerPhase, (client, i) => client.call(nameApi.create, { path: pathOf(i) }), pool);
    await phase('stat', opsPerPhase, (client, i) => client.call(nameApi.stat, { path: pathOf(i) }), pool);
    await phase('rename', opsPerPhase, (client, i) => client.call(nameApi.rename, { from: pathOf(i), to: `${pathOf(i)}.r` }), pool);
    await phase('list', 2000, (client, i) => client.call(nameApi.list, { path: `/d/${i % 50}` }), pool);
    await phase('unlink', opsPerPhase, (client, i) => client.call(nameApi.unlink, { path: `${pathOf(i)}.r` }), pool);
  } finally {
    await ns.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
