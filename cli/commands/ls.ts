import { nameApi } from '../../protocol/name-api.js';
import type { Attr, DirEntry } from '../../protocol/schemas.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { formatMode, formatTime, table } from '../output.js';

async function longRows(ctx: CommandContext, dir: string, entries: DirEntry[]): Promise<string[][]> {
  return Promise.all(
    entries.map(async ({ name, attr }) => {
      let shown = name;
      if (attr.type === 'symlink') {
        const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
        shown += ` -> ${(await ctx.client.ns.call(nameApi.readlink, { path })).target}`;
      }
      return [formatMode(attr), String(attr.nlink), String(attr.uid), String(attr.gid), String(attr.size), formatTime(attr.mtime), shown];
    }),
  );
}

export const ls = defineCommand({
  command: 'ls [paths..]',
  describe: 'list a directory',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, describe: 'directories or files (default: current directory)' })
      .option('long', { alias: 'l', type: 'boolean', default: false, describe: 'mode, links, owner, size and time' })
      .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'include names starting with .' })
      .example('dfs ls -l /photos', 'list /photos with sizes and times'),
  run: async (args, ctx) => {
    const paths = args.paths?.length ? args.paths : ['.'];
    for (const [i, raw] of paths.entries()) {
      const path = ctx.resolve(raw);
      const attr: Attr = await ctx.client.stat(path);
      let entries: DirEntry[];
      let dir = path;
      if (attr.type === 'dir') {
        entries = (await ctx.client.ns.call(nameApi.list, { path })).entries.filter((e) => args.all || !e.name.startsWith('.'));
      } else {
        dir = path.slice(0, path.lastIndexOf('/')) || '/';
        entries = [{ name: path.slice(path.lastIndexOf('/') + 1), attr }];
      }
      if (paths.length > 1) process.stdout.write(`${i > 0 ? '\n' : ''}${raw}:\n`);
      if (entries.length === 0) continue;
      const text = args.long ? table(await longRows(ctx, dir, entries), new Set([1, 4])) : entries.map((e) => e.name).join('\n');
      process.stdout.write(`${text}\n`);
    }
  },
  inShell: true,
});
