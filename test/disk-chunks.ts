import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat, statfs, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What is on a storage server's disk, read straight from its data dir (`chunks/<2 hex>/<64 hex>`): the
 * tests' view of the truth, independent of what any daemon says.
 */

/** The path of a chunk's file in a data dir. */
export function chunkPath(dataDir: string, hash: string): string {
  return join(dataDir, 'chunks', hash.slice(0, 2), hash);
}

/** Every chunk file in a data dir (named by a 64-hex hash) with its stats; a file vanishing meanwhile is skipped. */
async function walkChunks(dataDir: string, visit: (hash: string, path: string, st: { mtimeNs: bigint; ino: bigint; size: bigint }) => void): Promise<void> {
  const root = join(dataDir, 'chunks');
  const prefixes = await readdir(root).catch(() => [] as string[]);
  for (const prefix of prefixes.sort()) {
    const names = await readdir(join(root, prefix)).catch(() => [] as string[]);
    for (const name of names.sort()) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const path = join(root, prefix, name);
      const st = await stat(path, { bigint: true }).catch(() => undefined);
      if (st?.isFile()) visit(name, path, st);
    }
  }
}

/** Chunk files (named by their hash) in a storage data dir. */
export async function chunkFiles(dataDir: string): Promise<Set<string>> {
  const out = new Set<string>();
  await walkChunks(dataDir, (hash) => out.add(hash));
  return out;
}

/** Every chunk file with its mtime (ns), inode number and size: a rewrite changes one of them. */
export async function chunkSnapshot(dataDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await walkChunks(dataDir, (hash, _path, st) => out.set(hash, `mtime=${st.mtimeNs} ino=${st.ino} size=${st.size}`));
  return out;
}

/** Chunk files whose bytes do not hash to their name (a torn or corrupt chunk under a valid name). */
export async function badChunkFiles(dataDir: string): Promise<string[]> {
  const bad: string[] = [];
  for (const hash of await chunkFiles(dataDir)) {
    const data = await readFile(chunkPath(dataDir, hash)).catch(() => undefined);
    if (data && createHash('sha256').update(data).digest('hex') !== hash) bad.push(hash);
  }
  return bad;
}

/** How many of the given disks (chunk sets or snapshots) hold each chunk. */
export function copiesOnDisks(disks: readonly (ReadonlySet<string> | ReadonlyMap<string, unknown>)[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const disk of disks) for (const hash of disk.keys()) out.set(hash, (out.get(hash) ?? 0) + 1);
  return out;
}

/** Flips a byte in the middle of a chunk file, keeping its size and times (as bit rot would). */
export async function corruptChunk(dataDir: string, hash: string): Promise<void> {
  const path = chunkPath(dataDir, hash);
  const before = await stat(path);
  const handle = await open(path, 'r+');
  try {
    const middle = Math.floor(before.size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, middle);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, middle);
  } finally {
    await handle.close();
  }
  await utimes(path, before.atime, before.mtime);
}

/** Whether a chunk's file on a disk hashes to its name; undefined when the disk has no such file. */
export async function chunkIntact(dataDir: string, hash: string): Promise<boolean | undefined> {
  const data = await readFile(chunkPath(dataDir, hash)).catch(() => undefined);
  return data === undefined ? undefined : createHash('sha256').update(data).digest('hex') === hash;
}

/** Temp files of chunk writes on a storage host's disk: uploads in progress, or ones a crash cut off. */
export async function uploadsOnDisk(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'tmp')).catch(() => [] as string[]);
}

/** Free bytes on a storage host's disk (its data dir's file system), as statfs tells the storage server. */
export async function diskFree(dataDir: string): Promise<number> {
  const st = await statfs(dataDir);
  return st.bavail * st.bsize;
}

/**
 * Fills a storage host's disk to the last byte with a file of its own, outside the storage server's folders
 * (as another program on the host would); returns the file, to remove for room again.
 */
export async function fillDisk(dataDir: string, name = 'filler.bin'): Promise<string> {
  const path = join(dataDir, name);
  const handle = await open(path, 'a');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (let size = block.length; size > 0; ) {
      try {
        await handle.write(block, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size = size >> 1;
      }
    }
  } finally {
    await handle.close();
  }
  return path;
}
