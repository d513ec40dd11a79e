import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pidAlive } from '../bench/proc.js';
import { CLI_ENTRY } from '../common/daemon-process.js';
import type { ClusterStatus } from '../protocol/name-api.js';
import { runCli, sleep } from './harness.js';
import { assertCliError, assertCliOk } from './http-helpers.js';

/** `dfs up` as a user runs it: a whole cluster in the foreground, found by client commands through its state dir. */

/** The environment of a user with no cluster settings but DFS_STATE. */
function stateOnlyEnv(stateDir: string): NodeJS.ProcessEnv {
  return { DFS_STATE: stateDir, DFS_NAME_SERVER: undefined, DFS_SECRET: undefined, DFS_SECRET_FILE: undefined, XDG_STATE_HOME: undefined };
}

interface Up {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Clusters still running when this worker exits (a timeout): SIGINT lets `dfs up` stop its own daemons. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGINT');
});

function startUp(t: ExecutionContext, stateDir: string): Up {
  // No mount (the daemons are what is under test here); should --no-mount be ignored, the mount lands in the state dir, not in ~/dfs.
  const child = spawn(process.execPath, [CLI_ENTRY, 'up', '--state', stateDir, '--port', '0', '--storage-servers', '2', '--no-mount'], {
    env: { ...process.env, ...stateOnlyEnv(stateDir), DFS_MOUNT: join(stateDir, 'mnt') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  running.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  // In every outcome: stop `dfs up`, and any daemon of it that outlived it (by pid, from its logs).
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    for (const pid of await daemonPids(stateDir)) {
      // Only a daemon of this state dir (a pid from a log may have been reused by now).
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(stateDir)) process.kill(pid, 'SIGKILL');
    }
  });
  return { child, output: () => output, exited };
}

const LOGS = ['name-server.log', 'storage-1.log', 'storage-2.log'];

/** JSON lines of a daemon's log (logs are appended to across runs). */
async function logLines(stateDir: string, name: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(stateDir, 'logs', name), 'utf8').catch(() => '');
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/** The pids of the daemons the latest `dfs up` started, from their latest `listening` log line. */
async function daemonPids(stateDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of LOGS) {
    const listening = (await logLines(stateDir, name)).filter((l) => l.msg === 'listening' && typeof l.pid === 'number');
    const last = listening[listening.length - 1];
    if (last) pids.push(last.pid as number);
  }
  return pids;
}


async function until<T>(what: string, probe: () => Promise<T | undefined>, up: Up, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (up.child.exitCode !== null || up.child.signalCode !== null) throw new Error(`dfs up exited while waiting for ${what}:\n${up.output()}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}:\n${up.output()}`);
}

async function refuses(url: string): Promise<boolean> {
  try {
    await fetch(new URL('/status', url), { signal: AbortSignal.timeout(3_000) });
    return false;
  } catch (err) {
    return ((err as { cause?: { code?: string } }).cause?.code ?? '') === 'ECONNREFUSED';
  }
}

/** Waits until the cluster of a state dir is up with both storage servers alive, as `dfs status` tells. */
async function waitReady(stateDir: string, up: Up): Promise<ClusterStatus> {
  await until('client.json', async () => (existsSync(join(stateDir, 'client.json')) ? true : undefined), up);
  return until(
    'both storage servers alive',
    async () => {
      const r = await runCli(['status', '--json'], { env: stateOnlyEnv(stateDir) });
      if (r.code !== 0) return undefined;
      const s = JSON.parse(r.stdout) as ClusterStatus;
      return s.storage.alive === 2 ? s : undefined;
    },
    up,
  );
}

