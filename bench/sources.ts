import { createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, open, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { mustRun } from './proc.js';
import type { Sizes } from './sizes.js';

/**
 * The source data of the workloads, made once in a local scratch folder and reused by every target and
 * repetition: a large file of random bytes, a tree of small random files, and a tarball of real headers,
 * each with the SHA-256 of what it holds so that what a target wrote can be checked.
 * Every file's content is unique random data, so a store that dedups (dfs does) gets no free ride.
 */

export interface TreeFile {
  /** Relative to the tree's root, like `d007/f00123.bin`. */
  path: string;
  size: number;
  sha256: string;
}

export interface TarEntry {
  /** Relative to the extraction folder, like `include/stdio.h`. */
  path: string;
  /** Regular files have a hash, symbolic links a target. */
  sha256?: string;
  link?: string;
}

export interface Sources {
  bigFile: string;
  bigSha256: string;
  bigBytes: number;
  treeDir: string;
  treeDirs: string[];
  treeFiles: TreeFile[];
  tarball: string;
  tarEntries: TarEntry[];
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function cached<T>(manifest: string, make: () => Promise<T>): Promise<T> {
  if (existsSync(manifest)) return JSON.parse(await readFile(manifest, 'utf8')) as T;
  const value = await make();
  // Written last, so a half-made source is never taken for a whole one.
  await writeFile(`${manifest}.tmp`, JSON.stringify(value));
  await rename(`${manifest}.tmp`, manifest);
  return value;
}

async function makeBigFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    const block = 8 * 1024 * 1024;
    for (let done = 0; done < bytes; done += block) {
      const data = randomBytes(Math.min(block, bytes - done));
      hash.update(data);
      await handle.write(data);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export function dirName(i: number): string {
  return `d${String(i).padStart(3, '0')}`;
}

async function makeTree(root: string, s: Sizes): Promise<TreeFile[]> {
  await rm(root, { recursive: true, force: true });
  for (let d = 0; d < s.dirs; d++) await mkdir(join(root, dirName(d)), { recursive: true });
  const files: TreeFile[] = [];
  for (let i = 0; i < s.files; i++) {
    const size = randomInt(s.minFileBytes, s.maxFileBytes + 1);
    const data = randomBytes(size);
    const path = `${dirName(i % s.dirs)}/f${String(i).padStart(5, '0')}.bin`;
    await writeFile(join(root, path), data);
    files.push({ path, size, sha256: sha256(data) });
  }
  return files;
}

/** A tarball of (the first `limit` of) the files and links under `source`, and what it holds. */
async function makeTarball(tarball: string, source: string, limit: number): Promise<TarEntry[]> {
  const parent = dirname(source);
  const top = basename(source);
  const listed = (await mustRun('find', [top, '(', '-type', 'f', '-o', '-type', 'l', ')'], { cwd: parent })).split('\n').filter(Boolean).sort();
  const chosen = limit > 0 ? listed.slice(0, limit) : listed;
  const listFile = `${tarball}.list`;
  await writeFile(listFile, `${chosen.join('\n')}\n`);
  await mustRun('tar', ['-C', parent, '-cf', tarball, '--no-recursion', '-T', listFile], { timeoutMs: 600_000 });
  await rm(listFile);
  const entries: TarEntry[] = [];
  for (const path of chosen) {
    const full = join(parent, path);
    const st = await lstat(full);
    if (st.isSymbolicLink()) entries.push({ path, link: await readlink(full) });
    else entries.push({ path, sha256: sha256(await readFile(full)) });
  }
  return entries;
}

/** Makes (or finds, from an earlier call with the same sizes) every source in `scratch`. */
export async function prepareSources(scratch: string, s: Sizes): Promise<Sources> {
  await mkdir(scratch, { recursive: true });
  const bigFile = join(scratch, `big-${s.fileBytes}.bin`);
  const big = await cached(`${bigFile}.json`, async () => ({ sha256: await makeBigFile(bigFile, s.fileBytes) }));
  const treeDir = join(scratch, `tree-${s.files}x${s.dirs}-${s.minFileBytes}-${s.maxFileBytes}`);
  const treeFiles = await cached(`${treeDir}.json`, () => makeTree(treeDir, s));
  const tarball = join(scratch, `tar-${basename(s.tarSource)}-${s.tarFiles}.tar`);
  const tarEntries = await cached(`${tarball}.json`, () => makeTarball(tarball, s.tarSource, s.tarFiles));
  return {
    bigFile,
    bigSha256: big.sha256,
    bigBytes: s.fileBytes,
    treeDir,
    treeDirs: Array.from({ length: s.dirs }, (_, d) => dirName(d)),
    treeFiles,
    tarball,
    tarEntries,
  };
}
