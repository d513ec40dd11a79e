import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { mountLine, READ_AHEAD_KIB } from '../mount/mountinfo.js';
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

test('the kernel reads ahead 1 MiB of a file on the mount (its default of 128 KiB leaves a reader waiting out each request)', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster);
  const device = (await mountLine(mount.dir))?.[2];
  t.regex(device ?? '', /^\d+:\d+$/);
  const readAhead = Number((await readFile(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8')).trim());
  // Setting it needs root (writing to /sys); anyone else keeps the kernel's default.
  t.is(readAhead, process.getuid?.() === 0 ? READ_AHEAD_KIB : 128);
});
