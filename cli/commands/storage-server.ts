import { tuneGcForStreaming } from '../../common/gc-tuning.js';
import { createLogger } from '../../common/log.js';
import { loadSecret } from '../../common/secret.js';
import { startStorageServer, storageServerDefaults } from '../../daemons/storage-server/index.js';
import { defineCommand } from '../command.js';
import { parseBytes, runUntilSignal } from '../daemon.js';

export const storageServer = defineCommand({
  command: 'storage-server',
  describe: 'run a storage server (chunk store) in the foreground',
  builder: (y) =>
    y
      .option('data', { type: 'string', demandOption: true, describe: 'directory for chunks and the server id' })
      .option('name-server', { type: 'string', describe: 'name server URL (or DFS_NAME_SERVER)' })
      .option('port', { type: 'number', default: storageServerDefaults.port, describe: 'port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: storageServerDefaults.host, describe: 'address to listen on' })
      .option('advertise', { type: 'string', describe: 'URL others reach this server at', defaultDescription: 'http://<host>:<port>' })
      .option('capacity', { type: 'string', describe: 'most bytes to use, like 50G', defaultDescription: 'the whole disk' })
      .option('register-interval', { type: 'number', default: storageServerDefaults.registerIntervalMs, describe: 'ms between registrations with the name server' })
      .option('scrub-rate', { type: 'string', default: '16M', describe: 'bytes per second the background scrub reads to find corrupt chunks (0: off)' })
      .option('secret-file', { type: 'string', describe: 'file with the cluster secret (default: DFS_SECRET)' })
      .example('dfs storage-server --data /srv/dfs --name-server http://10.0.0.1:7700 --host 0.0.0.0 --advertise http://10.0.0.5:7701', 'a storage server on its own machine'),
  run: async (args) => {
    tuneGcForStreaming();
    const log = createLogger('storage-server');
    const nameServerUrl = args['name-server'] ?? process.env.DFS_NAME_SERVER;
    if (!nameServerUrl) throw new Error('--name-server URL (or DFS_NAME_SERVER) is required');
    const server = await startStorageServer({
      dataDir: args.data,
      nameServerUrl,
      secret: loadSecret(args['secret-file']),
      port: args.port,
      host: args.host,
      ...(args.advertise ? { advertiseUrl: args.advertise } : {}),
      ...(args.capacity ? { capacity: parseBytes(args.capacity) } : {}),
      registerIntervalMs: args['register-interval'],
      maxChunkBytes: storageServerDefaults.maxChunkBytes,
      scrubBytesPerSecond: parseBytes(args['scrub-rate']),
      log,
    });
    await runUntilSignal(log, () => server.close());
  },
  inShell: false,
});
