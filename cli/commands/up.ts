import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnDaemon, type DaemonProcess } from '../../common/daemon-process.js';
import { generateSecret, writeFileDurably } from '../../common/secret.js';
import { nameServerDefaults } from '../../daemons/name-server/index.js';
import { defineCommand } from '../command.js';
import { CLIENT_CONFIG_FILE, defaultStateDir, type ClientConfig } from '../context.js';

/** The cluster secret of a state directory, made on first use (readable by its owner only). */
async function ensureSecret(stateDir: string): Promise<string> {
  const file = join(stateDir, 'secret');
  if (!existsSync(file)) await writeFileDurably(file, `${generateSecret()}\n`, 0o600);
  else await readFile(file, 'utf8');
  return file;
}

export const up = defineCommand({
  command: 'up',
  describe: 'start a whole local cluster (name server + storage servers) in the foreground; Ctrl-C stops it',
  builder: (y) =>
    y
      .option('state', { type: 'string', describe: 'directory for the database, chunks, secret and logs', defaultDescription: '$DFS_STATE or ~/.local/state/dfs' })
      .option('storage-servers', { type: 'number', default: 3, describe: 'how many storage servers' })
      .option('replicas', { type: 'number', default: nameServerDefaults.replicas, describe: 'copies of every chunk' })
      .option('port', { type: 'number', default: nameServerDefaults.port, describe: 'name server port (storage servers take free ports)' })
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
    const stopAll = async (): Promise<void> => {
      stopping = true;
      // Storage servers first, the name server last.
      for (const child of [...children].reverse()) await child.stop();
    };
    try {
      const nameServer = await spawnDaemon({
        args: ['name-server', '--db', join(stateDir, 'name-server', 'meta.db'), '--port', String(args.port), '--replicas', String(args.replicas), '--secret-file', secretFile],
        logFile: join(logDir, 'name-server.log'),
      });
      children.push(nameServer);
      process.stdout.write(`name server     ${nameServer.url}\n`);
      for (let i = 1; i <= count; i++) {
        const storage = await spawnDaemon({
          args: ['storage-server', '--data', join(stateDir, `storage-${i}`), '--port', '0', '--name-server', nameServer.url, '--secret-file', secretFile],
          logFile: join(logDir, `storage-${i}.log`),
        });
        children.push(storage);
        process.stdout.write(`storage server  ${storage.url}  (${String(storage.ready.id)})\n`);
      }
      const config: ClientConfig = { nameServer: nameServer.url, secretFile };
      await writeFileDurably(join(stateDir, CLIENT_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, 0o600);
      process.stdout.write(`\nstate and logs  ${stateDir}\nready: try \`dfs status\` or \`dfs put FILE /\` in another terminal; Ctrl-C stops the cluster\n`);
    } catch (err) {
      await stopAll();
      throw err;
    }
    for (const child of children) {
      void child.exited.then((code) => {
        if (!stopping) process.stderr.write(`dfs: a daemon (pid ${child.pid}) exited with ${code}; see ${logDir}\n`);
      });
    }
    await new Promise<void>((resolve) => {
      const onSignal = (): void => {
        process.stdout.write('\nstopping the cluster…\n');
        void stopAll().then(resolve);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
  },
  inShell: false,
});
