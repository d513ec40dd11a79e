import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, readlink, rename, rmdir, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { nameApi } from '../protocol/name-api.js';
import { readAll, startCluster, type TestCluster } from './harness.js';
import { fuseTrace, sh, startMount, TRACE_FUSE, type TestMount } from './mount-harness.js';
import { eventually, localDir, q, run } from './mount-util.js';

/**
 * POSIX details through a real mount: O_APPEND, open files that lose their name, special files,
 * extended attributes, statfs, and the errno of every failure compared with a local file system.
 */

const env = { TZ: 'UTC', LC_ALL: 'C' };

async function setup(t: ExecutionContext): Promise<{ cluster: TestCluster; mnt: TestMount }> {
  const cluster = await startCluster(t);
  return { cluster, mnt: await startMount(t, cluster) };
}

/** Names libfuse gives files unlinked while open (until their last close). */
async function hiddenFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith('.fuse_hidden'));
}

test.serial('O_APPEND: two processes appending at once both land, whole lines, nothing lost', async (t) => {
  const { cluster, mnt } = await setup(t);
  const dir = mnt.dir;
  // Each echo opens with O_APPEND, writes, closes; the two loops race.
  await run(
    String.raw`
    : > short
    (for i in $(seq 1 60); do echo "A$i" >> short; done) & (for i in $(seq 1 60); do echo "B$i" >> short; done) & wait
  `,
    { cwd: dir },
  );
  // Each holds one O_APPEND descriptor open across all its writes.
  await run(
    String.raw`
    printf 'head\n' > long
    (exec 3>>long; for i in $(seq 1 200); do echo "C$i" >&3; done) & (exec 4>>long; for i in $(seq 1 200); do echo "D$i" >&4; done) & wait
  `,
    { cwd: dir },
  );
  const expect = (prefixes: string[], n: number): string[] => prefixes.flatMap((p) => Array.from({ length: n }, (_, i) => `${p}${i + 1}`)).sort();
  const short = (await readFile(join(dir, 'short'), 'utf8')).split('\n').filter(Boolean);
  t.deepEqual([...short].sort(), expect(['A', 'B'], 60));
  const long = (await readFile(join(dir, 'long'), 'utf8')).split('\n').filter(Boolean);
  t.is(long[0], 'head');
  t.deepEqual(long.slice(1).sort(), expect(['C', 'D'], 200));
  // Each writer's own lines stay in its order.
  t.deepEqual(
    long.filter((l) => l.startsWith('C')),
    expect(['C'], 200).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))),
  );
  // What the cluster holds is the same (everything was committed at close).
  t.is((await readAll(cluster.client, '/long')).toString('utf8'), await readFile(join(dir, 'long'), 'utf8'));
  t.is((await readAll(cluster.client, '/short')).toString('utf8').split('\n').length, 121);
});

test.serial('an open file stays readable and writable after it is unlinked, until it is closed', async (t) => {
  const { cluster, mnt } = await setup(t);
  const path = join(mnt.dir, 'doomed');
  const big = randomBytes(5 * 1024 * 1024 + 77); // more than one chunk
  await writeFile(path, big);
  const handle = await open(path, 'r+');
  try {
    await unlink(path);
    await t.throwsAsync(stat(path), { code: 'ENOENT' });
    t.false((await readdir(mnt.dir)).includes('doomed'));
    // Still readable, whole.
    const back = Buffer.alloc(big.length);
    const { bytesRead } = await handle.read(back, 0, big.length, 0);
    t.is(bytesRead, big.length);
    t.true(back.equals(big));
    // Still writable, in the middle and past the end, and those writes read back.
    await handle.write(Buffer.from('MIDDLE'), 0, 6, 4 * 1024 * 1024 - 3);
    await handle.write(Buffer.from('-tail'), 0, 5, big.length);
    await handle.sync();
    const expected = Buffer.concat([big, Buffer.from('-tail')]);
    Buffer.from('MIDDLE').copy(expected, 4 * 1024 * 1024 - 3);
    const again = Buffer.alloc(expected.length + 10);
    const read2 = await handle.read(again, 0, again.length, 0);
    t.is(read2.bytesRead, expected.length);
    t.true(again.subarray(0, read2.bytesRead).equals(expected));
    t.is((await handle.stat()).size, expected.length);
  } finally {
    await handle.close();
  }
  // Gone for good once closed: no hidden leftover in the mount or in the cluster.
  const gone = await eventually(async () => (await hiddenFiles(mnt.dir)).length === 0, 5_000);
  t.true(gone.ok, `hidden files left: ${(await hiddenFiles(mnt.dir)).join(', ')}`);
  const { entries } = await cluster.client.ns.call(nameApi.list, { path: '/' });
  t.deepEqual(entries.map((e) => e.name), []);
});

