import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DfsClient } from '../client/dfs-client.js';
import { spawnDaemon, type DaemonProcess } from '../common/daemon-process.js';
import { nameApi, type ClusterStatus } from '../protocol/name-api.js';
import { sleep } from './proc.js';

/**
 * A local dfs cluster for benchmarks: a name server and storage servers as `dfs` child processes
 * (spawnDaemon, as the test harness starts them) on ephemeral loopback ports, state and logs in `dir`.
 */

export interface ClusterOptions {
  dir: string;
  storageServers: number;
  replicas: number;
  nameServerArgs?: string[];
}

export class BenchCluster {
  nameServer!: DaemonProcess;
  readonly storage: Array<DaemonProcess | undefined> = [];
  readonly secret = randomBytes(32).toString('hex');
  readonly env: NodeJS.ProcessEnv;
  readonly logDir: string;
  private clientInstance: DfsClient | undefined;

  constructor(readonly options: ClusterOptions) {
    this.logDir = join(options.dir, 'logs');
    this.env = { DFS_SECRET: this.secret, DFS_STATE: join(options.dir, 'client-state') };
  }

  get url(): string {
    return this.nameServer.url;
  }

  get client(): DfsClient {
    this.clientInstance ??= new DfsClient({ nameServerUrl: this.url, secret: this.secret });
    return this.clientInstance;
  }

  storageDir(i: number): string {
    return join(this.options.dir, `storage-${i}`);
  }

  async start(): Promise<void> {
    await mkdir(this.logDir, { recursive: true });
    const o = this.options;
    this.nameServer = await spawnDaemon({
      args: ['name-server', '--db', join(o.dir, 'meta.db'), '--port', '0', '--replicas', String(o.replicas), ...(process.env.DFS_BENCH_NS_ARGS ? process.env.DFS_BENCH_NS_ARGS.split(' ') : []), ...(o.nameServerArgs ?? [])],
      env: this.env,
      logFile: join(this.logDir, 'name-server.log'),
    });
    for (let i = 0; i < o.storageServers; i++) {
      this.storage[i] = await spawnDaemon({
        args: ['storage-server', '--data', this.storageDir(i), '--port', '0', '--name-server', this.url],
        env: this.env,
        logFile: join(this.logDir, `storage-${i}.log`),
      });
    }
    await this.waitFor('every storage server alive', (s) => s.storage.alive === o.storageServers, 30_000);
  }

  status(): Promise<ClusterStatus> {
    return this.client.ns.call(nameApi.status, {});
  }

  /** Polls the name server's status every `intervalMs` until `check` holds; returns that status. */
  async waitFor(what: string, check: (s: ClusterStatus) => boolean, timeoutMs: number, intervalMs = 100): Promise<ClusterStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: ClusterStatus | undefined;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        last = await this.status();
        if (check(last)) return last;
      } catch (err) {
        lastError = err;
      }
      await sleep(intervalMs);
    }
    const { servers: _servers, ...counts } = last ?? ({} as Partial<ClusterStatus>);
    throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(counts)}${lastError ? ` (${String(lastError)})` : ''}`);
  }

  /** kill -9 of storage server `i`. */
  async killStorage(i: number): Promise<void> {
    const p = this.storage[i];
    if (!p) return;
    p.kill('SIGKILL');
    await p.exited;
  }

  processes(): Array<{ role: string; pid: number }> {
    const out = [{ role: 'name-server', pid: this.nameServer.pid }];
    this.storage.forEach((p, i) => p && out.push({ role: `storage-${i}`, pid: p.pid }));
    return out;
  }

  /** The last lines of every daemon's log. */
  async logTails(lines = 15): Promise<string> {
    const parts: string[] = [];
    const names = ['name-server', ...this.storage.map((_, i) => `storage-${i}`)];
    for (const name of names) {
      const text = await readFile(join(this.logDir, `${name}.log`), 'utf8').catch(() => '');
      const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
      if (tail) parts.push(`--- ${name} ---\n${tail}`);
    }
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.storage.map((p) => p?.stop(5_000)));
    await this.nameServer?.stop(5_000);
  }
}
