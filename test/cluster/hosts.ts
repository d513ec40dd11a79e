import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CLI_ENTRY } from '../../common/daemon-process.js';
import { DfsError, isErrorCode } from '../../protocol/errors.js';
import type { ClusterStatus, FileInfo } from '../../protocol/name-api.js';
import { forceUnmount } from '../../bench/proc.js';
import { mountsUnder, mustRun, Network, run, type RunResult } from './netns.js';
import { liveProcesses, startProcess, type HostProcess } from './process.js';
import { expandExec, formatEnvFile, parseEnvFile, readUnit, type PathMap } from './units.js';
import { pollUntil } from '../poll.js';

/**
 * A dfs cluster spread over hosts that are network namespaces on one switch (see netns.ts): a name-server
 * host, storage hosts and client hosts, each with its own address. Every daemon is started the way
 * systemd starts it on a provisioned host: its unit's ExecStart from deploy/systemd, expanded with the
 * host's own dfs.env (built from deploy/dfs.env as provision.sh builds it), `/usr/bin/node` being this
 * Node, `/opt/dfs` this checkout and `/etc/dfs/*` the host's files in the run's temp dir.
 *
 * The test process stays outside every namespace: it reads the hosts' disks directly, and talks to the
 * cluster through an agent process on a client host (agent.ts) or the `dfs` CLI run there.
 */

/** This checkout: the folder with package.json above the compiled harness. */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
const AGENT_ENTRY = fileURLToPath(new URL('./agent.js', import.meta.url));

function findRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'deploy', 'systemd'))) return dir;
  }
  throw new Error(`no checkout above ${from}`);
}

/**
 * `/opt/dfs/bin/dfs.js` runs `dist/cli/main.js`. When this harness was compiled elsewhere (another outDir),
 * the unit's `dfs.js` is the CLI entry of this same build, so the daemons run the code under test.
 */
function dfsEntry(): string {
  return resolve(REPO_ROOT, 'dist', 'cli', 'main.js') === CLI_ENTRY ? join(REPO_ROOT, 'bin', 'dfs.js') : CLI_ENTRY;
}

export const NAME_PORT = 7700;
export const STORAGE_PORT = 7701;

export interface NetClusterOptions {
  storageHosts?: number;
  clientHosts?: number;
  replicas?: number;
  healthIntervalMs?: number;
  healthMisses?: number;
  /** Extra name-server flags (DFS_NAME_EXTRA). */
  nameExtra?: string[];
  /** Extra storage-server flags per storage host, 1-based (DFS_STORAGE_EXTRA). */
  storageExtra?: (n: number) => string[];
  /** A tmpfs of this size as a storage host's data dir (1-based), so its disk really fills up. */
  storageTmpfs?: (n: number) => string | undefined;
  /** Start the mount unit on the last client host. */
  mount?: boolean;
}

export interface Host {
  name: string;
  ns: string;
  address: string;
  /** The host's own folder: etc/dfs (dfs.env, secret), var/lib/dfs, logs. */
  root: string;
  envFile: string;
  secretFile: string;
  env: Map<string, string>;
}

export interface StorageHost extends Host {
  n: number;
  dataDir: string;
  url: string;
  id: string;
  process: HostProcess | undefined;
}

const clusters = new Set<NetCluster>();
let exitHandler = false;

/** On exit (a timeout, a crash) whatever a test left running goes: processes, mounts, namespaces, files. */
function installExitHandler(): void {
  if (exitHandler) return;
  exitHandler = true;
  process.on('exit', () => {
    for (const p of liveProcesses) p.kill('SIGKILL');
    for (const c of clusters) c.teardownSync();
  });
}