test.serial('an open file renamed over stays readable and writable until closed; the new file is the one the name shows', async (t) => {
  const { mnt } = await setup(t);
  const a = join(mnt.dir, 'a');
  const b = join(mnt.dir, 'b');
  await writeFile(a, 'old content');
  await writeFile(b, 'the new one');
  const handle = await open(a, 'r+');
  try {
    await rename(b, a);
    t.is(await readFile(a, 'utf8'), 'the new one');
    const buf = Buffer.alloc(64);
    t.is(buf.subarray(0, (await handle.read(buf, 0, 64, 0)).bytesRead).toString(), 'old content');
    await handle.write('OLD', 0);
    await handle.write(' and more', 11);
    await handle.sync();
    t.is(buf.subarray(0, (await handle.read(buf, 0, 64, 0)).bytesRead).toString(), 'OLD content and more');
    t.is(await readFile(a, 'utf8'), 'the new one', 'writes to the old file do not reach the new one');
  } finally {
    await handle.close();
  }
  t.is(await readFile(a, 'utf8'), 'the new one');
  const gone = await eventually(async () => (await hiddenFiles(mnt.dir)).length === 0, 5_000);
  t.true(gone.ok);
  t.deepEqual((await readdir(mnt.dir)).sort(), ['a']);
  // The same through a shell: a descriptor kept across rm, written and read through /proc.
  const out = await run(
    String.raw`
    echo base > f
    exec 3<>f
    rm f
    test ! -e f && echo removed
    echo more >&3
    cat /proc/self/fd/3 <&3
    cat /proc/$$/fd/3
    exec 3>&-
  `,
    { cwd: mnt.dir },
  );
  t.is(out, 'removed\nmore\nmore\n');
});

test.serial('mkfifo makes a fifo (stat says so) that works as a pipe', async (t) => {
  const { cluster, mnt } = await setup(t);
  const out = await run(
    String.raw`
    mkfifo -m 640 p
    stat -c '%n|%F|%a|%s' p
    test -p p && echo is-a-pipe
    ls -l p | cut -c1
    (echo through-the-fifo > p &) ; timeout 10 cat p
  `,
    { cwd: mnt.dir, env },
  );
  t.is(out, 'p|fifo|640|0\nis-a-pipe\np\nthrough-the-fifo\n');
  // The type is stored in the cluster, not only in this mount's memory.
  const attr = await cluster.client.stat('/p');
  t.is(attr.type, 'fifo');
  t.is(attr.mode, 0o010640);
});

/**
 * A directory's and a file's link count, mode, size (the file's) and mtime, as stat(1) shows them, after
 * each of a series of changes made through the mount.
 */
const ATTR_CHANGES = String.raw`
  show() { stat -c '%h %a %Y' d; stat -c '%h %a %s %Y' f; }
  mkdir d; touch -d @1000000000 d; echo one > f; touch -d @1000000000 f; show
  mkdir d/sub; echo two >> f; show
  touch -d @1000000100 d f; chmod 750 d; chmod 600 f; show
  echo x > d/f; truncate -s 100 f; show
  touch -d @1000000200 d f; mv d/f moved; ln f d/hard; show
  touch -d @1000000300 d f; ln moved d/hard2; rm d/hard; show
  touch -d @1000000400 d f; rmdir d/sub; : > f; show
  chmod 700 d; touch -d @1000000500 d; rm d/hard2; show
`;

