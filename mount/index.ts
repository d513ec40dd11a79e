import { execFile } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import Fuse from 'fuse-native';
import type { DfsClient } from '../client/dfs-client.js';
import { announce, type Logger } from '../common/log.js';
import { traceFuseOps } from './fuse-trace.js';
import { fuseOps } from './fuse-adapter.js';
import { fuseMountOptions } from './fuse-options.js';
import { isMounted, setReadAhead } from './mountinfo.js';
import { Vfs } from './vfs.js';

export interface MountOptions {
  mountpoint: string;
  client: DfsClient;
  /** Bytes of chunk data cached in memory. */
  cacheBytes: number;
  /** How long this mount trusts attributes without asking (changes by other clients show after this). */
  attrTtlMs: number;
  /** How long the kernel trusts a name lookup. */
  entryTimeoutS: number;
  uploadConcurrency: number;
  /** Other users may use the mount, with the kernel checking permissions (default: when run as root). */
  allowOther: boolean;
  log: Logger;
}

export const mountDefaults = {
  /** Enough for a few large files' worth of read-ahead and re-reads, small enough for any laptop. */
  cacheBytes: 256 * 1024 * 1024,
  attrTtlMs: 1_000,
  entryTimeoutS: 1,
  /** 4 chunk uploads in flight: 16 MiB of unflushed data per mount at most, beyond the chunk being written. */
  uploadConcurrency: 4,
};

export interface RunningMount {
  mountpoint: string;
  vfs: Vfs;
  /** Flushes open files, unmounts, and resolves when done. */
  unmount(): Promise<void>;
  /** Resolves when the mount is gone (unmounted by us, or by someone else with fusermount -u). */
  gone: Promise<void>;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => execFile(cmd, args, (err) => (err ? reject(err) : resolvePromise())));
}

/**
 * A mount left behind by a crashed mount process answers ENOTCONN: unmount it (lazily) before mounting.
 * A live mount of someone else's is left alone.
 */
async function clearStaleMount(mountpoint: string, log: Logger): Promise<void> {
  if (!(await isMounted(mountpoint))) return;
  try {
    await stat(mountpoint);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN' || code === 'ECONNABORTED' || code === 'EIO') {
      log.warn({ mountpoint }, 'cleaning up a stale mount left by a crashed mount process');
      await run('fusermount', ['-uz', mountpoint]);
      return;
    }
    throw err;
  }
  throw new Error(`${mountpoint} is already mounted (fusermount -u ${mountpoint} to release it)`);
}

export async function startMount(options: MountOptions): Promise<RunningMount> {
  const { log } = options;
  const mountpoint = resolve(options.mountpoint);
  await clearStaleMount(mountpoint, log);
  await mkdir(mountpoint, { recursive: true });
  const vfs = await Vfs.create(options.client, { attrTtlMs: options.attrTtlMs, cacheBytes: options.cacheBytes, uploadConcurrency: options.uploadConcurrency }, log);
  let fuse: Fuse | undefined;
  const ops = traceFuseOps(fuseOps(vfs, () => fuse!, log));
  fuse = new Fuse(mountpoint, ops, {
    ...fuseMountOptions(options),
    allowOther: options.allowOther,
    defaultPermissions: options.allowOther,
    fsname: 'dfs',
    subtype: 'dfs',
  });
  await new Promise<void>((resolvePromise, reject) => fuse!.mount((err) => (err ? reject(err) : resolvePromise())));
  if (!(await setReadAhead(mountpoint))) log.debug({ mountpoint }, 'kernel read-ahead left at its default (setting it needs root)');
  announce(log, 'mounted', { mountpoint, chunkSize: vfs.chunkSize });

  let unmounting: Promise<void> | undefined;
  let goneResolve: () => void = () => undefined;
  const gone = new Promise<void>((r) => (goneResolve = r));
  // Someone else may unmount us (fusermount -u); fuse-native keeps running then, so watch for it.
  const watch = setInterval(() => {
    void isMounted(mountpoint).then((mounted) => {
      if (!mounted && !unmounting) {
        log.warn({ mountpoint }, 'unmounted from outside');
        clearInterval(watch);
        void vfs.flushAll().finally(goneResolve);
      }
    });
  }, 1_000);
  watch.unref();

  const unmount = (): Promise<void> => {
    unmounting ??= (async () => {
      clearInterval(watch);
      vfs.stop();
      await vfs.flushAll();
      await new Promise<void>((resolvePromise) =>
        fuse!.unmount((err) => {
          if (err) log.warn({ err: err.message }, 'unmount failed; detaching lazily');
          resolvePromise();
        }),
      );
      if (await isMounted(mountpoint)) await run('fusermount', ['-uz', mountpoint]).catch(() => undefined);
      log.info({ mountpoint }, 'unmounted');
      goneResolve();
    })();
    return unmounting;
  };
  return { mountpoint, vfs, unmount, gone };
}
