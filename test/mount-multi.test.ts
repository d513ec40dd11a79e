import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { nameApi } from '../protocol/name-api.js';
import { bufferSource, startCluster, type TestCluster } from './harness.js';
import { delayingProxy } from './http-helpers.js';
import { pollUntil } from './poll.js';
import { httpTrace, startMount, TRACE_HTTP, type TestMount } from './mount-harness.js';
import { eventually, localDir, q, run } from './mount-util.js';

/** Two mounts of one cluster: close-to-open consistency, and other clients' renames after the attribute timeout. */

const ATTR_TIMEOUT_MS = 1_000;
const ENTRY_TIMEOUT_S = 1;
const mountArgs = ['--attr-timeout', String(ATTR_TIMEOUT_MS), '--entry-timeout', String(ENTRY_TIMEOUT_S)];

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A cluster and two mounts of it; A traces its calls, and `stats` counts the stats it asked the name server for. */
async function twoMounts(t: ExecutionContext): Promise<{ cluster: TestCluster; a: TestMount; b: TestMount; stats: () => number }> {
  const cluster = await startCluster(t);
  const a = await startMount(t, cluster, mountArgs, TRACE_HTTP);
  const b = await startMount(t, cluster, mountArgs);
  return { cluster, a, b, stats: () => httpTrace(a, /^\/fs\/stat$/).length };
}

/** Waits until what a mount and its kernel took in has outlived every timeout. */
const pastTimeouts = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, ATTR_TIMEOUT_MS + ENTRY_TIMEOUT_S * 1000 + 500));

test.serial('a file closed in one mount is read whole in the other at once, every version of it', async (t) => {
  const cluster = await startCluster(t);
  const a = await startMount(t, cluster, mountArgs);
  const b = await startMount(t, cluster, mountArgs);
  const local = await localDir(t);
  const v1 = randomBytes(9 * 1024 * 1024 + 4321); // three chunks, the last one short
  const v2 = randomBytes(v1.length); // same size: only the content tells the versions apart
  const v3 = randomBytes(1234);
  await writeFile(join(local, 'v1'), v1);
  await writeFile(join(local, 'v2'), v2);
  await writeFile(join(local, 'v3'), v3);

  await run(`cp ${q(join(local, 'v1'))} ${q(join(a.dir, 'f'))}`);
  t.is((await run(`sha256sum < ${q(join(b.dir, 'f'))}`)).split(' ')[0], sha256(v1));
  // B has the file in its page cache now; A replaces the content (same size), B must read the new one.
  await run(`cp ${q(join(local, 'v2'))} ${q(join(a.dir, 'f'))}`);
  t.is((await run(`sha256sum < ${q(join(b.dir, 'f'))}`)).split(' ')[0], sha256(v2));
  // A smaller version: B sees the new size and content at its next open.
  await run(`cp ${q(join(local, 'v3'))} ${q(join(a.dir, 'f'))}`);
  t.is((await run(`sha256sum < ${q(join(b.dir, 'f'))}`)).split(' ')[0], sha256(v3));
  t.is(await run(`stat -c %s ${q(join(b.dir, 'f'))}`), `${v3.length}\n`);
  // B's kernel has just been told the small size; A makes the file larger a moment later: B's next open
  // reads it whole, not up to the size B was told.
  const v4 = randomBytes(5000);
  await writeFile(join(local, 'v4'), v4);
  await run(`cp ${q(join(local, 'v4'))} ${q(join(a.dir, 'f'))}`);
  t.is((await run(`sha256sum < ${q(join(b.dir, 'f'))}`)).split(' ')[0], sha256(v4));
  // And the other way round, with small files written by the shell.
  await run(`echo from-b > ${q(join(b.dir, 'g'))} && echo more >> ${q(join(b.dir, 'g'))}`);
  t.is(await readFile(join(a.dir, 'g'), 'utf8'), 'from-b\nmore\n');
});

