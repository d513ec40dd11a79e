import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DfsError } from '../../protocol/errors.js';
import { nameApi } from '../../protocol/name-api.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { progressBar } from '../progress.js';

/** Downloads to a temp file beside the target, fsyncs, then renames: no half-written file under its name. */
async function getFile(ctx: CommandContext, remote: string, local: string, mode: number, size: number): Promise<void> {
  const tmp = `${local}.dfs-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, 'w', mode);
  const bar = progressBar(basename(remote), size);
  try {
    for await (const data of ctx.client.readFile(remote, { onProgress: bar.update })) await handle.write(data);
    await handle.sync();
    await handle.close();
    await rename(tmp, local);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  } finally {
    bar.stop();
  }
}

async function getTree(ctx: CommandContext, remote: string, local: string): Promise<void> {
  const { attr, entries } = await ctx.client.ns.call(nameApi.list, { path: remote });
  await mkdir(local, { recursive: true, mode: attr.mode & 0o7777 });
  for (const entry of entries) {
    const from = remote === '/' ? `/${entry.name}` : `${remote}/${entry.name}`;
    const to = join(local, entry.name);
    if (entry.attr.type === 'dir') await getTree(ctx, from, to);
    else if (entry.attr.type === 'file') await getFile(ctx, from, to, entry.attr.mode & 0o7777, entry.attr.size);
  }
}

export const get = defineCommand({
  command: 'get <remote> [local]',
  describe: 'download a file (or directory, with -r) from the store',
  builder: (y) =>
    y
      .positional('remote', { type: 'string', demandOption: true })
      .positional('local', { type: 'string', describe: 'local file or directory (default: the same name here; - for standard output)' })
      .option('recursive', { alias: 'r', type: 'boolean', default: false, describe: 'download a directory tree' })
      .example('dfs get /media/video.mp4 .', 'download into the current directory'),
  run: async (args, ctx) => {
    const remote = ctx.resolve(args.remote);
    const attr = await ctx.client.stat(remote);
    // yargs re-parses positionals as `--local <value>`, which turns a lone `-` into '' (never a usable path).
    if (args.local === '-' || args.local === '') {
      for await (const data of ctx.client.readFile(remote)) process.stdout.write(data);
      return;
    }
    const name = basename(remote) || 'root';
    let local = args.local ?? name;
    const localStat = await stat(local).catch(() => undefined);
    if (localStat?.isDirectory()) local = join(local, name);
    if (attr.type === 'dir') {
      if (!args.recursive) throw new DfsError('EISDIR', `${remote} is a directory (use -r)`);
      await getTree(ctx, remote, local);
    } else {
      await getFile(ctx, remote, local, attr.mode & 0o7777, attr.size);
    }
  },
  inShell: true,
});
