import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { sh } from './mount-harness.js';

/**
 * Small helpers for the mount tests: shell commands that must succeed, local reference folders, and
 * trees of files to copy into a mount. Workloads run here (the test process) or in shell tools, never
 * inside the mount process.
 */

/** Single-quotes a string for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs a bash command that must exit 0; its stdout. A failure names the command and shows stderr. */
export async function run(command: string, options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await sh(command, options);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${command}\n--- stderr ---\n${r.stderr.slice(-3000)}\n--- stdout ---\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** A local temp folder (the reference file system), removed in every outcome. */
export async function localDir(t: ExecutionContext, prefix = 'dfs-local-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A tree of `dirs` folders (each with a subfolder) holding `files` files in all, of varied sizes
 * (empty ones included, a few over 64 KiB), written with node into a local folder.
 */
export async function makeTree(root: string, files: number, dirs = 10): Promise<void> {
  await mkdir(root, { recursive: true });
  const perDir = Math.ceil(files / dirs);
  let made = 0;
  for (let d = 0; d < dirs && made < files; d++) {
    const dir = join(root, `dir-${d}`);
    await mkdir(join(dir, 'sub'), { recursive: true });
    for (let f = 0; f < perDir && made < files; f++, made++) {
      const size = f % 17 === 0 ? 0 : f % 23 === 0 ? 70_000 + f : (f * 997) % 6000;
      const where = f % 2 ? join(dir, 'sub') : dir;
      await writeFile(join(where, `file-${f}.dat`), size ? randomBytes(size) : Buffer.alloc(0));
    }
  }
}

/** Polls until `check` is true or the time is up; whether it held, and how long it took. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<{ ok: boolean; ms: number }> {
  const start = Date.now();
  for (;;) {
    if (await check()) return { ok: true, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) return { ok: false, ms: Date.now() - start };
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
