import { createInterface } from 'node:readline/promises';
import { DfsError } from '../../protocol/errors.js';
import { nameApi } from '../../protocol/name-api.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';

async function removeTree(ctx: CommandContext, path: string): Promise<void> {
  const { entries } = await ctx.client.ns.call(nameApi.list, { path });
  for (const entry of entries) {
    const child = path === '/' ? `/${entry.name}` : `${path}/${entry.name}`;
    if (entry.attr.type === 'dir') await removeTree(ctx, child);
    else await ctx.client.ns.call(nameApi.unlink, { path: child });
  }
  if (path !== '/') await ctx.client.ns.call(nameApi.rmdir, { path });
}

/** Asks on the terminal; without one there is nobody to ask, so the answer is no. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new DfsError('EPERM', `${question.replace(/\?.*$/, '')}: refusing without a terminal to ask on (use -f)`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export const rm = defineCommand({
  command: 'rm <paths..>',
  describe: 'remove files (and directory trees, with -r)',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, demandOption: true })
      .option('recursive', { alias: 'r', type: 'boolean', default: false, describe: 'remove directories and what they hold' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'do not ask; ignore missing files' })
      .option('preserve-root', { type: 'boolean', default: true, describe: 'refuse to remove / recursively (--no-preserve-root allows it)' })
      .example('dfs rm -rf /tmp/build', 'remove a tree without asking'),
  run: async (args, ctx) => {
    for (const raw of args.paths) {
      const path = ctx.resolve(raw);
      let attr;
      try {
        attr = await ctx.client.stat(path);
      } catch (err) {
        if (args.force && err instanceof DfsError && err.code === 'ENOENT') continue;
        throw err;
      }
      if (attr.type !== 'dir') {
        await ctx.client.ns.call(nameApi.unlink, { path });
        continue;
      }
      if (!args.recursive) throw new DfsError('EISDIR', `${path} is a directory (use -r)`);
      // As GNU rm's --preserve-root: emptying the whole store takes saying so.
      if (path === '/' && args['preserve-root']) throw new DfsError('EPERM', 'refusing to remove / recursively (use --no-preserve-root)');
      const { entries } = await ctx.client.ns.call(nameApi.list, { path });
      if (entries.length > 0 && !args.force && !(await confirm(`remove ${path} and everything in it? [y/N] `))) continue;
      await removeTree(ctx, path);
    }
  },
  inShell: true,
});
