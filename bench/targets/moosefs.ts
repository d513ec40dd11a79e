import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun, run, sleep, startChild, waitMounted, forceUnmount, type Child } from '../proc.js';
import { createNetNs, type NetNs } from './netns.js';
import type { RunningTarget, Target } from './target.js';

/**
 * MooseFS (Debian's moosefs-master, -chunkserver, -client; bench/setup.sh installs them): a master and
 * chunkservers inside a network namespace of our own, mounted from the host with mfsmount, goal 2 on the
 * mount's root. Every daemon runs as root at nice 0 (MooseFS would renice itself to -19, an unfair edge
 * on a shared machine), with its files in one temp folder. `fsync: true` (the `moosefs-fsync` target)
 * sets the chunkservers' HDD_FSYNC_BEFORE_CLOSE, off by default: they fsync a chunk when they close it.
 * Without it MooseFS's writes, fsync included, end in the chunkservers' page cache. (Measured here, that
 * close comes after the client's fsync has returned; dfs fsyncs every copy before it acknowledges.)
 */

const EMPTY_METADATA = '/var/lib/mfs/metadata.mfs.empty';
const MASTER_CLIENT_PORT = 9421;

function config(lines: Record<string, string | number>): string {
  return `${Object.entries(lines)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n')}\n`;
}

let instances = 0;

