import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { bufferSource, readAll, sleep, startCluster } from './harness.js';
import { sh, startMount } from './mount-harness.js';
import { q, run } from './mount-util.js';

/**
 * Failures under a real mount: a storage server killed in the middle of a read, a name-server restart,
 * and every storage server gone when a file is closed.
 */

const MiB = 1024 * 1024;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// One at a time: these tests kill and restart daemons and time what follows.

test.serial('kill -9 of a storage server in the middle of reading a 100 MiB file: the read completes, SHA-256 right', async (t) => {
  t.timeout(150_000);
  const cluster = await startCluster(t);
  const data = randomBytes(100 * MiB);
  await cluster.client.writeFile('/big.bin', bufferSource(data));
  await cluster.waitConverged();
  const mnt = await startMount(t, cluster);
  const path = join(mnt.dir, 'big.bin');

  // The server listed first for most chunks past the first 32 MiB: the one the mount would read them from.
  const info = await cluster.client.info('/big.bin');
  const later = info.chunks.filter((c) => c.offset >= 32 * MiB);
  const firsts = cluster.storage.map((s) => later.filter((c) => c.servers[0]?.id === s.id).length);
  const victim = firsts.indexOf(Math.max(...firsts));
  t.true(firsts[victim]! > 0, 'the victim is the first replica of chunks still to be read');

  const hash = createHash('sha256');
  let bytes = 0;
  let killedAt = -1;
  let kill: Promise<void> | undefined;
  const stream = createReadStream(path, { highWaterMark: MiB });
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('end', resolve);
    stream.on('data', (part) => {
      hash.update(part as Buffer);
      bytes += part.length;
      if (killedAt < 0 && bytes >= 20 * MiB) {
        // Killed while the read goes on: requests to it may be in flight.
        killedAt = bytes;
        kill = cluster.killStorage(victim);
      }
    });
  });
  await kill;
  t.true(killedAt > 0 && killedAt < 40 * MiB, 'the server was killed during the read');
  t.is(cluster.storage[victim]!.process!.child.exitCode ?? cluster.storage[victim]!.process!.child.signalCode, 'SIGKILL');
  t.is(bytes, data.length);
  t.is(hash.digest('hex'), sha256(data));
  // The mount is still fine, and a second whole read (other cache state) agrees.
  t.is((await run(`sha256sum < ${q(path)}`)).split(' ')[0], sha256(data));
});

test.serial('the mount survives a name-server restart: operations work again afterwards without remounting', async (t) => {
  t.timeout(120_000);
  const cluster = await startCluster(t);
  const mnt = await startMount(t, cluster);
  const dir = mnt.dir;
  const before = randomBytes(5 * MiB + 17);
  await writeFile(join(dir, 'before.bin'), before);
  await run('mkdir d && echo hello > d/a', { cwd: dir });

  await cluster.killNameServer();
  // While it is down, calls fail (they do not hang), and the mount process stays up.
  const started = Date.now();
  const down = await sh('stat new-name', { cwd: dir, timeoutMs: 60_000 });
  t.not(down.code, 0);
  t.true(Date.now() - started < 45_000, `a stat with the name server down took ${Date.now() - started} ms`);
  t.is(mnt.process.child.exitCode, null);

  await cluster.startNameServer();
  await cluster.waitAlive(cluster.options.storageServers);
  t.is(mnt.process.child.exitCode, null, 'the same mount process');
  // Reads of what was there, and every kind of change, through the same mount.
  t.is(sha256(await readFile(join(dir, 'before.bin'))), sha256(before));
  t.is(await run('cat d/a', { cwd: dir }), 'hello\n');
  await run('echo after > d/b && mkdir -p e/f && mv d/a e/f/a && ln -s b d/link && chmod 600 d/b && rm before.bin', { cwd: dir });
  t.is(await run('cat d/b d/link e/f/a && ls d && ls e/f && stat -c %a d/b', { cwd: dir }), 'after\nafter\nhello\nb\nlink\na\n600\n');
  const after = randomBytes(6 * MiB + 5);
  await writeFile(join(dir, 'after.bin'), after);
  // Committed in the restarted name server, and the data on the storage servers.
  t.is(sha256(await readAll(cluster.client, '/after.bin')), sha256(after));
  t.is((await readAll(cluster.client, '/d/b')).toString(), 'after\n');
  await t.throwsAsync(cluster.client.stat('/before.bin'), { message: /no such file/ });
});

test.serial('closing a file when every storage server is down fails (EIO), and nothing half-written is committed', async (t) => {
  t.timeout(120_000);
  const cluster = await startCluster(t);
  const mnt = await startMount(t, cluster);
  const original = randomBytes(300_000);
  await writeFile(join(mnt.dir, 'kept.bin'), original);
  const committed = await cluster.client.stat('/kept.bin');

  // A new file and a change to an existing one, both unflushed when the servers die.
  const fresh = await open(join(mnt.dir, 'new.bin'), 'w');
  const changed = await open(join(mnt.dir, 'kept.bin'), 'r+');
  await fresh.write(randomBytes(200_000));
  await changed.write(randomBytes(1000), 0, 1000, 5000);
  for (const s of cluster.storage) await cluster.killStorage(s.index);

  const started = Date.now();
  const closeFresh = await fresh.close().then(
    () => 'closed without error',
    (err: NodeJS.ErrnoException) => err.code,
  );
  const closeChanged = await changed.close().then(
    () => 'closed without error',
    (err: NodeJS.ErrnoException) => err.code,
  );
  t.log(`the failing closes took ${Date.now() - started} ms`);
  t.is(closeFresh, 'EIO');
  t.is(closeChanged, 'EIO');
  // Nothing was committed in their name: the new file is still empty, the old one as it was.
  await sleep(1_000);
  t.is((await cluster.client.stat('/new.bin')).size, 0);
  const now = await cluster.client.stat('/kept.bin');
  t.is(now.version, committed.version);
  t.is(now.size, original.length);
  // The mount is still usable, and with the servers back the old content reads back whole.
  t.is((await stat(join(mnt.dir, 'kept.bin'))).size, original.length);
  for (const s of cluster.storage) await cluster.startStorage(s.index);
  await cluster.waitAlive(cluster.options.storageServers);
  t.is(sha256(await readFile(join(mnt.dir, 'kept.bin'))), sha256(original));
  await run('echo works > again', { cwd: mnt.dir });
  t.is((await readAll(cluster.client, '/again')).toString(), 'works\n');
});
