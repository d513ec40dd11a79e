import { homedir } from 'node:os';
import { join } from 'node:path';
import { DfsClient } from '../../client/dfs-client.js';
import { tuneGcForStreaming } from '../../common/gc-tuning.js';
import { createLogger } from '../../common/log.js';
import { mountDefaults, startMount } from '../../mount/index.js';
import { clientOptions, defineCommand } from '../command.js';
import { resolveClientConfig } from '../context.js';
import { parseBytes } from '../daemon.js';

/** Where `dfs mount` and `dfs up` mount when no folder is named. */
export function defaultMountpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.DFS_MOUNT || join(homedir(), 'dfs');
}

export const mount = defineCommand({
  command: 'mount [mountpoint]',
  describe: 'mount the store as a local folder (in the foreground; Ctrl-C unmounts)',
  builder: (y) =>
    clientOptions(y)
      .positional('mountpoint', { type: 'string', describe: 'folder to mount at', defaultDescription: '$DFS_MOUNT or ~/dfs' })
      .option('cache-size', { type: 'string', default: '256M', describe: 'memory for cached chunk data' })
      .option('attr-timeout', { type: 'number', default: mountDefaults.attrTtlMs, describe: 'ms attributes are trusted before asking again' })
      .option('entry-timeout', { type: 'number', default: mountDefaults.entryTimeoutS, describe: 's the kernel trusts a name lookup' })
      .option('allow-other', { type: 'boolean', describe: 'let other users in, with kernel permission checks', defaultDescription: 'when run as root' })
      .example('dfs mount ~/dfs --name-server http://10.0.0.1:7700', 'mount a remote cluster'),
  run: async (args) => {
    tuneGcForStreaming();
    const log = createLogger('mount');
    const client = new DfsClient(resolveClientConfig({ nameServer: args['name-server'], secretFile: args['secret-file'], state: args.state }));
    const running = await startMount({
      mountpoint: args.mountpoint ?? defaultMountpoint(),
      client,
      cacheBytes: parseBytes(args['cache-size']),
      attrTtlMs: args['attr-timeout'],
      entryTimeoutS: args['entry-timeout'],
      uploadConcurrency: mountDefaults.uploadConcurrency,
      allowOther: args['allow-other'] ?? process.getuid?.() === 0,
      log,
    });
    // The mount outlives a bug in one operation: log it and keep serving the others.
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
    process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
    const stop = (): void => void running.unmount();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await running.gone;
    // fuse-native's thread keeps the process alive after an unmount: leave explicitly.
    process.exit(0);
  },
  inShell: false,
});
