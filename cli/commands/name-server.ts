import { join } from 'node:path';
import { createLogger } from '../../common/log.js';
import { loadSecret } from '../../common/secret.js';
import { nameServerDefaults, startNameServer } from '../../daemons/name-server/index.js';
import { MAX_INLINE_BYTES } from '../../protocol/schemas.js';
import { defineCommand } from '../command.js';
import { defaultStateDir } from '../context.js';
import { parseBytes, runUntilSignal } from '../daemon.js';

export const nameServer = defineCommand({
  command: 'name-server',
  describe: 'run the name server (namespace, metadata, placement, repair) in the foreground',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: nameServerDefaults.port, describe: 'port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: nameServerDefaults.host, describe: 'address to listen on (0.0.0.0 for all)' })
      .option('db', { type: 'string', describe: 'SQLite database file', defaultDescription: '<state>/name-server/meta.db' })
      .option('replicas', { type: 'number', default: nameServerDefaults.replicas, describe: 'copies of every chunk' })
      .option('health-interval', { type: 'number', default: nameServerDefaults.healthIntervalMs, describe: 'ms between health checks of each storage server' })
      .option('health-misses', { type: 'number', default: nameServerDefaults.healthMisses, describe: 'missed checks after which a storage server is dead' })
      .option('chunk-size', { type: 'string', default: '4M', describe: 'chunk size of a new database' })
      .option('delete-grace', { type: 'number', default: nameServerDefaults.deleteGraceMs, describe: 'ms an unreferenced chunk waits before deletion' })
      .option('upload-grace', { type: 'number', default: nameServerDefaults.uploadGraceMs, describe: 'ms an uploaded but uncommitted chunk is kept' })
      .option('sync', {
        choices: ['full', 'data', 'normal'] as const,
        default: nameServerDefaults.synchronous,
        describe: 'full: every change is fsynced before the answer; data: file contents (close, fsync) and chunk bookkeeping are, other namespace changes reach the disk within 1 s (at once on a client fsync); normal: none is',
      })
      .option('inline-max', {
        type: 'string',
        default: '64K',
        describe: 'files up to this size are kept in the database, not on storage servers (0: none; at most 1M)',
      })
      .option('secret-file', { type: 'string', describe: 'file with the cluster secret (default: DFS_SECRET)' })
      .example('DFS_SECRET=$(cat secret) dfs name-server --db /var/lib/dfs/meta.db --host 0.0.0.0', 'serve the cluster on every address'),
  run: async (args) => {
    const log = createLogger('name-server');
    const replicas = args.replicas;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 16) throw new Error('--replicas must be 1 to 16');
    const inlineMax = parseBytes(args['inline-max']);
    if (inlineMax > MAX_INLINE_BYTES) throw new Error(`--inline-max is at most ${MAX_INLINE_BYTES} bytes`);
    const server = await startNameServer({
      dbFile: args.db ?? join(defaultStateDir(), 'name-server', 'meta.db'),
      secret: loadSecret(args['secret-file']),
      port: args.port,
      host: args.host,
      replicas,
      chunkSize: parseBytes(args['chunk-size']),
      healthIntervalMs: args['health-interval'],
      healthMisses: args['health-misses'],
      deleteGraceMs: args['delete-grace'],
      uploadGraceMs: args['upload-grace'],
      synchronous: args.sync,
      inlineMax,
      log,
    });
    await runUntilSignal(log, () => server.close());
  },
  inShell: false,
});
