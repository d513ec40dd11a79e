import { createHash, randomBytes } from 'node:crypto';
import { appendFile, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { MAX_REQUEST_BYTES } from '../mount/fuse-options.js';
import { mountLine, READ_AHEAD_KIB } from '../mount/mountinfo.js';
import { startCluster } from './harness.js';
import { fuseTrace, sh, startMount, TRACE_FUSE } from './mount-harness.js';

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

test('reads and writes reach the mount 1 MiB a request, not the 128 KiB libfuse 2 gets by itself', async (t) => {
  const cluster = await startCluster(t);
  const writer = await startMount(t, cluster, [], TRACE_FUSE);
  const data = randomBytes(4 * MAX_REQUEST_BYTES);
  // One 4 MiB write(2) (writeFile would cut it into 512 KiB ones): the kernel cuts it into requests of
  // at most max_write.
  const file = await open(join(writer.dir, 'big.bin'), 'w');
  try {
    t.is((await file.write(data)).bytesWritten, data.length);
  } finally {
    await file.close();
  }
  // A second mount reads it, so the bytes come through FUSE and not from the writer's page cache.
  const reader = await startMount(t, cluster, [], TRACE_FUSE);
  const back = await readFile(join(reader.dir, 'big.bin'));
  t.true(back.equals(data));
  const writes = fuseTrace(writer, 'write').map((line) => line.bytes);
  const reads = fuseTrace(reader, 'read').map((line) => line.bytes ?? 0);
  t.deepEqual(writes, [MAX_REQUEST_BYTES, MAX_REQUEST_BYTES, MAX_REQUEST_BYTES, MAX_REQUEST_BYTES], `write requests: ${writes.join(', ')}`);
  t.is(Math.max(...reads), MAX_REQUEST_BYTES, `read requests: ${reads.join(', ')}`);
  t.true(reads.length <= 8, `${reads.length} read requests for 4 requests' worth`);
});