test.serial('the kernel keeps the attributes of directories and of files with one name, yet every change through the mount shows at once, as on a local disk', async (t) => {
  const cluster = await startCluster(t);
  const mnt = await startMount(t, cluster, [], TRACE_FUSE);
  const local = await localDir(t);
  // Times that the change itself sets show as "now": compare whether they moved, not their value.
  const normalise = (out: string): string[] => {
    const now = Math.floor(Date.now() / 1000);
    return out.trim().split('\n').map((line) => line.replace(/ (\d+)$/, (_, s: string) => (Math.abs(Number(s) - now) < 120 ? ' now' : ` ${s}`)));
  };
  const inMount = normalise(await run(ATTR_CHANGES, { cwd: mnt.dir, env }));
  t.deepEqual(inMount, normalise(await run(ATTR_CHANGES, { cwd: local, env })));
  t.is(inMount.length, 16);

  // Cached: 50 stats of a file three folders down ask for the folders' and the file's attributes a few
  // times, not 50; a file with two names is asked every time (a change through its other name is a change
  // to another inode for the kernel).
  await run('mkdir -p a/b/c && echo x > a/b/c/f && echo y > a/b/c/g && ln a/b/c/g a/b/c/h', { cwd: mnt.dir });
  const getattrsOf = (path: string): number =>
    fuseTrace(mnt, 'getattr').filter((line) => line.path === path).length;
  const paths = ['/a/b', '/a/b/c/f', '/a/b/c/g'];
  const before = paths.map(getattrsOf);
  await run('for i in $(seq 50); do stat -c %s a/b/c/f a/b/c/g > /dev/null; done', { cwd: mnt.dir });
  const [dirAsks, oneNameAsks, twoNameAsks] = paths.map((path, i) => getattrsOf(path) - before[i]!);
  t.true(dirAsks! <= 10, `the folder on the way was asked ${dirAsks} times for 100 stats`);
  t.true(oneNameAsks! <= 10, `the file with one name was asked ${oneNameAsks} times for 50 stats`);
  t.true(twoNameAsks! >= 50, `the file with two names was asked ${twoNameAsks} times for 50 stats`);
});

test.serial('getfattr -d shows user.dfs.replicas and user.dfs.version; user.* attributes round-trip', async (t) => {
  const { cluster, mnt } = await setup(t);
  const dir = mnt.dir;
  await run('echo one > f && echo two >> f && mkdir d', { cwd: dir });
  const version = (await cluster.client.stat('/f')).version;
  t.true(version >= 1);
  const dump = await run('getfattr -d f', { cwd: dir });
  t.regex(dump, /^user\.dfs\.replicas="2"$/m);
  t.regex(dump, new RegExp(`^user\\.dfs\\.version="${version}"$`, 'm'));
  // A small file is kept by the name server (one copy, there); a larger one has its copies on storage servers.
  t.regex(dump, /^user\.dfs\.copies="1"$/m);
  t.is(await run('getfattr --only-values -n user.dfs.servers f', { cwd: dir }), 'name-server');
  await run('head -c 100000 /dev/urandom > big', { cwd: dir });
  t.is(await run('getfattr --only-values -n user.dfs.copies big', { cwd: dir }), '2');
  t.regex(await run('getfattr --only-values -n user.dfs.servers big', { cwd: dir }), /^[^,]+,[^,]+$/);
  // A new version shows a new number.
  await run('echo three >> f', { cwd: dir });
  t.is(await run('getfattr --only-values -n user.dfs.version f', { cwd: dir }), String((await cluster.client.stat('/f')).version));
  t.not((await cluster.client.stat('/f')).version, version);
  // Our own attributes, on a file and a directory.
  await run(`setfattr -n user.color -v blue f && setfattr -n user.note -v 'two words' d && setfattr -n user.bin -v 0x00ff10 f`, { cwd: dir });
  t.is(await run('getfattr --only-values -n user.color f', { cwd: dir }), 'blue');
  t.is(await run('getfattr --only-values -n user.note d', { cwd: dir }), 'two words');
  t.is(await run('getfattr -e hex --only-values -n user.bin f | od -An -tx1 | tr -d " \\n"', { cwd: dir }), '00ff10');
  t.regex(await run('getfattr -d f', { cwd: dir }), /^user\.color="blue"$/m);
  await run('setfattr -n user.color -v green f', { cwd: dir });
  t.is(await run('getfattr --only-values -n user.color f', { cwd: dir }), 'green');
  await run('setfattr -x user.color f', { cwd: dir });
  const missing = await sh('getfattr -n user.color f', { cwd: dir, env });
  t.not(missing.code, 0);
  t.regex(missing.stderr, /No such attribute/);
  t.notRegex(await run('getfattr -d f', { cwd: dir }), /user\.color/);
  // The attributes are stored in the cluster: another mount reads them.
  const other = await startMount(t, cluster);
  t.is(await run('getfattr --only-values -n user.note d', { cwd: other.dir }), 'two words');
});