test.serial('a rename in one mount shows in the other once the attribute and entry timeouts have passed', async (t) => {
  const cluster = await startCluster(t);
  const a = await startMount(t, cluster, mountArgs);
  const b = await startMount(t, cluster, mountArgs);
  await run('mkdir -p dir/sub && echo payload > dir/sub/x', { cwd: a.dir });
  // B looks at the names first, so its caches hold them.
  t.is(await run('cat dir/sub/x && ls dir/sub', { cwd: b.dir }), 'payload\nx\n');

  await run('mv dir/sub/x dir/sub/y && mv dir dir2', { cwd: a.dir });
  const seen = await eventually(
    async () => (await run('test -e dir2/sub/y && ! test -e dir/sub/x && ! test -e dir && echo yes || true', { cwd: b.dir })) === 'yes\n',
    10_000,
    50,
  );
  const limit = ATTR_TIMEOUT_MS + ENTRY_TIMEOUT_S * 1000 + 2_000;
  t.true(seen.ok, 'B sees the rename');
  t.true(seen.ms < limit, `B saw the rename after ${seen.ms} ms; the timeouts allow ${limit}`);
  t.log(`the rename showed in the other mount after ${seen.ms} ms`);
  t.is(await run('cat dir2/sub/y && ls -A . dir2/sub', { cwd: b.dir }), 'payload\n.:\ndir2\n\ndir2/sub:\ny\n');
  // A file renamed over another: B reads the new content under the old name.
  await run('echo old > target && echo new > incoming', { cwd: a.dir });
  t.is(await run('cat target', { cwd: b.dir }), 'old\n');
  await run('mv incoming target', { cwd: a.dir });
  const replaced = await eventually(async () => (await run('cat target; test -e incoming && echo still-there || true', { cwd: b.dir })) === 'new\n', 10_000, 50);
  t.true(replaced.ok);
  t.true(replaced.ms < limit, `took ${replaced.ms} ms`);
});

test.serial('a folder this mount just made answers "no such name" itself; another mount\'s new name there shows within the timeout', async (t) => {
  const { a, b, stats } = await twoMounts(t);
  const local = await localDir(t);
  await run('for i in $(seq 20); do echo "file $i" > f$i; done', { cwd: local });

  // cp looks up every name before creating it; A made the folder, so it knows they are not there.
  const before = stats();
  await run(`mkdir new && cp ${q(local)}/f* new/`, { cwd: a.dir });
  t.true(stats() - before < 5, `${stats() - before} stats on the name server for 20 new names`);
  t.is(await run('cat new/f7 && ls new | wc -l', { cwd: b.dir }), 'file 7\n20\n');

  // A name made elsewhere: missing for A until its knowledge of the new folder runs out.
  await run('echo from-b > new/other', { cwd: b.dir });
  const seen = await eventually(async () => (await run('test -e new/other && echo yes || true', { cwd: a.dir })) === 'yes\n', 10_000, 50);
  t.true(seen.ok, 'A sees the new name');
  t.true(seen.ms < ATTR_TIMEOUT_MS + 2_000, `A saw it after ${seen.ms} ms`);
  await run('mkdir second', { cwd: a.dir });
  await run('echo from-b > second/x', { cwd: b.dir });
  t.is(await run('ls second && cat second/x', { cwd: a.dir }), 'x\nfrom-b\n', 'a listing always asks');
  // What A learns on the way counts at once: a name a listing showed, a name a create found taken.
  t.is(await run('setfattr -n user.k -v 1 second/x && stat -c %s second/x', { cwd: a.dir }), '7\n');
  await run('mkdir fourth', { cwd: a.dir });
  await run('echo from-b > fourth/y', { cwd: b.dir });
  t.is(await run('mkdir fourth/y 2>&1 | grep -c "File exists"; test -e fourth/y && echo there', { cwd: a.dir }), '1\nthere\n');
  // A's own changes in a folder it made show at once: a removed name is missing, a renamed one is there under its new name.
  t.is(
    await run('mkdir third && echo 1 > third/f1 && echo 2 > third/f2 && rm third/f1 && mv third/f2 third/g2 && ls third/f1 third/f2 2>&1 | wc -l && cat third/g2 && echo again > third/f1 && cat third/f1', { cwd: a.dir }),
    '2\n2\nagain\n',
  );
});

test.serial('with the change feed heard, a folder this mount made answers "no such name" itself past the timeout, and shows names made there elsewhere at once', async (t) => {
  const { a, b, stats } = await twoMounts(t);
  await run('mkdir made', { cwd: a.dir });
  await pastTimeouts();
  const before = stats();
  await run('for i in $(seq 10); do echo "file $i" > made/f$i; done', { cwd: a.dir });
  t.true(stats() - before <= 2, `${stats() - before} stats on the name server for 10 new names in a folder A made`);
  await run('echo from-b > made/other', { cwd: b.dir });
  const seen = await eventually(async () => (await run('cat made/other 2>/dev/null || true', { cwd: a.dir })) === 'from-b\n', 5_000, 50);
  t.true(seen.ok, 'A sees the name B made');
  t.is(await run('ls made | wc -l', { cwd: a.dir }), '11\n');
});

