import { nameApi } from '../../protocol/name-api.js';
import { defineCommand } from '../command.js';
import { formatBytes, formatMode, formatTime, table } from '../output.js';

export const info = defineCommand({
  command: 'info <path>',
  describe: 'show a file: size, version, its chunks and the servers holding each, replication state',
  builder: (y) =>
    y
      .positional('path', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
      .example('dfs info /media/video.mp4', 'where every chunk of a file is'),
  run: async (args, ctx) => {
    const path = ctx.resolve(args.path);
    const attr = await ctx.client.stat(path);
    if (attr.type === 'dir' || attr.type === 'symlink') {
      const extra = attr.type === 'symlink' ? { target: (await ctx.client.ns.call(nameApi.readlink, { path })).target } : {};
      if (args.json) process.stdout.write(`${JSON.stringify({ path, attr, ...extra }, null, 2)}\n`);
      else process.stdout.write(`${path}: ${attr.type} ${formatMode(attr)} inode ${attr.ino}${'target' in extra ? ` -> ${extra.target}` : ''}\n`);
      return;
    }
    const file = await ctx.client.info(path);
    if (args.json) {
      process.stdout.write(`${JSON.stringify(file, null, 2)}\n`);
      return;
    }
    const lines = [
      `path:        ${file.path}`,
      `size:        ${file.attr.size} bytes (${formatBytes(file.attr.size)})`,
      `mode:        ${formatMode(file.attr)}  inode ${file.attr.ino}  links ${file.attr.nlink}`,
      `version:     ${file.attr.version}`,
      `modified:    ${formatTime(file.attr.mtime)}`,
      `chunks:      ${file.chunks.length} of up to ${formatBytes(file.chunkSize)}`,
      `replicas:    ${file.replicas} wanted; ${file.fullyReplicated ? 'fully replicated' : 'NOT fully replicated'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (file.chunks.length > 0) {
      const rows = [['#', 'offset', 'size', 'hash', 'servers']];
      file.chunks.forEach((c, i) => rows.push([String(i), String(c.offset), String(c.size), c.hash.slice(0, 16), c.data !== undefined ? '(kept by the name server)' : c.servers.map((s) => `${s.id} (${s.url})`).join(', ') || '(none alive)']));
      process.stdout.write(`${table(rows, new Set([0, 1, 2]))}\n`);
    }
  },
  inShell: true,
});
