/**
 * `npm run cluster:netns`: the multi-host cluster of the network tests (hosts.ts), brought up for a person
 * to use. A name-server host, storage hosts and client hosts, each a network namespace on one switch, every
 * daemon started from its systemd unit as on a provisioned host, the mount unit on the last client host.
 * It prints how to enter each host, then waits; Ctrl-C (SIGINT), SIGTERM or SIGHUP stops the daemons and
 * removes the mount, the namespaces and the run's temp dir. Lines typed on its standard input inject faults
 * (`help` lists them). Needs root: network namespaces and FUSE mounts as root.
 *
 *   node dist/test/cluster/up.js [--storage-hosts 3] [--clients 2] [--no-mount] [--replicas 2]
 *                                [--health-interval 1000] [--health-misses 3]
 */
import { rmSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { CLI_ENTRY } from '../../common/daemon-process.js';
import { NetCluster, REPO_ROOT, type Host } from './hosts.js';
import { mountsUnder, Network } from './netns.js';
import { liveProcesses, type HostProcess } from './process.js';

const NAME = 'cluster:netns';

const args = yargs(hideBin(process.argv))
  .scriptName('node dist/test/cluster/up.js')
  .usage('$0 [options]\n\nA dfs cluster on network namespaces (a name-server host, storage hosts, client hosts), until Ctrl-C. Needs root.')
  .option('storage-hosts', { type: 'number', default: 3, describe: 'storage hosts (1 to 9)' })
  .option('clients', { type: 'number', default: 2, describe: 'client hosts (1 to 5); the mount runs on the last one' })
  .option('mount', { type: 'boolean', default: true, describe: 'start the mount unit on the last client host (--no-mount: none)' })
  .option('replicas', { type: 'number', default: 2, describe: 'copies of every chunk' })
  .option('health-interval', { type: 'number', default: 1000, describe: "the name server's health check interval, ms (dfs.env's default)" })
  .option('health-misses', { type: 'number', default: 3, describe: 'missed checks after which a storage server is dead' })
  .strict()
  .help()
  .version(false)
  .parseSync();

function fail(message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(1);
}

const inRange = (value: number, min: number, max: number): boolean => Number.isInteger(value) && value >= min && value <= max;
if (!inRange(args['storage-hosts'], 1, 9)) fail('--storage-hosts must be 1 to 9');
if (!inRange(args.clients, 1, 5)) fail('--clients must be 1 to 5');
if (!inRange(args.replicas, 1, args['storage-hosts'])) fail('--replicas must be 1 to the number of storage hosts');
if (!inRange(args['health-interval'], 50, 600_000)) fail('--health-interval must be 50 to 600000 ms');
if (!inRange(args['health-misses'], 1, 100)) fail('--health-misses must be 1 to 100');
if (process.getuid?.() !== 0) fail('needs root (it makes network namespaces and a FUSE mount): run `sudo npm run cluster:netns`');

/** What `/opt/dfs/bin/dfs.js` is on these hosts: the CLI of this same build (as hosts.ts picks it). */
const dfsEntry = resolve(REPO_ROOT, 'dist', 'cli', 'main.js') === CLI_ENTRY ? join(REPO_ROOT, 'bin', 'dfs.js') : CLI_ENTRY;

const out = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};

/**
 * Last-resort teardown, synchronous, on any exit before a clean stop (a second Ctrl-C, a failed start, a
 * crash): kill what this run started, unmount under its temp dirs, delete its namespaces, remove the dirs.
 * hosts.ts's own exit handler does the same for a cluster that finished starting; this one also covers a
 * cluster still being built. Only this process's own things: its temp dirs carry its pid, as do its namespaces.
 */
