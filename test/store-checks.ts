import { randomBytes } from 'node:crypto';
import sqlite3 from 'sqlite3';
import type { DfsClient } from '../client/dfs-client.js';
import { DfsError } from '../protocol/errors.js';
import { chunkSnapshot } from './disk-chunks.js';
import { sha256Hex, type TestCluster } from './harness.js';

/** Helpers for the data-path and failure tests: what is on the storage disks, and what the database says. */

export { chunkSnapshot, copiesOnDisks as copiesOnDisk } from './disk-chunks.js';

/** Snapshots of every storage server's disk, by server index. */
export function diskSnapshots(cluster: TestCluster): Promise<Map<string, string>[]> {
  return Promise.all(cluster.storage.map((s) => chunkSnapshot(s.dataDir)));
}

/** Random bytes of a size, with their SHA-256. */
export interface Blob {
  data: Buffer;
  sha: string;
}

export function randomBlob(size: number): Blob {
  const data = randomBytes(size);
  return { data, sha: sha256Hex(data) };
}

/** A random integer in [min, max]. */
export function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** The error code of a rejected promise (or undefined if it resolved). */
export async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return err instanceof DfsError ? err.code : String(err);
  }
}

/** The chunk hashes of files, through the name server. */
export async function referencedChunks(client: DfsClient, paths: Iterable<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const path of paths) for (const chunk of (await client.info(path)).chunks) out.add(chunk.hash);
  return out;
}

function queryAll<T>(db: sqlite3.Database, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => db.all(sql, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows))));
}

/**
 * Consistency problems in a name-server database, opened read-only (the daemon may be running: WAL allows a
 * reader beside it). An empty list means consistent.
 */
export async function databaseProblems(file: string): Promise<string[]> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const handle = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => (err ? reject(err) : resolve(handle)));
  });
  try {
    const problems: string[] = [];
    const check = async (what: string, sql: string): Promise<void> => {
      const rows = await queryAll<Record<string, unknown>>(db, sql);
      if (rows.length > 0) problems.push(`${what}: ${JSON.stringify(rows.slice(0, 5))}${rows.length > 5 ? ` (+${rows.length - 5} more)` : ''}`);
    };
    const integrity = await queryAll<{ integrity_check: string }>(db, 'PRAGMA integrity_check');
    if (integrity[0]?.integrity_check !== 'ok') problems.push(`integrity_check: ${JSON.stringify(integrity)}`);
    await check(
      'file chunks without a chunks row with refs > 0',
      'SELECT fc.ino, fc.idx, fc.hash, c.refs FROM file_chunks fc LEFT JOIN chunks c ON c.hash = fc.hash WHERE c.hash IS NULL OR c.refs <= 0',
    );
    await check(
      'referenced chunks without any replica (or bytes the name server keeps)',
      `SELECT DISTINCT fc.hash FROM file_chunks fc WHERE NOT EXISTS (SELECT 1 FROM replicas r WHERE r.hash = fc.hash)
       AND NOT EXISTS (SELECT 1 FROM inline_chunks i WHERE i.hash = fc.hash)`,
    );
    await check('kept bytes of unknown chunks', 'SELECT i.hash FROM inline_chunks i LEFT JOIN chunks c ON c.hash = i.hash WHERE c.hash IS NULL');
    await check('kept bytes whose length is not their chunk\'s size', 'SELECT i.hash FROM inline_chunks i JOIN chunks c ON c.hash = i.hash WHERE length(i.data) != c.size');
    await check(
      'chunks whose refs differ from the file chunks naming them',
      'SELECT c.hash, c.refs, (SELECT count(*) FROM file_chunks fc WHERE fc.hash = c.hash) AS named FROM chunks c WHERE c.refs != (SELECT count(*) FROM file_chunks fc WHERE fc.hash = c.hash)',
    );
    await check('file chunks of inodes that do not exist', 'SELECT DISTINCT fc.ino FROM file_chunks fc LEFT JOIN inodes i ON i.ino = fc.ino WHERE i.ino IS NULL');
    await check(
      'files whose chunks do not add up to their size',
      `SELECT i.ino, i.size, coalesce((SELECT sum(fc.size) FROM file_chunks fc WHERE fc.ino = i.ino), 0) AS chunked FROM inodes i
       WHERE (i.mode & ${0o170000}) = ${0o100000} AND i.size != coalesce((SELECT sum(fc.size) FROM file_chunks fc WHERE fc.ino = i.ino), 0)`,
    );
    await check('inodes without a name', 'SELECT i.ino FROM inodes i WHERE i.ino != 1 AND NOT EXISTS (SELECT 1 FROM dentries d WHERE d.ino = i.ino)');
    await check('entries naming missing inodes', 'SELECT d.parent, d.name, d.ino FROM dentries d LEFT JOIN inodes i ON i.ino = d.ino WHERE i.ino IS NULL');
    await check('replicas of unknown chunks', 'SELECT r.hash, r.server_id FROM replicas r LEFT JOIN chunks c ON c.hash = r.hash WHERE c.hash IS NULL');
    return problems;
  } finally {
    await new Promise<void>((resolve) => db.close(() => resolve()));
  }
}