test.serial('POSIX ACL attributes are answered "none" by the binding itself, so ls -l asks the mount once per entry, not twice', async (t) => {
  const cluster = await startCluster(t);
  const mnt = await startMount(t, cluster, [], TRACE_FUSE);
  await run('mkdir d && for i in $(seq 10); do echo $i > d/f$i; done', { cwd: mnt.dir });
  const getxattrs = (): number => fuseTrace(mnt, 'getxattr').length;
  const before = getxattrs();
  // ls -l asks every entry for security.selinux and system.posix_acl_access (folders for the default ACL too).
  await run('ls -l d > /dev/null', { cwd: mnt.dir });
  t.is(getxattrs() - before, 11, 'one call per entry and one for the folder: security.selinux');
  const acl = await sh('getfattr -n system.posix_acl_access d/f1', { cwd: mnt.dir, env });
  t.not(acl.code, 0);
  t.regex(acl.stderr, /No such attribute/);
  // dfs stores no ACL (it would not enforce one): setting one is refused, so "none" stays true.
  const set = await sh('setfattr -n system.posix_acl_access -v 0x02000000 d/f1', { cwd: mnt.dir, env });
  t.not(set.code, 0);
  t.regex(set.stderr, /Operation not supported/);
  t.is(await run('cat d/f1', { cwd: mnt.dir }), '1\n');
});

test.serial('statfs: df shows a size and free space > 0, the cluster capacity over the replication factor', async (t) => {
  const { cluster, mnt } = await setup(t);
  const [size, avail] = (await run(`df -B1 --output=size,avail ${q(mnt.dir)} | tail -n 1`)).trim().split(/\s+/).map(Number);
  t.true(size! > 0);
  t.true(avail! > 0);
  t.true(avail! <= size!);
  const status = await cluster.status();
  const expected = status.storage.capacity / status.replicas;
  t.true(Math.abs(size! - expected) / expected < 0.01, `df size ${size}, cluster capacity / replicas ${expected}`);
  t.regex(await run(`stat -f -c '%l %T' ${q(mnt.dir)}`), /^255 fuse/);
});