export class NetCluster {
  readonly hosts: Host[] = [];
  readonly storage: StorageHost[] = [];
  readonly clients: Host[] = [];
  nameHost!: Host;
  nameServer: HostProcess | undefined;
  mountProcess: HostProcess | undefined;
  agent!: Agent;
  readonly secret = randomBytes(32).toString('hex');
  readonly options: Required<Omit<NetClusterOptions, 'storageTmpfs'>> & Pick<NetClusterOptions, 'storageTmpfs'>;
  private readonly paths: PathMap;
  private readonly tmpfs: string[] = [];
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly net: Network,
    options: NetClusterOptions,
  ) {
    this.options = {
      storageHosts: options.storageHosts ?? 3,
      clientHosts: options.clientHosts ?? (options.mount ? 2 : 1),
      replicas: options.replicas ?? 2,
      healthIntervalMs: options.healthIntervalMs ?? 300,
      healthMisses: options.healthMisses ?? 3,
      nameExtra: options.nameExtra ?? [],
      storageExtra: options.storageExtra ?? (() => []),
      storageTmpfs: options.storageTmpfs,
      mount: options.mount ?? false,
    };
    this.paths = {
      node: process.execPath,
      prefixes: [
        ['/opt/dfs/bin/dfs.js', dfsEntry()],
        ['/opt/dfs', REPO_ROOT],
      ],
      allowed: [dir, REPO_ROOT],
    };
    clusters.add(this);
    installExitHandler();
  }

  /** Builds the network and the hosts' files and starts every daemon: name server, storage servers, agent, mount. */
  static async start(options: NetClusterOptions = {}): Promise<NetCluster> {
    const dir = await mkdtemp(join(tmpdir(), `dfs-cluster-${process.pid}-`));
    let net: Network;
    try {
      net = await Network.create();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const cluster = new NetCluster(dir, net, options);
    try {
      await cluster.build();
      await cluster.startNameServer();
      await Promise.all(cluster.storage.map((s) => cluster.startStorage(s.n)));
      await cluster.startAgent();
      await cluster.waitAlive(cluster.storage.length);
      if (cluster.options.mount) await cluster.startMount();
    } catch (err) {
      const logs = cluster.logs();
      await cluster.stop();
      throw new Error(`${(err as Error).message}\n${logs}`);
    }
    return cluster;
  }

  get nameServerUrl(): string {
    return `http://${this.nameHost.address}:${NAME_PORT}`;
  }

  /** The client host the agent runs on, and the one the mount runs on. */
  get agentHost(): Host {
    return this.clients[0]!;
  }

  get mountHost(): Host {
    return this.clients[this.clients.length - 1]!;
  }

  get mountpoint(): string {
    return this.mountHost.env.get('DFS_MOUNT')!;
  }

  private async build(): Promise<void> {
    const o = this.options;
    const defaults = parseEnvFile(readFileSync(join(REPO_ROOT, 'deploy', 'dfs.env'), 'utf8'));
    const secretSource = join(this.dir, 'cluster-secret');
    writeFileSync(secretSource, `${this.secret}\n`, { mode: 0o600 });
    const makeHost = async (name: string, octet: number): Promise<Host> => {
      const { ns, address } = await this.net.addHost(name, octet);
      const root = join(this.dir, name);
      const etc = join(root, 'etc', 'dfs');
      mkdirSync(etc, { recursive: true });
      const secretFile = join(etc, 'secret');
      writeFileSync(secretFile, readFileSync(secretSource), { mode: 0o600 });
      chmodSync(secretFile, 0o600);
      // As provision.sh does: the shipped dfs.env with this host's addresses, plus this run's settings.
      const env = new Map(defaults);
      const set = (key: string, value: string): void => {
        if (!env.has(key)) throw new Error(`deploy/dfs.env does not define ${key}`);
        env.set(key, value);
      };
      set('DFS_NAME_SERVER', `http://${this.net.subnet}.10:${NAME_PORT}`);
      set('DFS_LISTEN', '0.0.0.0');
      set('DFS_ADVERTISE', `http://${address}:${STORAGE_PORT}`);
      set('DFS_REPLICAS', String(o.replicas));
      set('DFS_HEALTH_INTERVAL', String(o.healthIntervalMs));
      set('DFS_HEALTH_MISSES', String(o.healthMisses));
      set('DFS_DB', join(root, 'var', 'lib', 'dfs', 'name', 'meta.db'));
      set('DFS_DATA', join(root, 'var', 'lib', 'dfs', 'storage'));
      set('DFS_MOUNT', join(root, 'mnt', 'dfs'));
      set('DFS_NAME_EXTRA', o.nameExtra.join(' '));
      set('DFS_STORAGE_EXTRA', '');
      const host: Host = { name, ns, address, root, envFile: join(etc, 'dfs.env'), secretFile, env };
      this.writeEnv(host);
      this.hosts.push(host);
      return host;
    };
    this.nameHost = await makeHost('name', 10);
    for (let n = 1; n <= o.storageHosts; n++) {
      const host = await makeHost(`storage${n}`, 10 + n);
      host.env.set('DFS_STORAGE_EXTRA', ['--register-interval', '500', ...o.storageExtra(n)].join(' '));
      this.writeEnv(host);
      const dataDir = host.env.get('DFS_DATA')!;
      const size = o.storageTmpfs?.(n);
      if (size) {
        mkdirSync(dataDir, { recursive: true });
        await mustRun('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, `dfs-${host.ns}`, dataDir]);
        this.tmpfs.push(dataDir);
      }
      this.storage.push({ ...host, n, dataDir, url: `http://${host.address}:${STORAGE_PORT}`, id: '', process: undefined });
    }
    for (let n = 1; n <= o.clientHosts; n++) this.clients.push(await makeHost(`client${n}`, 19 + n));
  }

  /** Writes a host's dfs.env (after its settings changed; the next daemon start reads it). */
  writeEnv(host: Host): void {
    writeFileSync(host.envFile, formatEnvFile(host.env, `# ${host.name} (${host.address}): written by the multi-host test harness from deploy/dfs.env`));
  }

  /** The environment systemd gives a unit: PATH and the EnvironmentFile's variables, nothing inherited. */
  private unitEnv(host: Host, unitFile: string): { env: Map<string, string>; processEnv: NodeJS.ProcessEnv } {
    const unit = readUnit(unitFile);
    const files = unit.get('EnvironmentFile') ?? [];
    if (files.length === 0) throw new Error(`${unitFile}: no EnvironmentFile`);
    const env = new Map<string, string>();
    for (const raw of files) {
      const optional = raw.startsWith('-');
      const path = raw.replace(/^-/, '');
      if (path !== '/etc/dfs/dfs.env') throw new Error(`${unitFile}: EnvironmentFile ${path} is not the one provision.sh writes (/etc/dfs/dfs.env)`);
      if (!existsSync(host.envFile) && optional) continue;
      for (const [k, v] of parseEnvFile(readFileSync(host.envFile, 'utf8'))) env.set(k, v);
    }
    // DFS_LOG_LEVEL=debug on the test's command line reaches every daemon, for a look at a failing run.
    const level = process.env.DFS_LOG_LEVEL ? { DFS_LOG_LEVEL: process.env.DFS_LOG_LEVEL } : {};
    return { env, processEnv: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...level, ...Object.fromEntries(env) } };
  }

  private hostPaths(host: Host): PathMap {
    return { ...this.paths, prefixes: [['/etc/dfs/secret', host.secretFile], ['/etc/dfs/dfs.env', host.envFile], ...this.paths.prefixes] };
  }

  /** Starts a host's unit: its ExecStartPre lines, then ExecStart, inside the host's network namespace. */
  private async startUnit(host: Host, unitName: string, role: string, timeoutMs = 30_000): Promise<HostProcess> {
    const unitFile = join(REPO_ROOT, 'deploy', 'systemd', unitName);
    const unit = readUnit(unitFile);
    const { env, processEnv } = this.unitEnv(host, unitFile);
    const paths = this.hostPaths(host);
    for (const pre of unit.get('ExecStartPre') ?? []) {
      const [cmd, ...args] = this.net.enterNet(host.name, expandExec(pre, env, paths));
      const r = await run(cmd!, args, { env: processEnv, cleanEnv: true });
      if (r.code !== 0 && !pre.startsWith('-')) throw new Error(`${unitName} ExecStartPre ${pre} failed: ${r.stderr}`);
    }
    const argv = expandExec(unit.get('ExecStart')![0]!, env, paths);
    return startProcess({ role, argv: this.net.enterNet(host.name, argv), env: processEnv, logFile: join(host.root, `${role}.log`), timeoutMs });
  }

  async startNameServer(): Promise<void> {
    this.nameServer = await this.startUnit(this.nameHost, 'dfs-name-server.service', 'name-server');
  }

  async killNameServer(): Promise<void> {
    this.nameServer?.kill('SIGKILL');
    await this.nameServer?.exited;
  }

  /** Starts (or restarts, on the same data dir) the storage server of storage host `n` (1-based). */
  async startStorage(n: number): Promise<StorageHost> {
    const host = this.storageHost(n);
    host.process = await this.startUnit(host, 'dfs-storage-server.service', 'storage-server');
    host.id = String(host.process.ready.id);
    return host;
  }

  async killStorage(n: number): Promise<void> {
    const p = this.storageHost(n).process;
    p?.kill('SIGKILL');
    await p?.exited;
  }

  async stopStorage(n: number): Promise<void> {
    await this.storageHost(n).process?.stop();
  }

  storageHost(n: number): StorageHost {
    const host = this.storage[n - 1];
    if (!host) throw new Error(`no storage host ${n}`);
    return host;
  }

  /** The storage host whose server has this id. */
  storageById(id: string): StorageHost {
    const host = this.storage.find((s) => s.id === id);
    if (!host) throw new Error(`no storage host has server id ${id}`);
    return host;
  }

  private async startAgent(): Promise<void> {
    const host = this.agentHost;
    const agent = new Agent();
    const env = { PATH: process.env.PATH, DFS_NAME_SERVER: host.env.get('DFS_NAME_SERVER'), DFS_SECRET_FILE: host.secretFile };
    agent.process = await startProcess({
      role: 'agent',
      argv: this.net.enterNet(host.name, [process.execPath, AGENT_ENTRY]),
      env,
      logFile: join(host.root, 'agent.log'),
      ready: (_line, json) => json?.msg === 'agent ready',
      onLine: (line) => agent.onLine(line),
      // Replies are the test's business; failed ones are kept, for the log of a failing test.
      keep: (line) => !line.startsWith('{"id"') || line.includes('"ok":false'),
    });
    this.agent = agent;
  }

  /** Starts the mount unit on the mount host; the mount is visible to the test process (same mount namespace). */
  async startMount(): Promise<void> {
    this.mountProcess = await this.startUnit(this.mountHost, 'dfs-mount.service', 'mount', 60_000);
  }

  /** Stops the mount as systemd would: SIGTERM, then the unit's ExecStopPost (fusermount -uz). */
  async stopMount(): Promise<void> {
    const p = this.mountProcess;
    if (!p) return;
    await p.stop(15_000);
    const unitFile = join(REPO_ROOT, 'deploy', 'systemd', 'dfs-mount.service');
    const { env, processEnv } = this.unitEnv(this.mountHost, unitFile);
    for (const post of readUnit(unitFile).get('ExecStopPost') ?? []) {
      const argv = expandExec(post, env, this.hostPaths(this.mountHost));
      await run(argv[0]!, argv.slice(1), { env: processEnv, cleanEnv: true, timeoutMs: 15_000 });
    }
    await forceUnmount(this.mountpoint);
    this.mountProcess = undefined;
  }

  /** Runs `dfs ARGS` on a client host as provision.sh's wrapper does (dfs.env in the environment, DFS_SECRET_FILE). */
  cli(args: string[], options: { host?: Host; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    const host = options.host ?? this.agentHost;
    const env = { PATH: process.env.PATH, ...Object.fromEntries(host.env), DFS_SECRET_FILE: host.secretFile };
    const argv = this.net.enterNet(host.name, [process.execPath, dfsEntry(), ...args]);
    return run(argv[0]!, argv.slice(1), { env, cleanEnv: true, timeoutMs: options.timeoutMs ?? 120_000, ...(options.input !== undefined ? { input: options.input } : {}) });
  }

  /** Runs a shell command on a host (inside its network namespace). */
  sh(host: Host, command: string, timeoutMs = 120_000): Promise<RunResult> {
    const argv = this.net.enterNet(host.name, ['/bin/bash', '-c', command]);
    return run(argv[0]!, argv.slice(1), { timeoutMs, env: { PATH: process.env.PATH, HOME: process.env.HOME }, cleanEnv: true });
  }

  cut(host: Host): Promise<void> {
    return this.net.cut(host.name);
  }

  plug(host: Host): Promise<void> {
    return this.net.plug(host.name);
  }

  status(): Promise<ClusterStatus> {
    return this.agent.ns<ClusterStatus>('status', {});
  }

  info(path: string): Promise<FileInfo> {
    return this.agent.ns<FileInfo>('info', { path });
  }

  /** Polls until `check` holds, or fails with what it last saw. */
  waitFor<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000, intervalMs = 150): Promise<T> {
    return pollUntil(what, probe, check, timeoutMs, intervalMs);
  }

  waitAlive(count: number, timeoutMs = 30_000): Promise<ClusterStatus> {
    return this.waitFor('storage servers alive', () => this.status(), (s) => s.storage.alive === count, timeoutMs);
  }

  /** Waits until every referenced chunk has exactly its target number of live copies. */
  waitConverged(timeoutMs = 30_000): Promise<ClusterStatus> {
    return this.waitFor('replication to converge', () => this.status(), (s) => s.underReplicated === 0 && s.overReplicated === 0 && s.unavailable === 0, timeoutMs);
  }

  /** The state the name server gives the server of a storage host now. */
  async stateOf(host: StorageHost): Promise<string | undefined> {
    return (await this.status()).servers.find((s) => s.id === host.id)?.state;
  }

  /** The last log lines of every process, for a failing test. */
  logs(lines = 40): string {
    const parts: string[] = [];
    const add = (label: string, p: HostProcess | undefined): void => {
      if (p) parts.push(`--- ${label} (pid ${p.pid}) ---\n${p.lines.slice(-lines).join('\n')}`);
    };
    add(`name server on ${this.nameHost?.address}`, this.nameServer);
    for (const s of this.storage) add(`${s.name} ${s.address} (${s.id})`, s.process);
    add('agent', this.agent?.process);
    add('mount', this.mountProcess);
    return parts.join('\n');
  }

  /** Copies every host's logs (and dfs.env) to `dest`, for a look after a failed run. */
  async saveLogs(dest: string): Promise<void> {
    for (const host of this.hosts) {
      await mkdir(join(dest, host.name), { recursive: true });
      for (const name of await readdir(host.root).catch(() => [] as string[])) {
        if (name.endsWith('.log')) await copyFile(join(host.root, name), join(dest, host.name, name)).catch(() => undefined);
      }
      await copyFile(host.envFile, join(dest, host.name, 'dfs.env')).catch(() => undefined);
    }
  }

  /** Stops everything in reverse order and removes the network and the run's folder; never throws. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopMount().catch(() => undefined);
    this.agent?.close();
    await Promise.all(this.storage.map((s) => s.process?.stop(2_000)));
    await this.nameServer?.stop(2_000);
    await this.agent?.process?.stop(2_000);
    for (const dir of mountsUnder(this.dir)) await run('umount', ['-l', dir]);
    await this.net.remove();
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    clusters.delete(this);
  }

  /** The same, synchronously, from a process 'exit' handler. */
  teardownSync(): void {
    for (const dir of mountsUnder(this.dir)) {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // gone
      }
    }
    this.net.removeSync();
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}


