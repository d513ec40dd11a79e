import { open, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ByteSource } from '../../client/dfs-client.js';
import { DfsError } from '../../protocol/errors.js';
import { nameApi } from '../../protocol/name-api.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { progressBar } from '../progress.js';

/** The store path a copy lands at: inside `target` when it is a directory or ends with `/`. */
export async function landingPath(ctx: CommandContext, rawTarget: string, name: string): Promise<string> {
  const target = ctx.resolve(rawTarget);
  if (rawTarget.endsWith('/')) return target === '/' ? `/${name}` : `${target}/${name}`;
  try {
    const attr = await ctx.client.stat(target);
    if (attr.type === 'dir') return target === '/' ? `/${name}` : `${target}/${name}`;
  } catch (err) {
    if (!(err instanceof DfsError && err.code === 'ENOENT')) throw err;
  }
  return target;
}

async function putFile(ctx: CommandContext, local: string, remote: string, mode: number): Promise<void> {
  const handle = await open(local, 'r');
  try {
    const { size } = await handle.stat();
    const source: ByteSource = {
      size,
      read: async (offset, length) => {
        const buffer = Buffer.allocUnsafe(length);
        let filled = 0;
        while (filled < length) {
          const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
          if (bytesRead === 0) throw new DfsError('EIO', `${local} shrank while it was being read`);
          filled += bytesRead;
        }
        return buffer;
      },
    };
    const bar = progressBar(basename(local), size);
    try {
      await ctx.client.writeFile(remote, source, { mode, onProgress: bar.update });
    } finally {
      bar.stop();
    }
  } finally {
    await handle.close();
  }
}

async function putTree(ctx: CommandContext, local: string, remote: string): Promise<void> {
  const st = await stat(local);
  await ctx.client.ns.call(nameApi.mkdir, { path: remote, mode: st.mode & 0o7777, parents: true });
  for (const entry of await readdir(local, { withFileTypes: true })) {
    const from = join(local, entry.name);
    const to = remote === '/' ? `/${entry.name}` : `${remote}/${entry.name}`;
    if (entry.isDirectory()) await putTree(ctx, from, to);
    else if (entry.isFile()) await putFile(ctx, from, to, (await stat(from)).mode & 0o7777);
  }
}

export const put = defineCommand({
  command: 'put <local> <remote>',
  describe: 'upload a local file (or directory, with -r) into the store',
  builder: (y) =>
    y
      .positional('local', { type: 'string', demandOption: true })
      .positional('remote', { type: 'string', demandOption: true })
      .option('recursive', { alias: 'r', type: 'boolean', default: false, describe: 'upload a directory tree' })
      .example('dfs put ./video.mp4 /media/', 'upload into /media, keeping the name')
      .example('dfs put -r ./photos /photos', 'upload a whole directory'),
  run: async (args, ctx) => {
    const st = await stat(args.local).catch(() => {
      throw new DfsError('ENOENT', `${args.local}: no such local file`);
    });
    const remote = await landingPath(ctx, args.remote, basename(args.local));
    if (st.isDirectory()) {
      if (!args.recursive) throw new DfsError('EISDIR', `${args.local} is a directory (use -r)`);
      await putTree(ctx, args.local, remote);
    } else {
      await putFile(ctx, args.local, remote, st.mode & 0o7777);
    }
  },
  inShell: true,
});