/** Each operation's errno (or "ok") on a fresh tree under `root`. */
async function errnos(root: string): Promise<Record<string, string>> {
  const p = (x: string): string => join(root, x);
  await mkdir(p('dir/sub'), { recursive: true });
  await writeFile(p('dir/sub/f'), 'x');
  await writeFile(p('file'), 'data');
  await mkdir(p('empty'));
  await mkdir(p('full'));
  await writeFile(p('full/x'), '');
  await mkdir(p('e1'));
  await mkdir(p('e2'));
  await writeFile(p('h1'), 'linked');
  await link(p('h1'), p('h2'));
  await symlink('file', p('slink'));
  await symlink('dir', p('dlink'));
  await symlink('nowhere', p('dangling'));
  const long = 'n'.repeat(256);
  const max = 'm'.repeat(255);
  const cases: [string, () => Promise<unknown>][] = [
    ['stat missing', () => stat(p('missing'))],
    ['open missing/child', () => readFile(p('missing/child'))],
    ['create in a missing dir', () => writeFile(p('missing/child'), 'x')],
    ['unlink missing', () => unlink(p('missing'))],
    ['rmdir missing', () => rmdir(p('missing'))],
    ['rename missing', () => rename(p('missing'), p('other'))],
    ['mkdir an existing dir', () => mkdir(p('dir'))],
    ['mkdir an existing file', () => mkdir(p('file'))],
    ['O_CREAT|O_EXCL an existing file', () => open(p('file'), 'wx').then((h) => h.close())],
    ['symlink onto an existing name', () => symlink('t', p('file'))],
    ['link onto an existing name', () => link(p('file'), p('dir'))],
    ['rmdir a non-empty dir', () => rmdir(p('dir'))],
    ['rename a dir onto a non-empty dir', () => rename(p('empty'), p('full'))],
    ['mkdir under a file', () => mkdir(p('file/x'))],
    ['stat under a file', () => stat(p('file/x'))],
    ['create under a file', () => writeFile(p('file/x'), '')],
    ['rmdir a file', () => rmdir(p('file'))],
    ['rename a dir onto a file', () => rename(p('empty'), p('file'))],
    ['readdir a file', () => readdir(p('file'))],
    ['unlink a dir', () => unlink(p('dir'))],
    ['open a dir for writing', () => open(p('dir'), 'w').then((h) => h.close())],
    ['read a dir', () => open(p('dir'), 'r').then((h) => h.read(Buffer.alloc(10), 0, 10, 0).finally(() => h.close()))],
    ['rename a file onto a dir', () => rename(p('file'), p('empty'))],
    ['create a 256-byte name', () => writeFile(p(long), '')],
    ['mkdir a 256-byte name', () => mkdir(p(long))],
    ['stat a 256-byte name', () => stat(p(long))],
    ['rename to a 256-byte name', () => rename(p('file'), p(long))],
    ['create a 255-byte name', () => writeFile(p(max), 'ok')],
    ['rename a dir into its own subdir', () => rename(p('dir'), p('dir/sub/inside'))],
    ['rename a dir into itself', () => rename(p('dir'), p('dir/inside'))],
    ['readlink a file', () => readlink(p('file'))],
    ['link a dir', () => link(p('dir'), p('dirlink'))],
    ['rename into a missing dir', () => rename(p('file'), p('missing/file'))],
    ['link a missing file', () => link(p('missing'), p('l2'))],
    ['symlink in a missing dir', () => symlink('x', p('missing/s'))],
    ['unlink under a file', () => unlink(p('file/x'))],
    ['truncate a dir', () => truncate(p('dir'), 0)],
    ['rmdir a symlink to a dir', () => rmdir(p('dlink'))],
    ['mkdir through a symlink to a file', () => mkdir(p('slink/x'))],
    ['readdir a missing dir', () => readdir(p('missing'))],
    ['stat a file with a trailing slash', () => stat(p('file') + '/')],
    ['O_DIRECTORY open of a file', () => open(p('file'), constants.O_RDONLY | constants.O_DIRECTORY).then((h) => h.close())],
    ['O_CREAT|O_EXCL through a dangling symlink', () => open(p('dangling'), 'wx').then((h) => h.close())],
    ['write to a read-only descriptor', () => open(p('file'), 'r').then((h) => h.write('x').finally(() => h.close()))],
    ['rename a dir onto its parent', () => rename(p('dir/sub'), p('dir'))],
    ['rename a dir onto an empty dir', () => rename(p('e1'), p('e2')).then(async () => `${(await readdir(root)).includes('e1')}`)],
    ['rename between two names of one file', () => rename(p('h1'), p('h2')).then(async () => `${(await readdir(root)).filter((n) => n.startsWith('h')).sort()}`)],
    ['rename a file onto itself', () => rename(p('file'), p('file')).then(() => readFile(p('file'), 'utf8'))],
  ];
  const out: Record<string, string> = {};
  for (const [name, fn] of cases) {
    try {
      const value = await fn();
      out[name] = typeof value === 'string' ? `ok ${value}` : 'ok';
    } catch (err) {
      out[name] = (err as NodeJS.ErrnoException).code ?? String(err);
    }
  }
  return out;
}

