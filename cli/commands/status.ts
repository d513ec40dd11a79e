import { nameApi } from '../../protocol/name-api.js';
import { defineCommand } from '../command.js';
import { formatBytes, table } from '../output.js';

export const status = defineCommand({
  command: 'status',
  describe: 'cluster health: storage servers alive and dead, capacity, files, replication',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
  run: async (args, ctx) => {
    const s = await ctx.client.ns.call(nameApi.status, {});
    if (args.json) {
      process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
      return;
    }
    const lines = [
      `name server:       ${ctx.client.ns.baseUrl} (${s.ok ? 'ok' : 'NO STORAGE ALIVE'})`,
      `storage servers:   ${s.storage.alive} alive, ${s.storage.suspect} suspect, ${s.storage.dead} dead`,
      `capacity:          ${formatBytes(s.storage.free)} free of ${formatBytes(s.storage.capacity)}`,
      `files:             ${s.files} files, ${s.dirs} directories, ${formatBytes(s.bytes)}`,
      `chunks:            ${s.chunks} (replicas wanted: ${s.replicas}, chunk size ${formatBytes(s.chunkSize)})`,
      `under-replicated:  ${s.underReplicated}`,
      `unavailable:       ${s.unavailable}`,
      `over-replicated:   ${s.overReplicated}`,
      `pending deletes:   ${s.pendingDeletes}`,
      `since start:       ${s.activity.copiesMade} copies made by repair, ${s.activity.copiesTrimmed} extra copies trimmed, ${s.activity.deletes} copies deleted`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (s.servers.length > 0) {
      const rows = [['id', 'url', 'state', 'chunks', 'free', 'capacity']];
      for (const server of s.servers) rows.push([server.id, server.url, server.state, String(server.chunks), formatBytes(server.free), formatBytes(server.capacity)]);
      process.stdout.write(`\n${table(rows, new Set([3]))}\n`);
    }
  },
  inShell: true,
});
