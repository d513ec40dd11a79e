import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { startCluster } from './harness.js';
import { sh, startMount } from './mount-harness.js';

test('a mount left behind by a crashed mount process is cleaned up by the next dfs mount at the same folder', async (t) => {
  const cluster = await startCluster(t);
  const first = await startMount(t, cluster);
  await writeFile(join(first.dir, 'kept.txt'), 'still here\n');
  // kill -9: the kernel keeps the mount, and every access to it fails (ENOTCONN).
  first.process.kill('SIGKILL');
  await first.process.exited;
  const stale = await sh(`ls ${first.dir}`);
  t.not(stale.code, 0);
  t.regex(stale.stderr, /not connected/i);

  const second = await startMount(t, cluster, [], {}, first.dir);
  t.is(await readFile(join(second.dir, 'kept.txt'), 'utf8'), 'still here\n');
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((line) => line.split(' ')[4] === first.dir);
  t.is(mounts.length, 1, 'exactly one mount at the folder');
});

test('after an external fusermount -u the mount process notices and exits', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster);
  t.is((await sh(`fusermount -u ${mount.dir}`)).code, 0);
  const code = await Promise.race([mount.process.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 10_000).unref())]);
  t.is(code, 0);
});
