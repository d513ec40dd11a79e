import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The Vagrantfile (README's Vagrant demo) checked with Debian's own `vagrant` (which scripts/setup installs):
 * `vagrant validate --ignore-provider` loads it as `vagrant up` would and checks every machine's settings
 * and provisioners (their files must exist) without a provider or a VM. Vagrant's state and the cluster
 * secret the Vagrantfile makes go to a temp dir (VAGRANT_DOTFILE_PATH, VAGRANT_HOME): nothing is written
 * into the checkout.
 */

/** The checkout: two levels above the compiled test (dist/test/). */
const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function vagrant(args: string[], env: Record<string, string>): Promise<Result> {
  const base = { ...process.env };
  // Settings of the caller's own Vagrant use that would change what is loaded.
  delete base.VAGRANT_VAGRANTFILE;
  delete base.VAGRANT_DEFAULT_PROVIDER;
  return new Promise((resolve, reject) => {
    execFile(
      'vagrant',
      args,
      { env: { ...base, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1', ...env }, timeout: 120_000, encoding: 'utf8', cwd: tmpdir() },
      (err, stdout, stderr) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
          reject(new Error('vagrant is not installed: ./scripts/setup installs it (apt-get install vagrant)'));
          return;
        }
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** A temp dir removed after the test. */
function tempDir(t: { teardown: (fn: () => void) => void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What is in the checkout's own .vagrant/ (absent, or left by someone's `vagrant up`): names, sizes, times. */
function dotVagrantState(): string[] {
  const dir = join(REPO, '.vagrant');
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = statSync(path);
      out.push(`${path} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out;
}

test('vagrant validate passes on the Vagrantfile, which defines the five VMs and makes its secret where Vagrant keeps its state', async (t) => {
  t.true(existsSync(join(REPO, 'Vagrantfile')), `no Vagrantfile in ${REPO}`);
  const dot = join(tempDir(t, 'dfs-vagrant-dot-'), 'dotfile');
  const home = tempDir(t, 'dfs-vagrant-home-');
  const before = dotVagrantState();

  const r = await vagrant(['validate', '--ignore-provider', '--machine-readable'], { VAGRANT_CWD: REPO, VAGRANT_DOTFILE_PATH: dot, VAGRANT_HOME: home });
  t.is(r.code, 0, `vagrant validate failed:\n${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /^\d+,,ui,info,Vagrantfile validated successfully\.$/m);
  // One `metadata,provider` line per machine the Vagrantfile defines, in its order.
  const machines = [...r.stdout.matchAll(/^\d+,([^,]+),metadata,provider,/gm)].map((m) => m[1]);
  t.deepEqual(machines, ['name', 'storage1', 'storage2', 'storage3', 'client']);

  // The cluster secret, made at load time: in the dotfile folder asked for, readable by its owner only.
  const secret = join(dot, 'dfs-secret');
  t.true(existsSync(secret), `the Vagrantfile made no secret in ${dot}`);
  t.is(statSync(secret).mode & 0o777, 0o600);
  t.regex(readFileSync(secret, 'utf8'), /^[0-9a-f]{64}\n$/);
  // And nothing in the checkout: no .vagrant/ made or touched there.
  t.deepEqual(dotVagrantState(), before);
});

test('vagrant validate does check: it fails when a provisioner file the Vagrantfile names is missing', async (t) => {
  // The Vagrantfile alone in a folder, without the deploy/provision.sh it provisions every VM with.
  const dir = tempDir(t, 'dfs-vagrant-bare-');
  copyFileSync(join(REPO, 'Vagrantfile'), join(dir, 'Vagrantfile'));
  const r = await vagrant(['validate', '--ignore-provider'], { VAGRANT_CWD: dir, VAGRANT_HOME: tempDir(t, 'dfs-vagrant-home-') });
  t.not(r.code, 0, r.stdout);
  t.regex(`${r.stdout}\n${r.stderr}`, /shell provisioner does not exist on the host system: .*deploy\/provision\.sh/);
});
