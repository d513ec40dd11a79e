import { execFileSync } from 'node:child_process';
import { mustRun, pidAlive, run } from '../../bench/proc.js';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Network namespaces for a multi-host cluster on one machine. Every host gets a namespace of its own with
 * one interface, `eth0`, cabled to a bridge that lives in a namespace of its own too: nothing is added to
 * the machine's own (root) network namespace, so several runs side by side never see each other, and no
 * address outside the run's namespaces is ever used.
 *
 *   dfsc-<pid>-<n>-br      the switch: bridge `br0`, one port `p-<host>` per host
 *   dfsc-<pid>-<n>-<host>  a host: `lo` and `eth0` (10.77.<x>.<k>/24)
 *
 * The owner's pid is in every name, so a later run can tell leftovers of a run that died (kill -9, a test
 * timeout) from namespaces in use, and reap them.
 */

const PREFIX = 'dfsc';
const NETNS_DIR = '/run/netns';

export { mustRun, run, type RunResult } from '../../bench/proc.js';


/** Pids of the processes inside a namespace (only ever ones of our own namespaces). */
function pidsInSync(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Kills what runs in a namespace and deletes it; false if it was gone already. */
function destroyNamespaceSync(ns: string): boolean {
  for (const pid of pidsInSync(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { timeout: 10_000, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes namespaces a run of this harness left behind when it died before its teardown (its pid is
 * gone), killing what still runs inside them: processes that run started.
 */
export function reapStaleNamespaces(): string[] {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const ns of names) {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(ns);
    if (!m || pidAlive(Number(m[1]))) continue;
    if (destroyNamespaceSync(ns)) reaped.push(ns);
  }
  return reaped;
}

let networks = 0;

export interface NetHost {
  /** The short name (`name`, `storage1`, `client1`). */
  host: string;
  /** Its network namespace. */
  ns: string;
  address: string;
}

/** A switch and the hosts cabled to it. */
export class Network {
  readonly bridgeNs: string;
  readonly hosts = new Map<string, NetHost>();
  private removed = false;

  private constructor(
    readonly id: string,
    /** The first three octets of the run's /24. */
    readonly subnet: string,
  ) {
    this.bridgeNs = `${id}-br`;
  }

  /** A switch in a namespace of its own, for hosts in 10.77.<x>.0/24. */
  static async create(): Promise<Network> {
    reapStaleNamespaces();
    const n = networks++;
    const id = `${PREFIX}-${process.pid}-${n}`;
    // The /24 only has to be unique inside this run's own namespaces; varying it keeps logs of runs apart.
    const net = new Network(id, `10.77.${((process.pid + n) % 250) + 1}`);
    Network.live.add(net);
    try {
      await mustRun('ip', ['netns', 'add', net.bridgeNs]);
      await net.inBridge(['link', 'add', 'br0', 'type', 'bridge']);
      await net.inBridge(['link', 'set', 'br0', 'up']);
      await net.inBridge(['link', 'set', 'lo', 'up']);
    } catch (err) {
      await net.remove();
      throw err;
    }
    return net;
  }

  /** Networks not yet removed: torn down by the exit handler if a test never got to. */
  static readonly live = new Set<Network>();

  private inBridge(args: string[]): Promise<string> {
    return mustRun('ip', ['-n', this.bridgeNs, ...args]);
  }

  /** Adds a host: its namespace, `eth0` with `10.77.<x>.<octet>/24`, cabled to the switch. */
  async addHost(host: string, octet: number): Promise<NetHost> {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(host)) throw new Error(`bad host name ${host}`);
    const ns = `${this.id}-${host}`;
    const address = `${this.subnet}.${octet}`;
    const entry = { host, ns, address };
    this.hosts.set(host, entry);
    await mustRun('ip', ['netns', 'add', ns]);
    // Both ends are made inside our namespaces: the root namespace never sees the pair.
    await this.inBridge(['link', 'add', this.port(host), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.inBridge(['link', 'set', this.port(host), 'master', 'br0']);
    await this.inBridge(['link', 'set', this.port(host), 'up']);
    await mustRun('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await mustRun('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await mustRun('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return entry;
  }

  get(host: string): NetHost {
    const h = this.hosts.get(host);
    if (!h) throw new Error(`no host ${host}`);
    return h;
  }

  private port(host: string): string {
    return `p-${host}`;
  }

  /** Pulls a host's cable at the switch (its own interface stays configured, as with a real cable). */
  async cut(host: string): Promise<void> {
    await this.inBridge(['link', 'set', this.port(this.get(host).host), 'down']);
  }

  /** Plugs it back in. */
  async plug(host: string): Promise<void> {
    await this.inBridge(['link', 'set', this.port(this.get(host).host), 'up']);
  }

  /** Limits the bytes per second the switch sends to a host (tbf on its port), or lifts the limit. */
  async throttle(host: string, rate: string | undefined): Promise<void> {
    const dev = this.port(this.get(host).host);
    if (rate) await mustRun('ip', ['netns', 'exec', this.bridgeNs, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', '64kb', 'latency', '2s']);
    else await run('ip', ['netns', 'exec', this.bridgeNs, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
  }

  /** argv that runs a program in a host's network namespace (and, as `ip netns exec` does, a mount namespace of its own). */
  exec(host: string, argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.get(host).ns, ...argv];
  }

  /** argv that runs a program in a host's network namespace only: mounts it makes (FUSE) are seen by everyone. */
  enterNet(host: string, argv: string[]): string[] {
    return ['nsenter', `--net=${NETNS_DIR}/${this.get(host).ns}`, ...argv];
  }

  /** Every namespace of this network. */
  namespaces(): string[] {
    return [...[...this.hosts.values()].map((h) => h.ns), this.bridgeNs];
  }

  /** Kills whatever still runs in its namespaces (processes this run started) and deletes them; never throws. */
  async remove(): Promise<void> {
    this.removeSync();
  }

  /** The same, synchronously (also from a process 'exit' handler): a few `ip` calls, in the test process only. */
  removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    for (const ns of this.namespaces()) destroyNamespaceSync(ns);
    Network.live.delete(this);
  }
}

/** Namespaces of this process still present (for tests that check teardown). */
export function ownNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR).filter((ns) => ns.startsWith(`${PREFIX}-${process.pid}-`));
  } catch {
    return [];
  }
}

/** Mount points under `dir` (FUSE or tmpfs), deepest first. */
export function mountsUnder(dir: string): string[] {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}