/** The test's side of agent.ts. */
export class Agent {
  process: HostProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  onLine(line: string): void {
    if (!line.startsWith('{"id"')) return;
    let msg: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string } };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    clearTimeout(waiter.timer);
    if (msg.ok) waiter.resolve(msg.result);
    else waiter.reject(isErrorCode(msg.error?.code) ? new DfsError(msg.error.code, msg.error.message) : new Error(msg.error?.message));
  }

  call<T>(request: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    const p = this.process;
    if (!p?.running()) return Promise.reject(new Error('the agent is not running'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`agent ${String(request.op)} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      p.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  ns<T>(route: string, input: Record<string, unknown>): Promise<T> {
    return this.call<T>({ op: 'ns', route, input }, 30_000);
  }

  write(path: string, size: number): Promise<{ path: string; size: number; sha: string; ms: number }> {
    return this.call({ op: 'write', path, size });
  }

  read(path: string): Promise<{ path: string; size: number; sha: string }> {
    return this.call({ op: 'read', path });
  }

  close(): void {
    this.process?.child.stdin?.end();
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('agent closed'));
    }
    this.pending.clear();
  }
}

export { sleep } from '../poll.js';

// What is on a storage host's disk: the same readers as the single-host tests'.
export {
  badChunkFiles as badChunksOnDisk,
  chunkFiles as chunksOnDisk,
  chunkIntact,
  chunkPath as chunkFile,
  copiesOnDisks,
  corruptChunk,
  diskFree,
  fillDisk,
  uploadsOnDisk,
} from '../disk-chunks.js';
