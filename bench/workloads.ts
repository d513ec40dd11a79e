/**
 * The file-system workloads, run against any folder, one JSON line per figure on stdout:
 *
 *   node dist/bench/workloads.js --dir /mnt/x [--quick] [--file-size 512M] [--files 5000] [--scratch DIR] …
 *
 * Every workload is a shell tool (dd, cp, ls, cat, rm, tar, bash's echo) in its own process, except the
 * renames, which this process makes with rename(2) so that 1,000 of them measure the file system rather
 * than 1,000 process starts. Nothing runs inside a FUSE process. What a workload wrote or read is checked
 * afterwards by SHA-256 against the source (untimed); a figure whose data is wrong is marked invalid.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, renameSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prepareSources, sha256, dirName, type Sources, type TreeFile } from './sources.js';
import { sizeFlags, sizesFrom, type Sizes } from './sizes.js';

export const WORKLOADS = ['seq-write', 'seq-read', 'cp-r', 'ls-lR', 'rename', 'cat', 'rm-rf', 'untar', 'append'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface Figure {
  bench: 'fs';
  workload: Workload;
  /** Per second of `unit`; null when the workload failed. */
  value: number | null;
  unit: string;
  seconds: number | null;
  /** Items (files, entries, operations) or bytes the figure counts. */
  count: number;
  /** The command ran and its data checked out against the source. */
  valid: boolean;
  error?: string;
  /** Whether the page cache was dropped before this workload. */
  coldCache?: boolean;
}

export interface WorkloadOptions {
  /** Most seconds one workload command may take before it is killed and counted as failed. */
  stepTimeoutS: number;
  only?: Set<Workload>;
  /** Drop the page cache before the read workloads (root only; true by default). */
  dropCaches?: boolean;
  /** Where this process keeps its own small files (file lists); the system's temp folder by default. */
  tempDir?: string;
  /** Progress lines (stderr by default). */
  progress?: (line: string) => void;
}

interface Timed {
  seconds: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Process groups of the commands running now, so that a signal to this process ends them too. */
const running = new Set<number>();

function killRunning(): void {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Runs a command in its own process group and times it from spawn to exit. */
function timed(cmd: string, args: string[], options: { cwd?: string; timeoutS: number; captureStdout?: boolean }): Promise<Timed> {
  return new Promise((resolvePromise) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd: options.cwd, stdio: ['ignore', options.captureStdout ? 'pipe' : 'ignore', 'pipe'], detached: true });
    if (child.pid) running.add(child.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutS * 1000);
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      clearTimeout(timer);
      if (child.pid) running.delete(child.pid);
      const stderr = Buffer.concat(err).toString().trim() + (timedOut ? `\n(killed after ${options.timeoutS} s)` : '');
      resolvePromise({ seconds, code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: stderr.trim() });
    });
  });
}

function describe(cmd: string, args: string[], r: Timed): string {
  return `\`${[cmd, ...args].join(' ')}\` exited with ${r.code}${r.stderr ? `: ${r.stderr.slice(0, 1500)}` : ''}`;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const part of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(part as Buffer);
  return hash.digest('hex');
}