export function moosefsTarget(options: { chunkservers?: number; goal?: number; fsync?: boolean } = {}): Target {
  const chunkservers = options.chunkservers ?? 3;
  const goal = options.goal ?? 2;
  return {
    name: options.fsync ? 'moosefs-fsync' : 'moosefs',
    async start(): Promise<RunningTarget> {
      if (process.getuid?.() !== 0) throw new Error('the MooseFS target needs root (a network namespace, mounts)');
      for (const bin of ['mfsmaster', 'mfschunkserver', 'mfsmount', 'mfssetgoal']) {
        if ((await run('which', [bin])).code !== 0) throw new Error(`${bin} is not installed: run bench/setup.sh`);
      }
      if (!existsSync(EMPTY_METADATA)) throw new Error(`${EMPTY_METADATA} is missing: is moosefs-master installed?`);

      const root = await mkdtemp(join(tmpdir(), 'dfsbench-mfs-'));
      const mnt = join(root, 'mnt');
      let ns: NetNs | undefined;
      let master: Child | undefined;
      const servers: Child[] = [];
      let mount: Child | undefined;
      const stop = async (): Promise<void> => {
        // Unmounting ends a foreground mfsmount by itself.
        await run('umount', [mnt], { timeoutMs: 30_000 });
        await mount?.stop(10_000);
        await forceUnmount(mnt).catch(() => undefined);
        await Promise.all(servers.map((s) => s.stop(15_000)));
        await master?.stop(15_000);
        await ns?.remove();
        await rm(root, { recursive: true, force: true }).catch(() => undefined);
      };
      try {
        ns = await createNetNs(`${process.pid}${instances++ % 100}`);
        const logs = join(root, 'logs');
        await mkdir(logs);
        await mkdir(mnt);
        const masterDir = join(root, 'master');
        await mkdir(masterDir);
        await copyFile(EMPTY_METADATA, join(masterDir, 'metadata.mfs'));
        await writeFile(join(root, 'mfsexports.cfg'), '*\t/\trw,alldirs,admin,maproot=0:0\n');
        await writeFile(join(root, 'mfstopology.cfg'), '');
        const common = { WORKING_USER: 'root', WORKING_GROUP: 'root', NICE_LEVEL: 0 };
        await writeFile(
          join(root, 'mfsmaster.cfg'),
          config({
            ...common,
            DATA_PATH: masterDir,
            EXPORTS_FILENAME: join(root, 'mfsexports.cfg'),
            TOPOLOGY_FILENAME: join(root, 'mfstopology.cfg'),
            MATOML_LISTEN_HOST: ns.nsAddr,
            MATOCS_LISTEN_HOST: ns.nsAddr,
            MATOCL_LISTEN_HOST: ns.nsAddr,
            MATOCL_LISTEN_PORT: MASTER_CLIENT_PORT,
          }),
        );
        // The master logs some lines twice (stderr and syslog style): count chunkservers by port.
        const registered = new Set<string>();
        const [mcmd, margs] = ns.exec('mfsmaster', ['-c', join(root, 'mfsmaster.cfg'), '-f']);
        master = await startChild(mcmd, margs, {
          logFile: join(logs, 'mfsmaster.log'),
          ready: (l) => l.includes('mfsmaster daemon initialized properly'),
          onLine: (l) => {
            const m = /chunkserver register end .*port: (\d+)/.exec(l);
            if (m) registered.add(m[1]!);
          },
        });
        for (let i = 0; i < chunkservers; i++) {
          const dir = join(root, `cs${i}`);
          await mkdir(join(dir, 'data'), { recursive: true });
          await writeFile(join(dir, 'mfshdd.cfg'), `${join(dir, 'data')}\n`);
          await writeFile(
            join(dir, 'mfschunkserver.cfg'),
            config({
              ...common,
              DATA_PATH: dir,
              HDD_CONF_FILENAME: join(dir, 'mfshdd.cfg'),
              MASTER_HOST: ns.nsAddr,
              BIND_HOST: ns.nsAddr,
              CSSERV_LISTEN_HOST: ns.nsAddr,
              CSSERV_LISTEN_PORT: 9422 + 10 * i,
              ...(options.fsync ? { HDD_FSYNC_BEFORE_CLOSE: 1 } : {}),
            }),
          );
          const [cmd, args] = ns.exec('mfschunkserver', ['-c', join(dir, 'mfschunkserver.cfg'), '-f']);
          servers.push(await startChild(cmd, args, { logFile: join(logs, `mfschunkserver-${i}.log`), ready: (l) => l.includes('mfschunkserver daemon initialized properly') }));
        }
        const deadline = Date.now() + 30_000;
        while (registered.size < chunkservers) {
          if (Date.now() > deadline) throw new Error(`only ${registered.size} of ${chunkservers} chunkservers registered with mfsmaster:\n${master.lines.slice(-10).join('\n')}`);
          await sleep(100);
        }
        mount = await startChild('mfsmount', [mnt, '-f', '-H', ns.nsAddr, '-P', String(MASTER_CLIENT_PORT), '-o', 'mfsnice=0'], { logFile: join(logs, 'mfsmount.log') });
        await waitMounted(mnt);
        await mustRun('mfssetgoal', ['-r', String(goal), mnt]);
        const got = (await mustRun('mfsgetgoal', [mnt])).trim();
        if (!got.endsWith(`: ${goal}`)) throw new Error(`mfsgetgoal says "${got}", not goal ${goal}`);
      } catch (err) {
        await stop();
        throw err;
      }
      const version = (await run('mfsmaster', ['-v'])).stdout.trim();
      const m = mount;
      return {
        dir: mnt,
        processes: [
          { role: 'mfsmount', pid: m.pid },
          { role: 'mfsmaster', pid: master.pid },
          ...servers.map((s, i) => ({ role: `mfschunkserver-${i}`, pid: s.pid })),
        ],
        info: { version, namespace: ns.name, master: `${ns.nsAddr}:${MASTER_CLIENT_PORT}`, chunkservers, goal, fsyncBeforeClose: options.fsync ?? false },
        diagnose: async () => {
          const parts: string[] = [];
          for (const name of ['mfsmount', 'mfsmaster', ...servers.map((_, i) => `mfschunkserver-${i}`)]) {
            const text = await readFile(join(root, 'logs', `${name}.log`), 'utf8').catch(() => '');
            parts.push(`--- ${name} ---\n${text.trimEnd().split('\n').slice(-10).join('\n')}`);
          }
          return parts.join('\n');
        },
        stop,
      };
    },
  };
}
