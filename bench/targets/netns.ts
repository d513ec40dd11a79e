import { mustRun, run } from '../proc.js';

/**
 * A network namespace of our own with a veth pair to the host, addressed in a /30 of 10.213.0.0/16 that
 * no interface on this host uses yet. MooseFS refuses a loopback master address, so its daemons live here
 * and talk over these two addresses only.
 */
export interface NetNs {
  name: string;
  /** The namespace's end of the veth pair. */
  nsAddr: string;
  /** The host's end. */
  hostAddr: string;
  /** argv that runs a program inside the namespace (`ip netns exec` execs it: same pid). */
  exec(cmd: string, args: string[]): [string, string[]];
  /** Kills what still runs inside, deletes the namespace and the veth pair; never throws. */
  remove(): Promise<void>;
}

async function usedAddresses(): Promise<Set<string>> {
  const out = await mustRun('ip', ['-4', '-o', 'addr', 'show']);
  return new Set([...out.matchAll(/inet (10\.213\.\d+\.\d+)\//g)].map((m) => m[1]!));
}

/** A free /30 in 10.213.0.0/16, starting from one derived from our pid (several runs may share a host). */
async function pickSubnet(): Promise<{ nsAddr: string; hostAddr: string }> {
  const used = await usedAddresses();
  for (let k = 0; k < 16384; k++) {
    const slot = (process.pid + k) % 16384;
    const base = slot * 4;
    const prefix = `10.213.${base >> 8}.`;
    const nsAddr = `${prefix}${(base & 255) + 1}`;
    const hostAddr = `${prefix}${(base & 255) + 2}`;
    if (!used.has(nsAddr) && !used.has(hostAddr)) return { nsAddr, hostAddr };
  }
  throw new Error('no free /30 in 10.213.0.0/16');
}

export async function createNetNs(tag: string): Promise<NetNs> {
  const name = `dfsbench-${tag}`;
  const hostIf = `dfsb${tag}h`.slice(0, 15);
  const nsIf = `dfsb${tag}n`.slice(0, 15);
  const { nsAddr, hostAddr } = await pickSubnet();
  const inNs = (args: string[]): Promise<string> => mustRun('ip', ['netns', 'exec', name, 'ip', ...args]);
  const remove = async (): Promise<void> => {
    const pids = (await run('ip', ['netns', 'pids', name])).stdout.split('\n').filter(Boolean);
    // Only processes inside our own namespace, which this harness started.
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await run('ip', ['netns', 'del', name]);
    await run('ip', ['link', 'del', hostIf]);
  };
  try {
    await mustRun('ip', ['netns', 'add', name]);
    await mustRun('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    await mustRun('ip', ['link', 'set', nsIf, 'netns', name]);
    await mustRun('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    await mustRun('ip', ['link', 'set', hostIf, 'up']);
    await inNs(['addr', 'add', `${nsAddr}/30`, 'dev', nsIf]);
    await inNs(['link', 'set', nsIf, 'up']);
    await inNs(['link', 'set', 'lo', 'up']);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    name,
    nsAddr,
    hostAddr,
    exec: (cmd, args) => ['ip', ['netns', 'exec', name, cmd, ...args]],
    remove,
  };
}