/** `sync` and drop the page cache, dentries and inodes (root only); false when it could not. */
async function dropCaches(): Promise<boolean> {
  await timed('sync', [], { timeoutS: 300 });
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** The first difference between the names in the tree's folders and the expected paths, or undefined. */
async function checkNames(root: string, paths: string[], dirs: string[]): Promise<string | undefined> {
  const expected = new Set(paths);
  let seen = 0;
  for (const d of dirs) {
    let names: string[];
    try {
      names = await readdir(join(root, d));
    } catch (err) {
      return `readdir ${d}: ${(err as Error).message}`;
    }
    for (const name of names) if (!expected.has(`${d}/${name}`)) return `unexpected file ${d}/${name}`;
    seen += names.length;
  }
  return seen === expected.size ? undefined : `${seen} files in the tree, expected ${expected.size}`;
}

/** The first difference between the tree under `root` and the expected files (names and content), or undefined. */
async function checkTree(root: string, files: Array<{ path: string; sha256: string }>, dirs: string[]): Promise<string | undefined> {
  const names = await checkNames(root, files.map((f) => f.path), dirs);
  if (names) return names;
  for (const f of files) {
    let actual: string;
    try {
      actual = sha256(await readFile(join(root, f.path)));
    } catch (err) {
      return `${f.path}: ${(err as Error).message}`;
    }
    if (actual !== f.sha256) return `${f.path}: SHA-256 ${actual}, expected ${f.sha256}`;
  }
  return undefined;
}

async function checkUntar(root: string, s: Sources): Promise<string | undefined> {
  for (const e of s.tarEntries) {
    const path = join(root, e.path);
    try {
      if (e.link !== undefined) {
        const target = await readlink(path);
        if (target !== e.link) return `${e.path}: link to ${target}, expected ${e.link}`;
      } else {
        const st = await lstat(path);
        if (!st.isFile()) return `${e.path}: not a regular file`;
        const actual = sha256(await readFile(path));
        if (actual !== e.sha256) return `${e.path}: SHA-256 ${actual}, expected ${e.sha256}`;
      }
    } catch (err) {
      return `${e.path}: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/** Reads every file named in a NUL-separated list, so the cache is warm for a copy from it. */
async function warm(cwd: string, paths: string[], scratch: string): Promise<void> {
  const list = join(scratch, 'warm.list');
  await writeFile(list, paths.join('\0'));
  await timed('xargs', ['-0', '-a', list, 'cat'], { cwd, timeoutS: 600 });
}

/**
 * Runs every workload in a fresh folder inside `dir` (removed afterwards) and hands each figure to
 * `emit` as soon as it is checked.
 */
export async function runWorkloads(dir: string, src: Sources, s: Sizes, emit: (f: Figure) => void, options: WorkloadOptions): Promise<void> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const want = (w: Workload): boolean => !options.only || options.only.has(w);
  const work = join(resolve(dir), `dfsbench-${process.pid}`);
  const local = await mkdtemp(join(options.tempDir ?? tmpdir(), 'dfsbench-lists-'));
  const t = options.stepTimeoutS;
  const figure = (workload: Workload, unit: string, count: number, r: Timed | { seconds: number; code: 0 }, error?: string, coldCache?: boolean): void => {
    const ok = r.code === 0 && error === undefined;
    const f: Figure = {
      bench: 'fs',
      workload,
      value: ok ? Number((count / r.seconds).toFixed(2)) : null,
      unit,
      seconds: Number(r.seconds.toFixed(4)),
      count,
      valid: ok,
      ...(error !== undefined ? { error } : {}),
      ...(coldCache !== undefined ? { coldCache } : {}),
    };
    emit(f);
    progress(`  ${workload.padEnd(9)} ${ok ? `${f.value} ${unit}` : `FAILED: ${error}`}`);
  };
  await mkdir(work, { recursive: true });
  try {
    // Sequential write (fsync before close) and read after dropping caches; checked together by hash.
    if (want('seq-write') || want('seq-read')) {
      const mib = s.fileBytes / (1024 * 1024);
      const target = join(work, 'seq.bin');
      await warm('/', [src.bigFile], local);
      const wArgs = [`if=${src.bigFile}`, `of=${target}`, 'bs=1M', 'conv=fsync', 'status=none'];
      const w = await timed('dd', wArgs, { timeoutS: t });
      const cold = options.dropCaches !== false && (await dropCaches());
      const rArgs = [`if=${target}`, 'of=/dev/null', 'bs=1M', 'status=none'];
      const r = w.code === 0 ? await timed('dd', rArgs, { timeoutS: t }) : undefined;
      let bad: string | undefined;
      if (w.code === 0) {
        try {
          const actual = await fileSha256(target);
          if (actual !== src.bigSha256) bad = `${target}: SHA-256 ${actual}, expected ${src.bigSha256}`;
        } catch (err) {
          bad = `reading ${target} back: ${(err as Error).message}`;
        }
      }
      if (want('seq-write')) figure('seq-write', 'MiB/s', mib, w, w.code !== 0 ? describe('dd', wArgs, w) : bad);
      if (want('seq-read')) {
        if (!r) figure('seq-read', 'MiB/s', mib, w, 'nothing to read: the write failed', cold);
        else figure('seq-read', 'MiB/s', mib, r, r.code !== 0 ? describe('dd', rArgs, r) : bad, cold);
      }
      await rm(target, { force: true }).catch(() => undefined);
    }

    // The small-file tree: cp -r, ls -lR, renames, cat, rm -rf, one after the other on the same copy.
    const tree = join(work, 'tree');
    const treeSteps: Workload[] = ['cp-r', 'ls-lR', 'rename', 'cat', 'rm-rf'];
    if (treeSteps.some(want)) {
      await warm(src.treeDir, src.treeFiles.map((f) => f.path), local);
      const cpArgs = ['-r', src.treeDir, tree];
      const cp = await timed('cp', cpArgs, { timeoutS: t });
      const cpBad = cp.code !== 0 ? describe('cp', cpArgs, cp) : await checkTree(tree, src.treeFiles, src.treeDirs);
      if (want('cp-r')) figure('cp-r', 'files/s', s.files, cp, cpBad);
      const treeOk = cp.code === 0;

      if (want('ls-lR')) {
        const entries = s.files + s.dirs;
        if (!treeOk) figure('ls-lR', 'entries/s', entries, cp, 'no tree: cp -r failed');
        else {
          const ls = await timed('ls', ['-lR', tree], { timeoutS: t, captureStdout: true });
          const listed = ls.stdout.split('\n').filter((line) => /^[-d]/.test(line)).length;
          figure('ls-lR', 'entries/s', entries, ls, ls.code !== 0 ? describe('ls', ['-lR', tree], ls) : listed !== entries ? `ls -lR listed ${listed} entries, expected ${entries}` : undefined);
        }
      }

      // Renames: file k % files moves to the next folder under a new name, so files can move again.
      const current: TreeFile[] = src.treeFiles.map((f) => ({ ...f }));
      if (want('rename') && treeOk) {
        const moves: Array<{ i: number; from: string; to: string }> = [];
        const where = current.map((f) => f.path);
        for (let k = 0; k < s.renames; k++) {
          const i = k % current.length;
          const dirIndex = Number(where[i]!.split('/')[0]!.slice(1));
          const to = `${dirName((dirIndex + 1) % s.dirs)}/r${k}-f${i}.bin`;
          moves.push({ i, from: join(tree, where[i]!), to: join(tree, to) });
          where[i] = to;
        }
        let error: string | undefined;
        let done = 0;
        const started = performance.now();
        try {
          for (const m of moves) {
            renameSync(m.from, m.to);
            done++;
          }
        } catch (err) {
          error = `rename #${done} ${moves[done]!.from} -> ${moves[done]!.to}: ${(err as Error).message}`;
        }
        const seconds = (performance.now() - started) / 1000;
        for (const m of moves.slice(0, done)) current[m.i]!.path = m.to.slice(tree.length + 1);
        error ??= await checkNames(tree, current.map((f) => f.path), src.treeDirs);
        figure('rename', 'ops/s', s.renames, { seconds, code: 0 }, error);
      } else if (want('rename')) figure('rename', 'ops/s', s.renames, cp, 'no tree: cp -r failed');

      if (want('cat')) {
        if (!treeOk) figure('cat', 'files/s', s.files, cp, 'no tree: cp -r failed');
        else {
          const list = join(local, 'cat.list');
          await writeFile(list, current.map((f) => f.path).join('\0'));
          const cold = options.dropCaches !== false && (await dropCaches());
          const catArgs = ['-0', '-a', list, 'cat'];
          const c = await timed('xargs', catArgs, { cwd: tree, timeoutS: t });
          const bad = c.code !== 0 ? describe('xargs', catArgs, c) : await checkTree(tree, current, src.treeDirs);
          figure('cat', 'files/s', s.files, c, bad, cold);
        }
      }

      if (want('rm-rf')) {
        if (!treeOk) figure('rm-rf', 'files/s', s.files, cp, 'no tree: cp -r failed');
        else {
          const r = await timed('rm', ['-rf', tree], { timeoutS: t });
          figure('rm-rf', 'files/s', s.files, r, r.code !== 0 ? describe('rm', ['-rf', tree], r) : existsSync(tree) ? `${tree} still exists after rm -rf` : undefined);
        }
      }
      await rm(tree, { recursive: true, force: true }).catch(() => undefined);
    }

    if (want('untar')) {
      const into = join(work, 'untar');
      await mkdir(into);
      await warm('/', [src.tarball], local);
      const args = ['-xf', src.tarball, '-C', into];
      const r = await timed('tar', args, { timeoutS: t });
      figure('untar', 'files/s', src.tarEntries.length, r, r.code !== 0 ? describe('tar', args, r) : await checkUntar(into, src));
      await rm(into, { recursive: true, force: true }).catch(() => undefined);
    }

    if (want('append')) {
      const file = join(work, 'append.txt');
      const script = 'for ((i = 0; i < $2; i++)); do echo "line $i of the append workload" >> "$1"; done';
      const r = await timed('bash', ['-c', script, 'append', file, String(s.appends)], { timeoutS: t });
      let bad: string | undefined;
      if (r.code !== 0) bad = describe('bash', ['-c', JSON.stringify(script)], r);
      else {
        const expected = Array.from({ length: s.appends }, (_, i) => `line ${i} of the append workload\n`).join('');
        try {
          const actual = await readFile(file, 'utf8');
          if (sha256(actual) !== sha256(expected)) bad = `${file}: ${actual.length} bytes with SHA-256 ${sha256(actual)}, expected ${expected.length} bytes with ${sha256(expected)}`;
        } catch (err) {
          bad = `reading ${file} back: ${(err as Error).message}`;
        }
      }
      figure('append', 'ops/s', s.appends, r, bad);
    }
  } finally {
    await timed('rm', ['-rf', work], { timeoutS: t });
    await rm(local, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      scratch: { type: 'string' },
      only: { type: 'string' },
      'step-timeout': { type: 'string', default: '1800' },
      ...sizeFlags,
    },
  });
  if (!values.dir) throw new Error('usage: workloads --dir DIR [--quick] [--scratch DIR] [--only seq-write,cat,…] [size flags]');
  const sizes = sizesFrom(values);
  const only = values.only ? new Set(values.only.split(',') as Workload[]) : undefined;
  for (const w of only ?? []) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; known: ${WORKLOADS.join(', ')}`);
  // Stopped from outside: end the command under way (it runs in a group of its own) and leave.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killRunning();
      process.exit(128 + (signal === 'SIGHUP' ? 1 : signal === 'SIGINT' ? 2 : 15));
    });
  }
  const ownScratch = !values.scratch;
  const scratch = values.scratch ?? (await mkdtemp(join(tmpdir(), 'dfsbench-src-')));
  try {
    const src = await prepareSources(scratch, sizes);
    await runWorkloads(values.dir, src, sizes, (f) => process.stdout.write(`${JSON.stringify(f)}\n`), { stepTimeoutS: Number(values['step-timeout']), only, tempDir: scratch });
  } finally {
    if (ownScratch) await rm(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
