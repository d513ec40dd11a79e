import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnDaemon, type DaemonProcess } from '../../common/daemon-process.js';
import { generateSecret, writeFileDurably } from '../../common/secret.js';
import { nameServerDefaults } from '../../daemons/name-server/index.js';
import { defineCommand } from '../command.js';
import { CLIENT_CONFIG_FILE, defaultStateDir, type ClientConfig } from '../context.js';
import { defaultMountpoint } from './mount.js';

/** The cluster secret of a state directory, made on first use (readable by its owner only). */
async function ensureSecret(stateDir: string): Promise<string> {
  const file = join(stateDir, 'secret');
  if (!existsSync(file)) await writeFileDurably(file, `${generateSecret()}\n`, 0o600);
  else await readFile(file, 'utf8');
  return file;
}

export const up = defineCommand({
  command: 'up',
  describe: 'start a whole local cluster (name server, storage servers, and a mount) in the foreground; Ctrl-C stops it',
  builder: (y) =>
    y
      .option('state', { type: 'string', describe: 'directory for the database, chunks, secret and logs', defaultDescription: '$DFS_STATE or ~/.local/state/dfs' })
      .option('storage-servers', { type: 'number', default: 3, describe: 'how many storage servers' })
      .option('replicas', { type: 'number', default: nameServerDefaults.replicas, describe: 'copies of every chunk' })
      .option('port', { type: 'number', default: nameServerDefaults.port, describe: 'name server port (storage servers take free ports)' })
      .option('mount', { type: 'string', describe: 'folder to mount the store at', defaultDescription: '$DFS_MOUNT or ~/dfs' })
      .option('no-mount', { type: 'boolean', describe: 'do not mount; run the daemons only' })
      .example('dfs up', 'a 3-server cluster with state in ~/.local/state/dfs')
      .example('dfs up --state /tmp/demo --storage-servers 5', 'a bigger cluster elsewhere'),
  run: async (args) => {
    const stateDir = args.state ?? defaultStateDir();
    const count = args['storage-servers'];
    if (!Number.isInteger(count) || count < 1 || count > 64) throw new Error('--storage-servers must be 1 to 64');
    const logDir = join(stateDir, 'logs');
    await mkdir(logDir, { recursive: true });
    const secretFile = await ensureSecret(stateDir);
    const children: DaemonProcess[] = [];
    let stopping = false;
    let stopped: Promise<void> | undefined;
    const stopAll = (): Promise<void> => {
      stopping = true;
      // The mount first (it flushes open files), then storage servers, the name server last.
      stopped ??= (async () => {
        for (const child of [...children].reverse()) await child.stop();
      })();
      return stopped;
    };
    // Ctrl-C at any time, even while starting, stops whatever has started.
    const signalled = new Promise<void>((resolve) => {
      const onSignal = (): void => {
        process.stdout.write('\nstopping the cluster…\n');
        void stopAll().then(resolve);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
    const start = async (options: Parameters<typeof spawnDaemon>[0]): Promise<DaemonProcess> => {
      if (stopping) throw new Error('stopped while starting');
      const child = await spawnDaemon(options);
      if (stopping) {
        // Ctrl-C came while it was starting: stopAll has already run over the others.
        await child.stop();
        throw new Error('stopped while starting');
      }
      children.push(child);
      void child.exited.then((code) => {
        if (!stopping) process.stderr.write(`dfs: a daemon (pid ${child.pid}) exited with ${code}; see ${logDir}\n`);
      });
      return child;
    };
    try {
      const nameServer = await start({
        args: ['name-server', '--db', join(stateDir, 'name-server', 'meta.db'), '--port', String(args.port), '--replicas', String(args.replicas), '--secret-file', secretFile],
        logFile: join(logDir, 'name-server.log'),
      });
      process.stdout.write(`name server     ${nameServer.url}\n`);
      for (let i = 1; i <= count; i++) {
        const storage = await start({
          args: ['storage-server', '--data', join(stateDir, `storage-${i}`), '--port', '0', '--name-server', nameServer.url, '--secret-file', secretFile],
          logFile: join(logDir, `storage-${i}.log`),
        });
        process.stdout.write(`storage server  ${storage.url}  (${String(storage.ready.id)})\n`);
      }
      const config: ClientConfig = { nameServer: nameServer.url, secretFile };
      await writeFileDurably(join(stateDir, CLIENT_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, 0o600);
      let mounted: string | undefined;
      // yargs reads --no-mount as mount=false.
      if ((args.mount as unknown) !== false && !args['no-mount']) {
        const folder = args.mount ?? defaultMountpoint();
        try {
          const mount = await start({
            args: ['mount', folder, '--name-server', nameServer.url, '--secret-file', secretFile],
            logFile: join(logDir, 'mount.log'),
          });
          mounted = mount.url;
          process.stdout.write(`mounted at      ${mounted}\n`);
        } catch (err) {
          if (stopping) throw err;
          process.stderr.write(`dfs: could not mount at ${folder}; the cluster runs without a mount: ${(err as Error).message.split('\n')[0]}\n`);
        }
      }
      process.stdout.write(`\nstate and logs  ${stateDir}\n`);
      process.stdout.write(
        mounted
          ? `ready: use ${mounted} like any folder, or \`dfs status\` in another terminal; Ctrl-C unmounts and stops the cluster\n`
          : `ready: try \`dfs status\` or \`dfs put FILE /\` in another terminal; Ctrl-C stops the cluster\n`,
      );
    } catch (err) {
      await stopAll();
      if (stopping && stopped) return;
      throw err;
    }
    await signalled;
  },
  inShell: false,
});