test.serial('errors are exactly those of Linux: ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, ENAMETOOLONG, EINVAL, EPERM', async (t) => {
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const want = await errnos(local);
  const got = await errnos(mnt.dir);
  t.deepEqual(got, want);
  // And the reference says what it should.
  t.deepEqual(got, {
    'stat missing': 'ENOENT',
    'open missing/child': 'ENOENT',
    'create in a missing dir': 'ENOENT',
    'unlink missing': 'ENOENT',
    'rmdir missing': 'ENOENT',
    'rename missing': 'ENOENT',
    'mkdir an existing dir': 'EEXIST',
    'mkdir an existing file': 'EEXIST',
    'O_CREAT|O_EXCL an existing file': 'EEXIST',
    'symlink onto an existing name': 'EEXIST',
    'link onto an existing name': 'EEXIST',
    'rmdir a non-empty dir': 'ENOTEMPTY',
    'rename a dir onto a non-empty dir': 'ENOTEMPTY',
    'mkdir under a file': 'ENOTDIR',
    'stat under a file': 'ENOTDIR',
    'create under a file': 'ENOTDIR',
    'rmdir a file': 'ENOTDIR',
    'rename a dir onto a file': 'ENOTDIR',
    'readdir a file': 'ENOTDIR',
    'unlink a dir': 'EISDIR',
    'open a dir for writing': 'EISDIR',
    'read a dir': 'EISDIR',
    'rename a file onto a dir': 'EISDIR',
    'create a 256-byte name': 'ENAMETOOLONG',
    'mkdir a 256-byte name': 'ENAMETOOLONG',
    'stat a 256-byte name': 'ENAMETOOLONG',
    'rename to a 256-byte name': 'ENAMETOOLONG',
    'create a 255-byte name': 'ok',
    'rename a dir into its own subdir': 'EINVAL',
    'rename a dir into itself': 'EINVAL',
    'readlink a file': 'EINVAL',
    'link a dir': 'EPERM',
    'rename into a missing dir': 'ENOENT',
    'link a missing file': 'ENOENT',
    'symlink in a missing dir': 'ENOENT',
    'unlink under a file': 'ENOTDIR',
    'truncate a dir': 'EISDIR',
    'rmdir a symlink to a dir': 'ENOTDIR',
    'mkdir through a symlink to a file': 'ENOTDIR',
    'readdir a missing dir': 'ENOENT',
    'stat a file with a trailing slash': 'ENOTDIR',
    'O_DIRECTORY open of a file': 'ENOTDIR',
    'O_CREAT|O_EXCL through a dangling symlink': 'EEXIST',
    'write to a read-only descriptor': 'EBADF',
    'rename a dir onto its parent': 'ENOTEMPTY',
    'rename a dir onto an empty dir': 'ok false',
    'rename between two names of one file': 'ok h1,h2',
    'rename a file onto itself': 'ok data',
  });
  // What the shell tools print for them.
  const shell = await sh(`mkdir dir; rmdir nope; touch file/x; mv dir dir/sub/x; touch ${'n'.repeat(256)}; true`, { cwd: mnt.dir, env });
  t.regex(shell.stderr, /cannot create directory 'dir': File exists/);
  t.regex(shell.stderr, /failed to remove 'nope': No such file or directory/);
  t.regex(shell.stderr, /cannot touch 'file\/x': Not a directory/);
  t.regex(shell.stderr, /cannot move 'dir' to a subdirectory of itself/);
  t.regex(shell.stderr, /File name too long/);
});