test.serial('with the change feed heard, a mount answers lookups itself past the timeout and still sees other mounts\' changes at once', async (t) => {
  const { a, b, stats } = await twoMounts(t);
  await run('mkdir d && for i in $(seq 20); do echo "file $i" > d/f$i; done', { cwd: b.dir });
  // A lists the folder once, then waits past every timeout: what it holds is still true, and the feed says so.
  t.is(await run('ls d | wc -l', { cwd: a.dir }), '20\n');
  await pastTimeouts();
  const before = stats();
  t.is(await run('stat -c %s d/f1 d/f2 d/f3 d/f4 d/f5 d/f6 | sort -u; test -e d/new || echo missing', { cwd: a.dir }), '7\nmissing\n');
  // Seven lookups of names in d; only folders' own attributes (d's, perhaps the root's) are asked for again.
  t.true(stats() - before <= 2, `${stats() - before} stats on the name server: the names in d were answered by the mount itself`);

  // B changes names and content: A shows each change within the kernel's own timeouts, well before the
  // minute a kept entry may last.
  await run('echo new > d/new && echo "file 3, longer" > d/f3 && rm d/f5 && mv d/f6 d/g6 && mkdir d/sub', { cwd: b.dir });
  const seen = await eventually(
    async () =>
      (await run('cat d/new; stat -c %s d/f3; test -e d/f5 || echo f5-gone; test -e d/f6 || echo f6-gone; cat d/g6; test -d d/sub && echo sub', { cwd: a.dir })) ===
      'new\n15\nf5-gone\nf6-gone\nfile 6\nsub\n',
    5_000,
    50,
  );
  t.true(seen.ok, 'A sees what B did');
  t.log(`another mount's changes showed after ${seen.ms} ms`);
  // A folder moved elsewhere takes what A knew below it along.
  await run('ls d/sub && echo x > d/sub/x', { cwd: a.dir });
  await run('mv d/sub d/sub2 && rm d/sub2/x', { cwd: b.dir });
  const moved = await eventually(async () => (await run('test -e d/sub/x || echo gone; ls d/sub2 | wc -l', { cwd: a.dir })) === 'gone\n0\n', 5_000, 50);
  t.true(moved.ok, 'A sees the folder moved and emptied');
});

test.serial('a name made elsewhere in a new folder before the folder\'s mkdir was answered shows within the timeout', async (t) => {
  const cluster = await startCluster(t);
  // A's mkdir answers are held back 3 s; its change feed goes through at once.
  const slow = await delayingProxy(t, cluster.url, [{ method: 'POST', path: '/fs/mkdir', ms: 3_000 }]);
  const a = await startMount(t, { url: slow, env: cluster.env }, mountArgs);
  let answered = false;
  const made = run('mkdir early', { cwd: a.dir }).finally(() => (answered = true));
  made.catch(() => undefined); // awaited below; a failure before then must not go unhandled
  // Another client puts a name in the folder as soon as it exists: A hears of it before its mkdir returns.
  await pollUntil('the folder made', () => cluster.client.ns.call(nameApi.stat, { path: '/early' }).catch(() => undefined), (attr) => attr !== undefined, 5_000, 10);
  await cluster.client.writeFile('/early/x', bufferSource(Buffer.from('from elsewhere\n')));
  t.false(answered, 'the name was made before the mkdir was answered');
  await made;
  await pastTimeouts();
  t.is(await run('cat early/x 2>&1; ls early', { cwd: a.dir }), 'from elsewhere\nx\n');
});

test.serial('after the name server restarts, a mount trusts nothing it kept before, and hears changes made before it reconnected', async (t) => {
  const { cluster, a, b, stats } = await twoMounts(t);
  await run('mkdir d && echo one > d/f1', { cwd: b.dir });
  t.is(await run('ls d', { cwd: a.dir }), 'f1\n');

  await cluster.nameServer.stop();
  await cluster.startNameServer();
  // B changes the folder at once, likely before A's feed is back: A hears of it by starting over.
  await run('echo two > d/f2 && echo "one, longer" > d/f1', { cwd: b.dir });
  await pastTimeouts();
  const before = stats();
  t.is(await run('cat d/f2; stat -c %s d/f1', { cwd: a.dir }), 'two\n12\n');
  t.true(stats() - before >= 1, 'A asked the restarted name server again');
});
