import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DfsError } from '../protocol/errors.js';

/** Shortest secret we accept: 16 bytes of entropy, written as 32 hex digits. */
const MIN_SECRET_LENGTH = 16;

/**
 * The cluster secret: from a file when one is named, else from DFS_SECRET. Never from a command-line
 * argument, which any local user can read in the process table.
 */
export function loadSecret(secretFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  let secret: string | undefined;
  if (secretFile) {
    try {
      secret = readFileSync(secretFile, 'utf8').trim();
    } catch (err) {
      throw new DfsError('EINVAL', `cannot read secret file ${secretFile}: ${(err as Error).message}`);
    }
  } else {
    secret = env.DFS_SECRET?.trim();
  }
  if (!secret) throw new DfsError('EINVAL', 'no cluster secret: set DFS_SECRET or pass --secret-file FILE');
  if (secret.length < MIN_SECRET_LENGTH) throw new DfsError('EINVAL', `the cluster secret must be at least ${MIN_SECRET_LENGTH} characters`);
  return secret;
}

/** Writes `data` to `path` durably: temp file, fsync, rename. */
export async function writeFileDurably(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, path);
}

export function generateSecret(): string {
  return randomBytes(32).toString('hex');
}