async function stopWithSigint(t: ExecutionContext, up: Up, stateDir: string, run: number): Promise<void> {
  const pids = await daemonPids(stateDir);
  t.is(pids.length, 3, `pids of the name server and both storage servers: ${pids.join(', ')}`);
  t.true(pids.every(pidAlive), 'every daemon runs before the SIGINT');
  up.child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 20_000)));
  const result = await Promise.race([up.exited, timeout]);
  clearTimeout(timer);
  t.not(result, 'timeout', `dfs up did not exit after SIGINT:\n${up.output()}`);
  t.deepEqual(result, { code: 0, signal: null }, up.output());
  for (const pid of pids) t.false(pidAlive(pid), `daemon ${pid} outlived dfs up`);
  // Each daemon was shut down cleanly (not killed), and says so in its log.
  for (const name of LOGS) {
    const stops = (await logLines(stateDir, name)).filter((l) => l.msg === 'shutting down' && pids.includes(l.pid as number));
    t.is(stops.length, 1, `${name} shows no clean shutdown of run ${run}`);
  }
}

test.serial('dfs up runs a cluster that plain client commands find through DFS_STATE, and SIGINT stops all of it', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'dfs-up-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const up = startUp(t, stateDir);
  const status = await waitReady(stateDir, up);
  t.is(status.servers.length, 2);

  // What `dfs up` printed: the name server's and both storage servers' URLs, which answer.
  const urls = [...up.output().matchAll(/^(?:name server|storage server)\s+(http:\/\/\S+)/gm)].map((m) => m[1]!);
  t.is(urls.length, 3, up.output());
  t.deepEqual(status.servers.map((s) => s.url).sort(), urls.slice(1).sort());
  t.notRegex(up.output(), /mounted at/, '--no-mount starts no mount');
  t.false(existsSync(join(stateDir, 'logs', 'mount.log')));
  // The secret is its owner's only, and so is the client config.
  t.is((await stat(join(stateDir, 'secret'))).mode & 0o777, 0o600);
  t.is((await stat(join(stateDir, 'client.json'))).mode & 0o777, 0o600);

  // Plain client commands, with nothing but DFS_STATE: no flags, no secret in the environment.
  const env = stateOnlyEnv(stateDir);
  const ls = await runCli(['ls', '/'], { env });
  assertCliOk(t, ls, 'dfs ls /');
  t.is(ls.stdout, '');
  const local = join(stateDir, 'upload.bin');
  const content = randomBytes(300_000);
  await writeFile(local, content);
  assertCliOk(t, await runCli(['put', local, '/'], { env }), 'dfs put');
  t.is((await runCli(['ls', '/'], { env })).stdout, 'upload.bin\n');
  const cat = await runCli(['get', '/upload.bin', join(stateDir, 'back.bin')], { env });
  assertCliOk(t, cat, 'dfs get');
  t.true((await readFile(join(stateDir, 'back.bin'))).equals(content));
  // --state finds it too, whatever DFS_STATE says.
  const byFlag = await runCli(['ls', '--state', stateDir, '/'], { env: { ...env, DFS_STATE: join(stateDir, 'elsewhere') } });
  assertCliOk(t, byFlag, 'dfs ls --state');
  t.is(byFlag.stdout, 'upload.bin\n');
  const text = await runCli(['status'], { env });
  t.regex(text.stdout, /storage servers:\s+2 alive, 0 suspect, 0 dead/);

  await stopWithSigint(t, up, stateDir, 1);
  for (const url of urls) t.true(await refuses(url), `${url} still answers`);
  // A client of the stopped cluster fails with one line, not a hang or a stack.
  assertCliError(t, await runCli(['ls', '/'], { env, timeoutMs: 30_000 }), /ECONNREFUSED|did not answer|timed out/, 'ls after the stop');

  // Started again on the same state, it has the same secret, servers and data.
  await rm(join(stateDir, 'client.json'));
  const again = startUp(t, stateDir);
  const status2 = await waitReady(stateDir, again);
  t.deepEqual(status2.servers.map((s) => s.id).sort(), status.servers.map((s) => s.id).sort());
  const got = await runCli(['get', '/upload.bin', join(stateDir, 'back2.bin')], { env });
  assertCliOk(t, got, 'dfs get after a restart');
  t.true((await readFile(join(stateDir, 'back2.bin'))).equals(content));
  await stopWithSigint(t, again, stateDir, 2);
});
