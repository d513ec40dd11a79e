import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { startCluster } from './harness.js';
import { sh, startMount } from './mount-harness.js';

test('a file written through the mount is read back whole, and through a second mount too', async (t) => {
  const cluster = await startCluster(t);
  const first = await startMount(t, cluster);
  const second = await startMount(t, cluster);
  const data = randomBytes(5 * 1024 * 1024 + 123);
  await writeFile(join(first.dir, 'a.bin'), data);
  await appendFile(join(first.dir, 'a.bin'), 'tail');
  const expected = createHash('sha256').update(Buffer.concat([data, Buffer.from('tail')])).digest('hex');
  const other = await readFile(join(second.dir, 'a.bin'));
  t.is(createHash('sha256').update(other).digest('hex'), expected);
  const listed = await sh(`ls -l ${second.dir}`);
  t.regex(listed.stdout, /a\.bin/);
});
