import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { DfsClient, type ByteSource } from '../client/dfs-client.js';
import { CLI_ENTRY, spawnDaemon, type DaemonProcess } from '../common/daemon-process.js';
import { nameApi, type ClusterStatus } from '../protocol/name-api.js';
import { pollUntil } from './poll.js';

/**
 * Real clusters for tests: a name server and storage servers as child processes on ephemeral loopback
 * ports, with real SQLite files and data directories in a temp dir. Teardown runs in every outcome.
 */

export interface ClusterOptions {
  storageServers?: number;
  replicas?: number;
  healthIntervalMs?: number;
  healthMisses?: number;
  deleteGraceMs?: number;
  uploadGraceMs?: number;
  /** Extra name-server flags. */
  nameServerArgs?: string[];
  /** Extra storage-server flags, per server index. */
  storageArgs?: (index: number) => string[];
}

export interface StorageHandle {
  index: number;
  dataDir: string;
  process: DaemonProcess | undefined;
  id: string;
}

const everyProcess = new Set<DaemonProcess>();
process.on('exit', () => {
  for (const p of everyProcess) p.kill('SIGKILL');
});

export class TestCluster {
  nameServer!: DaemonProcess;
  readonly storage: StorageHandle[] = [];
  readonly secret = randomBytes(32).toString('hex');
  readonly env: NodeJS.ProcessEnv;
  private nameServerPort = 0;
  private clientInstance: DfsClient | undefined;

  constructor(
    readonly dir: string,
    readonly options: Required<Omit<ClusterOptions, 'nameServerArgs' | 'storageArgs'>> & Pick<ClusterOptions, 'nameServerArgs' | 'storageArgs'>,
  ) {
    this.env = { DFS_SECRET: this.secret, DFS_LOG_LEVEL: process.env.DFS_LOG_LEVEL ?? 'info' };
  }

  get url(): string {
    return this.nameServer.url;
  }

  get dbFile(): string {
    return join(this.dir, 'meta.db');
  }

  /** A client of this cluster (the library the CLI uses). */
  get client(): DfsClient {
    this.clientInstance ??= new DfsClient({ nameServerUrl: this.url, secret: this.secret });
    return this.clientInstance;
  }

  private track(p: DaemonProcess): DaemonProcess {
    everyProcess.add(p);
    void p.exited.then(() => everyProcess.delete(p));
    return p;
  }

  async startNameServer(): Promise<void> {
    const o = this.options;
    this.nameServer = this.track(
      await spawnDaemon({
        args: [
          'name-server',
          '--db', this.dbFile,
          '--port', String(this.nameServerPort),
          '--replicas', String(o.replicas),
          '--health-interval', String(o.healthIntervalMs),
          '--health-misses', String(o.healthMisses),
          '--delete-grace', String(o.deleteGraceMs),
          '--upload-grace', String(o.uploadGraceMs),
          ...(o.nameServerArgs ?? []),
        ],
        env: this.env,
      }),
    );
    this.nameServerPort = Number(new URL(this.nameServer.url).port);
    this.clientInstance = undefined;
  }

  /** Starts (or restarts, on the same data dir) storage server `index`. */
  async startStorage(index: number): Promise<StorageHandle> {
    const handle = this.storage[index] ?? { index, dataDir: join(this.dir, `storage-${index}`), process: undefined, id: '' };
    this.storage[index] = handle;
    const p = this.track(
      await spawnDaemon({
        args: ['storage-server', '--data', handle.dataDir, '--port', '0', '--name-server', this.url, '--register-interval', '500', ...(this.options.storageArgs?.(index) ?? [])],
        env: this.env,
      }),
    );
    handle.process = p;
    handle.id = String(p.ready.id);
    return handle;
  }

  /** kill -9 a storage server. */
  async killStorage(index: number): Promise<void> {
    const p = this.storage[index]?.process;
    if (!p) return;
    p.kill('SIGKILL');
    await p.exited;
  }

  async stopStorage(index: number): Promise<void> {
    await this.storage[index]?.process?.stop();
  }

  async killNameServer(): Promise<void> {
    this.nameServer.kill('SIGKILL');
    await this.nameServer.exited;
  }

  async status(): Promise<ClusterStatus> {
    return this.client.ns.call(nameApi.status, {});
  }

  /** Polls until `check` holds, or fails with what it last saw. */
  waitFor<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
    return pollUntil(what, probe, check, timeoutMs);
  }

  /** Waits until every storage server that should be up is alive in the name server's eyes. */
  async waitAlive(count: number): Promise<ClusterStatus> {
    return this.waitFor('storage servers alive', () => this.status(), (s) => s.storage.alive === count);
  }

  /** Waits until every referenced chunk has exactly its target number of live copies. */
  async waitConverged(timeoutMs = 30_000): Promise<ClusterStatus> {
    return this.waitFor(
      'replication to converge',
      () => this.status(),
      (s) => s.underReplicated === 0 && s.overReplicated === 0 && s.unavailable === 0,
      timeoutMs,
    );
  }

  /** Log lines of every daemon, for a failing test. */
  logs(): string {
    const parts = [`--- name server ---\n${this.nameServer?.lines.slice(-60).join('\n') ?? ''}`];
    for (const s of this.storage) parts.push(`--- storage ${s.index} (${s.id}) ---\n${s.process?.lines.slice(-30).join('\n') ?? ''}`);
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.storage.map((s) => s.process?.stop(2_000)));
    await this.nameServer?.stop(2_000);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Starts a cluster for one test and stops it in every outcome (printing daemon logs on failure). */
export async function startCluster(t: ExecutionContext, options: ClusterOptions = {}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-test-'));
  const cluster = new TestCluster(dir, {
    storageServers: options.storageServers ?? 3,
    replicas: options.replicas ?? 2,
    healthIntervalMs: options.healthIntervalMs ?? 200,
    healthMisses: options.healthMisses ?? 3,
    deleteGraceMs: options.deleteGraceMs ?? 200,
    uploadGraceMs: options.uploadGraceMs ?? 60_000,
    nameServerArgs: options.nameServerArgs,
    storageArgs: options.storageArgs,
  });
  t.teardown(async () => {
    if (!t.passed) t.log(cluster.logs());
    await cluster.stop();
  });
  await cluster.startNameServer();
  for (let i = 0; i < cluster.options.storageServers; i++) await cluster.startStorage(i);
  await cluster.waitAlive(cluster.options.storageServers);
  return cluster;
}

export { sleep } from './poll.js';

export { chunkFiles } from './disk-chunks.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `dfs <args>` as a separate process against a cluster. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI_ENTRY, ...args],
      { env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 60_000, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** The environment that points the CLI at a cluster. */
export function cliEnv(cluster: TestCluster): NodeJS.ProcessEnv {
  return { DFS_NAME_SERVER: cluster.url, DFS_SECRET: cluster.secret, DFS_STATE: join(cluster.dir, 'no-state') };
}

/** A byte source over a buffer (what a writer of in-memory data hands the client). */
export function bufferSource(data: Buffer): ByteSource {
  return { size: data.length, read: async (offset, length) => data.subarray(offset, offset + length) };
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a whole store file through the client library. */
export async function readAll(client: DfsClient, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of client.readFile(path)) parts.push(part);
  return Buffer.concat(parts);
}
