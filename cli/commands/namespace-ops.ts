import { basename } from 'node:path';
import { nameApi } from '../../protocol/name-api.js';
import { nowNs } from '../../protocol/time.js';
import { DfsError } from '../../protocol/errors.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { landingPath } from './put.js';

/** Small commands that are one or two namespace calls each. */

export const mkdir = defineCommand({
  command: 'mkdir <paths..>',
  describe: 'make directories',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, demandOption: true })
      .option('parents', { alias: 'p', type: 'boolean', default: false, describe: 'make parents as needed; no error if it exists' })
      .option('mode', { alias: 'm', type: 'string', describe: 'permission bits in octal (default 755)' })
      .example('dfs mkdir -p /a/b/c', 'make a directory and its parents'),
  run: async (args, ctx) => {
    const mode = args.mode !== undefined ? parseOctal(args.mode) : undefined;
    for (const raw of args.paths) {
      await ctx.client.ns.call(nameApi.mkdir, { path: ctx.resolve(raw), parents: args.parents, ...(mode !== undefined ? { mode } : {}) });
    }
  },
  inShell: true,
});

export const rmdir = defineCommand({
  command: 'rmdir <paths..>',
  describe: 'remove empty directories',
  builder: (y) => y.positional('paths', { type: 'string', array: true, demandOption: true }),
  run: async (args, ctx) => {
    for (const raw of args.paths) await ctx.client.ns.call(nameApi.rmdir, { path: ctx.resolve(raw) });
  },
  inShell: true,
});

export const mv = defineCommand({
  command: 'mv <source> <target>',
  describe: 'move or rename a file or directory (metadata only: no data moves)',
  builder: (y) =>
    y
      .positional('source', { type: 'string', demandOption: true })
      .positional('target', { type: 'string', demandOption: true })
      .option('no-clobber', { alias: 'n', type: 'boolean', default: false, describe: 'fail rather than replace an existing target' })
      .example('dfs mv /a.txt /docs/', 'move into /docs'),
  run: async (args, ctx) => {
    const from = ctx.resolve(args.source);
    const to = await landingPath(ctx, args.target, basename(from));
    await ctx.client.ns.call(nameApi.rename, { from, to, noReplace: args['no-clobber'] });
  },
  inShell: true,
});

async function copyTree(ctx: CommandContext, from: string, to: string): Promise<void> {
  const { attr, entries } = await ctx.client.ns.call(nameApi.list, { path: from });
  await ctx.client.ns.call(nameApi.mkdir, { path: to, mode: attr.mode & 0o7777, parents: true });
  for (const entry of entries) {
    const src = from === '/' ? `/${entry.name}` : `${from}/${entry.name}`;
    const dst = `${to}/${entry.name}`;
    if (entry.attr.type === 'dir') await copyTree(ctx, src, dst);
    else if (entry.attr.type === 'file') await ctx.client.ns.call(nameApi.copy, { from: src, to: dst });
    else if (entry.attr.type === 'symlink') {
      const { target } = await ctx.client.ns.call(nameApi.readlink, { path: src });
      await ctx.client.ns.call(nameApi.symlink, { path: dst, target });
    }
  }
}

export const cp = defineCommand({
  command: 'cp <source> <target>',
  describe: 'copy inside the store; the copy shares the chunks, so no data moves',
  builder: (y) =>
    y
      .positional('source', { type: 'string', demandOption: true })
      .positional('target', { type: 'string', demandOption: true })
      .option('recursive', { alias: 'r', type: 'boolean', default: false, describe: 'copy a directory tree' })
      .example('dfs cp /big.iso /backup/', 'an instant copy'),
  run: async (args, ctx) => {
    const from = ctx.resolve(args.source);
    const to = await landingPath(ctx, args.target, basename(from));
    const attr = await ctx.client.stat(from);
    if (attr.type === 'dir') {
      if (!args.recursive) throw new DfsError('EISDIR', `${from} is a directory (use -r)`);
      if (to === from || to.startsWith(`${from}/`)) throw new DfsError('EINVAL', `cannot copy ${from} into itself`);
      await copyTree(ctx, from, to);
    } else {
      await ctx.client.ns.call(nameApi.copy, { from, to });
    }
  },
  inShell: true,
});

export const touch = defineCommand({
  command: 'touch <paths..>',
  describe: 'create empty files, or set the times of existing ones to now',
  builder: (y) => y.positional('paths', { type: 'string', array: true, demandOption: true }),
  run: async (args, ctx) => {
    for (const raw of args.paths) {
      const path = ctx.resolve(raw);
      try {
        await ctx.client.ns.call(nameApi.create, { path, exclusive: true });
      } catch (err) {
        if (!(err instanceof DfsError && err.code === 'EEXIST')) throw err;
        const now = nowNs();
        await ctx.client.ns.call(nameApi.setattr, { path, atime: now, mtime: now });
      }
    }
  },
  inShell: true,
});

function parseOctal(text: string): number {
  if (!/^[0-7]{1,4}$/.test(text)) throw new DfsError('EINVAL', `mode must be octal digits, like 755: ${text}`);
  return parseInt(text, 8);
}