function teardownNow(): void {
  for (const p of liveProcesses) p.kill('SIGKILL');
  let dirs: string[] = [];
  try {
    dirs = readdirSync(tmpdir())
      .filter((name) => name.startsWith(`dfs-cluster-${process.pid}-`))
      .map((name) => join(tmpdir(), name));
  } catch {
    // no temp dir
  }
  for (const dir of dirs) {
    for (const mount of mountsUnder(dir)) {
      try {
        execFileSync('umount', ['-l', mount], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // gone
      }
    }
  }
  for (const net of [...Network.live]) net.removeSync();
  // Only once nothing is mounted under them any more: rm must never walk into a live mount.
  for (const dir of dirs) if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', teardownNow);

let cluster: NetCluster | undefined;
let stopping: Promise<void> | undefined;

function stop(reason: string): void {
  if (stopping || !cluster) {
    // A second signal, or one while the cluster is still starting: no waiting.
    out(`\n${reason}: tearing everything down now`);
    process.exit(130);
  }
  out(`\n${reason}: stopping the cluster (again to stop at once)…`);
  const c = cluster;
  stopping = (async () => {
    const keep = process.env.DFS_CLUSTER_LOGS;
    if (keep) {
      const dest = join(keep, `cluster-netns-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      await c.saveLogs(dest).catch((err: unknown) => out(`could not keep the logs: ${String(err)}`));
      out(`logs kept in ${dest}`);
    }
    await c.stop();
    out(`stopped: daemons ended, mount and namespaces ${c.net.namespaces().join(' ')} removed, ${c.dir} deleted`);
    process.exit(0);
  })();
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));

/** A bash startup file for a host: the env a provisioned host's `dfs` wrapper has, a `dfs` function, a prompt. */
function writeRcFile(c: NetCluster, host: Host): string {
  const file = join(host.root, 'bashrc');
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(
    file,
    [
      `# ${host.name} (${host.address}) of the cluster:netns run ${process.pid}`,
      '[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc',
      '[ -f ~/.bashrc ] && . ~/.bashrc',
      `export DFS_NAME_SERVER=${q(c.nameServerUrl)}`,
      `export DFS_SECRET_FILE=${q(host.secretFile)}`,
      `dfs() { ${q(process.execPath)} ${q(dfsEntry)} "$@"; }`,
      `PS1=${q(`[dfs ${host.name} \\W]\\$ `)}`,
      '',
    ].join('\n'),
  );
  return file;
}

function describe(c: NetCluster): void {
  const pid = (p: HostProcess | undefined): string => (p ? `pid ${p.pid}` : 'not running');
  const rows: string[][] = [['host', 'address', 'namespace', 'runs']];
  rows.push([c.nameHost.name, c.nameHost.address, c.nameHost.ns, `name server ${c.nameServerUrl} (${pid(c.nameServer)})`]);
  for (const s of c.storage) rows.push([s.name, s.address, s.ns, `storage server ${s.url}, id ${s.id} (${pid(s.process)})`]);
  for (const h of c.clients) {
    const runs = [h === c.agentHost ? 'client (the harness agent)' : 'client'];
    if (c.mountProcess && h === c.mountHost) runs.push(`mount ${c.mountpoint} (${pid(c.mountProcess)})`);
    rows.push([h.name, h.address, h.ns, runs.join(', ')]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const client = c.clients[0]!;
  const rc = new Map(c.hosts.map((h) => [h, writeRcFile(c, h)]));
  out();
  out(`dfs cluster up: ${c.storage.length} storage hosts, ${c.clients.length} client hosts, ${c.options.replicas} replicas; run dir ${c.dir}`);
  out();
  for (const r of rows) out(`  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`);
  out();
  out('Enter a host, as root in another terminal (a shell with DFS_NAME_SERVER, DFS_SECRET_FILE and a `dfs` command):');
  for (const h of c.hosts) out(`  ip netns exec ${h.ns} bash --rcfile ${rc.get(h)}`);
  out('or set the environment yourself:');
  out(`  nsenter --net=/run/netns/${client.ns} env DFS_NAME_SERVER=${c.nameServerUrl} DFS_SECRET_FILE=${client.secretFile} bash`);
  out(`  ${process.execPath} ${dfsEntry} status`);
  if (c.mountProcess) out(`The mount (${c.mountHost.name}'s dfs-mount unit): ${c.mountpoint}, seen from every host and from here.`);
  out(`Logs: ${c.dir}/<host>/*.log (DFS_LOG_LEVEL=debug for more; DFS_CLUSTER_LOGS=DIR keeps them on exit).`);
  out(`Faults by hand: ip -n ${c.net.bridgeNs} link set p-storage2 down (up: back), or type \`help\` here.`);
  out('Ctrl-C stops everything and removes the mount, the namespaces and the run dir; shells left in a host are ended.');
  out();
}

/** Faults typed on standard input: the harness's own operations, by host name. */
function commands(c: NetCluster): void {
  const help = [
    'status                 dfs status, run on the first client host',
    'cut HOST | plug HOST   pull a host\'s cable at the switch / plug it back in',
    'stop HOST | kill HOST  SIGTERM / SIGKILL a storage host\'s server',
    'start HOST             start a storage host\'s server again (same data dir)',
    'help                   this list',
  ];
  const host = (name: string | undefined): Host => {
    const h = c.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name ?? ''} (hosts: ${c.hosts.map((x) => x.name).join(' ')})`);
    return h;
  };
  const storageN = (name: string | undefined): number => {
    const s = c.storage.find((x) => x.name === name);
    if (!s) throw new Error(`no storage host ${name ?? ''} (storage hosts: ${c.storage.map((x) => x.name).join(' ')})`);
    return s.n;
  };
  // End of input (</dev/null, a closed pipe) just means no commands: the cluster stays up until a signal.
  const rl = createInterface({ input: process.stdin, terminal: false });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    const [cmd, name] = line.trim().split(/\s+/);
    if (!cmd || stopping) return;
    queue = queue.then(async () => {
      try {
        switch (cmd) {
          case 'status': {
            const r = await c.cli(['status'], { timeoutMs: 30_000 });
            process.stdout.write(r.stdout || r.stderr);
            break;
          }
          case 'cut':
            await c.cut(host(name));
            out(`${name} cut off the switch`);
            break;
          case 'plug':
            await c.plug(host(name));
            out(`${name} plugged back in`);
            break;
          case 'stop':
            await c.stopStorage(storageN(name));
            out(`${name}'s storage server stopped`);
            break;
          case 'kill':
            await c.killStorage(storageN(name));
            out(`${name}'s storage server killed`);
            break;
          case 'start': {
            const s = c.storageHost(storageN(name));
            if (s.process?.running()) throw new Error(`${name}'s storage server is running (pid ${s.process.pid})`);
            await c.startStorage(s.n);
            watch(s.process!, `${name}'s storage server`);
            out(`${name}'s storage server started (pid ${s.process!.pid})`);
            break;
          }
          case 'help':
            out(help.map((l) => `  ${l}`).join('\n'));
            break;
          default:
            out(`unknown command ${cmd}; type help`);
        }
      } catch (err) {
        out(`${cmd}: ${(err as Error).message.split('\n')[0]}`);
      }
    });
  });
}

/** Says so when a daemon ends while the cluster is up (a crash, or someone's kill). */
function watch(p: HostProcess | undefined, what: string): void {
  void p?.exited.then((code) => {
    if (!stopping) out(`${what} (pid ${p.pid}) exited with ${code}`);
  });
}

try {
  out(`${NAME}: starting a name-server host, ${args['storage-hosts']} storage hosts, ${args.clients} client hosts${args.mount ? ' and the mount' : ''}…`);
  cluster = await NetCluster.start({
    storageHosts: args['storage-hosts'],
    clientHosts: args.clients,
    mount: args.mount,
    replicas: args.replicas,
    healthIntervalMs: args['health-interval'],
    healthMisses: args['health-misses'],
  });
} catch (err) {
  fail(`the cluster did not start: ${(err as Error).message}`);
}
describe(cluster);
watch(cluster.nameServer, 'the name server');
for (const s of cluster.storage) watch(s.process, `${s.name}'s storage server`);
watch(cluster.mountProcess, 'the mount');
commands(cluster);
