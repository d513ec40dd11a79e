import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../common/secret.js';

/** The server's persistent id, kept in its data dir so a restarted server is recognised as the same one. */
export async function loadOrCreateServerId(dataDir: string): Promise<string> {
  const file = join(dataDir, 'server-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9_-]{1,64}$/.test(id)) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = `ss-${randomBytes(6).toString('hex')}`;
  await writeFileDurably(file, `${id}\n`);
  return id;
}
