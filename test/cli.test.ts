import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { DfsError } from '../protocol/errors.js';
import { nameApi, type ClusterStatus, type FileInfo } from '../protocol/name-api.js';
import { nsToMs } from '../protocol/time.js';
import { chunkFiles, cliEnv, readAll, runCli, sha256Hex, sleep, startCluster, type TestCluster } from './harness.js';
import { assertCliError, assertCliOk } from './http-helpers.js';

/** The `dfs` CLI end to end, as a separate process against a real cluster. */

const MiB = 1024 * 1024;

function dfsOf(cluster: TestCluster) {
  const env = cliEnv(cluster);
  return async (...args: string[]) => runCli(args, { env });
}

async function allChunkFiles(cluster: TestCluster): Promise<string[][]> {
  return Promise.all(cluster.storage.map(async (s) => [...(await chunkFiles(s.dataDir))].sort()));
}

async function exists(cluster: TestCluster, path: string): Promise<boolean> {
  try {
    await cluster.client.stat(path);
    return true;
  } catch (err) {
    if (err instanceof DfsError && err.code === 'ENOENT') return false;
    throw err;
  }
}

test.serial('put, get, cat, ls, ls -l, info and status', async (t) => {
  const cluster = await startCluster(t, { storageServers: 2 });
  const dfs = dfsOf(cluster);
  const local = join(cluster.dir, 'local');
  await mkdir(local);
  // Two chunks (4 MiB + a short one) and a small text file with its own mode.
  const big = randomBytes(4 * MiB + 1234);
  await writeFile(join(local, 'a.bin'), big);
  await writeFile(join(local, 'notes.txt'), 'line one\nline two\n');
  await chmod(join(local, 'notes.txt'), 0o640);

  assertCliOk(t, await dfs('mkdir', '-p', '/data/sub/deep'), 'mkdir -p');
  assertCliOk(t, await dfs('put', join(local, 'a.bin'), '/data/'), 'put into a dir (trailing slash)');
  assertCliOk(t, await dfs('put', join(local, 'notes.txt'), '/data'), 'put into an existing dir');
  assertCliOk(t, await dfs('put', join(local, 'notes.txt'), '/data/renamed.txt'), 'put to a new name');

  // get: to a file, into a directory, and to standard output; bytes equal.
  const out = join(cluster.dir, 'out');
  await mkdir(out);
  assertCliOk(t, await dfs('get', '/data/a.bin', join(out, 'copy.bin')), 'get to a file');
  t.true((await readFile(join(out, 'copy.bin'))).equals(big), 'get returns the same bytes');
  assertCliOk(t, await dfs('get', '/data/a.bin', out), 'get into a dir');
  t.true((await readFile(join(out, 'a.bin'))).equals(big));
  const stdout = await dfs('get', '/data/notes.txt', '-');
  assertCliOk(t, stdout, 'get to stdout');
  t.is(stdout.stdout, 'line one\nline two\n');
  t.true((await readAll(cluster.client, '/data/a.bin')).equals(big), 'the store holds the same bytes');

  // cat, of one and of several files.
  const cat = await dfs('cat', '/data/notes.txt', '/data/renamed.txt');
  assertCliOk(t, cat, 'cat');
  t.is(cat.stdout, 'line one\nline two\n'.repeat(2));

  // ls: names, sorted, one a line; of a file: its name; of several: headed sections.
  const ls = await dfs('ls', '/data');
  assertCliOk(t, ls, 'ls');
  t.is(ls.stdout, 'a.bin\nnotes.txt\nrenamed.txt\nsub\n');
  t.is((await dfs('ls', '/data/notes.txt')).stdout, 'notes.txt\n');
  t.is((await dfs('ls', '/data/sub', '/data/sub/deep')).stdout, '/data/sub:\ndeep\n\n/data/sub/deep:\n');
  const long = await dfs('ls', '-l', '/data');
  assertCliOk(t, long, 'ls -l');
  const lines = long.stdout.trimEnd().split('\n');
  t.is(lines.length, 4, long.stdout);
  t.regex(lines[0]!, new RegExp(`^-rw-r--r--\\s+1\\s+\\d+\\s+\\d+\\s+${big.length}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+a\\.bin$`));
  t.regex(lines[1]!, /^-rw-r-----\s+1\s+\d+\s+\d+\s+18\s+\S+ \S+\s+notes\.txt$/, 'the local mode and size travel');
  t.regex(lines[3]!, /^drwxr-xr-x\s+3\s+.*\ssub$/, 'a dir with one subdir has 3 links');

  // info: size, chunks, and the servers holding each; --json has the real chunk hashes.
  const infoText = await dfs('info', '/data/a.bin');
  assertCliOk(t, infoText, 'info');
  t.regex(infoText.stdout, new RegExp(`size:\\s+${big.length} bytes`));
  t.regex(infoText.stdout, /chunks:\s+2 of up to 4\.0 MiB/);
  t.regex(infoText.stdout, /fully replicated/);
  t.notRegex(infoText.stdout, /NOT fully replicated/);
  for (const s of cluster.storage) t.true(infoText.stdout.includes(s.id), `info names server ${s.id}`);
  const infoJson = await dfs('info', '--json', '/data/a.bin');
  assertCliOk(t, infoJson, 'info --json');
  const info = JSON.parse(infoJson.stdout) as FileInfo;
  t.is(info.attr.size, big.length);
  t.deepEqual(
    info.chunks.map((c) => [c.hash, c.offset, c.size]),
    [
      [sha256Hex(big.subarray(0, 4 * MiB)), 0, 4 * MiB],
      [sha256Hex(big.subarray(4 * MiB)), 4 * MiB, 1234],
    ],
  );
  for (const chunk of info.chunks) t.deepEqual(chunk.servers.map((s) => s.id).sort(), cluster.storage.map((s) => s.id).sort());
  t.true(info.fullyReplicated);
  const dirInfo = JSON.parse((await dfs('info', '--json', '/data/sub')).stdout) as { attr: { type: string } };
  t.is(dirInfo.attr.type, 'dir');

  // status: alive counts, as text and JSON.
  const status = await dfs('status');
  assertCliOk(t, status, 'status');
  t.regex(status.stdout, /storage servers:\s+2 alive, 0 suspect, 0 dead/);
  t.regex(status.stdout, /files:\s+3 files/);
  const statusJson = JSON.parse((await dfs('status', '--json')).stdout) as ClusterStatus;
  t.is(statusJson.storage.alive, 2);
  t.is(statusJson.files, 3);
  t.is(statusJson.servers.filter((s) => s.state === 'alive').length, 2);
  // A dead server shows in both.
  await cluster.killStorage(1);
  await cluster.waitFor('a dead server', () => cluster.status(), (s) => s.storage.dead === 1);
  t.regex((await dfs('status')).stdout, /storage servers:\s+1 alive, 0 suspect, 1 dead/);
});

test.serial('mkdir -p, rmdir, rm, rm -r (refused without a terminal), rm -rf, mv, cp (no data moves) and touch', async (t) => {
  // Its small files go to storage servers (not kept by the name server), whose chunk files it watches.
  const cluster = await startCluster(t, { storageServers: 2, nameServerArgs: ['--inline-max', '0'] });
  const dfs = dfsOf(cluster);
  const local = join(cluster.dir, 'f.txt');
  await writeFile(local, 'payload\n');

  // mkdir -p makes parents and does not mind existing dirs; rmdir removes an empty one.
  assertCliOk(t, await dfs('mkdir', '-p', '/a/b/c'), 'mkdir -p');
  assertCliOk(t, await dfs('mkdir', '-p', '/a/b/c'), 'mkdir -p of an existing dir');
  assertCliOk(t, await dfs('mkdir', '-m', '700', '/private', '/other'), 'mkdir -m of two dirs');
  t.is((await cluster.client.stat('/private')).mode & 0o777, 0o700);
  t.true(await exists(cluster, '/other'));
  t.is((await cluster.client.stat('/a/b/c')).type, 'dir');
  assertCliOk(t, await dfs('rmdir', '/a/b/c'), 'rmdir');
  t.false(await exists(cluster, '/a/b/c'));
  t.is((await dfs('ls', '/a/b')).stdout, '');

  // rm of a file.
  assertCliOk(t, await dfs('put', local, '/a/f.txt'), 'put');
  assertCliOk(t, await dfs('rm', '/a/f.txt'), 'rm');
  t.false(await exists(cluster, '/a/f.txt'));
  assertCliOk(t, await dfs('rm', '-f', '/a/f.txt'), 'rm -f of a missing file');

  // rm -r of a non-empty directory asks; without a terminal it refuses and removes nothing.
  for (const path of ['/tree/x.txt', '/tree/sub/y.txt', '/tree/sub/z.txt']) {
    assertCliOk(t, await dfs('mkdir', '-p', path.slice(0, path.lastIndexOf('/'))), 'mkdir');
    assertCliOk(t, await dfs('put', local, path), `put ${path}`);
  }
  const refused = await dfs('rm', '-r', '/tree');
  assertCliError(t, refused, /refusing without a terminal/, 'rm -r of a non-empty dir without a terminal');
  for (const path of ['/tree/x.txt', '/tree/sub/y.txt', '/tree/sub/z.txt']) t.true(await exists(cluster, path), `${path} survived`);
  assertCliOk(t, await dfs('mkdir', '/empty'), 'mkdir');
  assertCliOk(t, await dfs('rm', '-r', '/empty'), 'rm -r of an empty dir needs no answer');
  t.false(await exists(cluster, '/empty'));
  const chunk = sha256Hex(Buffer.from('payload\n'));
  t.true((await allChunkFiles(cluster)).every((files) => files.includes(chunk)));
  assertCliOk(t, await dfs('rm', '-rf', '/tree'), 'rm -rf');
  t.false(await exists(cluster, '/tree'));
  // The chunk nobody references any more leaves the storage servers.
  await cluster.waitFor('the chunk to be deleted', () => allChunkFiles(cluster), (all) => all.every((files) => files.length === 0));

  // mv: rename a file, move it into an existing dir, rename a dir, move a dir into an existing dir.
  assertCliOk(t, await dfs('mkdir', '-p', '/m/dir', '/m/target'), 'mkdir');
  assertCliOk(t, await dfs('put', local, '/m/one.txt'), 'put');
  const ino = (await cluster.client.stat('/m/one.txt')).ino;
  const chunksBeforeMv = await allChunkFiles(cluster);
  assertCliOk(t, await dfs('mv', '/m/one.txt', '/m/two.txt'), 'mv rename');
  t.false(await exists(cluster, '/m/one.txt'));
  assertCliOk(t, await dfs('mv', '/m/two.txt', '/m/dir'), 'mv into an existing dir');
  t.is((await cluster.client.stat('/m/dir/two.txt')).ino, ino, 'the same inode: metadata only');
  assertCliOk(t, await dfs('mv', '/m/dir', '/m/renamed'), 'mv of a dir');
  t.false(await exists(cluster, '/m/dir'));
  assertCliOk(t, await dfs('mv', '/m/renamed', '/m/target/'), 'mv of a dir into an existing dir');
  t.is((await cluster.client.stat('/m/target/renamed/two.txt')).ino, ino);
  t.is((await dfs('cat', '/m/target/renamed/two.txt')).stdout, 'payload\n');
  t.deepEqual(await allChunkFiles(cluster), chunksBeforeMv, 'mv moves no data');
  t.is((await cluster.client.stat('/m')).nlink, 3, '/m holds one dir (target)');
  t.is((await cluster.client.stat('/m/target')).nlink, 3, '/m/target holds one dir (renamed)');

  // cp is server-side: the copy shares the chunks, no chunk file appears anywhere.
  const big = randomBytes(2 * MiB);
  await writeFile(join(cluster.dir, 'big.bin'), big);
  assertCliOk(t, await dfs('put', join(cluster.dir, 'big.bin'), '/big.bin'), 'put big');
  const chunksBeforeCp = await allChunkFiles(cluster);
  assertCliOk(t, await dfs('cp', '/big.bin', '/copy.bin'), 'cp');
  assertCliOk(t, await dfs('cp', '/big.bin', '/m/'), 'cp into a dir');
  assertCliOk(t, await dfs('cp', '-r', '/m', '/m2'), 'cp -r');
  t.deepEqual(await allChunkFiles(cluster), chunksBeforeCp, 'cp wrote no chunk to any storage server');
  const [orig, copy] = await Promise.all([cluster.client.info('/big.bin'), cluster.client.info('/copy.bin')]);
  t.deepEqual(copy.chunks.map((c) => c.hash), orig.chunks.map((c) => c.hash));
  t.not(copy.attr.ino, orig.attr.ino);
  t.true((await readAll(cluster.client, '/m/big.bin')).equals(big));
  t.is((await dfs('cat', '/m2/target/renamed/two.txt')).stdout, 'payload\n');
  t.true((await readAll(cluster.client, '/m2/big.bin')).equals(big));
  // The copy is independent: removing the original leaves it readable.
  assertCliOk(t, await dfs('rm', '/big.bin'), 'rm the original');
  t.true((await readAll(cluster.client, '/copy.bin')).equals(big));

  // touch creates an empty file, and sets the times of an existing one without touching its content.
  assertCliOk(t, await dfs('touch', '/t.txt'), 'touch (create)');
  const created = await cluster.client.stat('/t.txt');
  t.is(created.type, 'file');
  t.is(created.size, 0);
  await sleep(20);
  assertCliOk(t, await dfs('touch', '/t.txt', '/copy.bin'), 'touch (update)');
  const touched = await cluster.client.stat('/t.txt');
  t.is(touched.ino, created.ino);
  t.true(BigInt(touched.mtime) > BigInt(created.mtime), `mtime ${created.mtime} -> ${touched.mtime}`);
  t.true(nsToMs(touched.mtime) - nsToMs(created.mtime) >= 20);
  const copyAfter = await cluster.client.stat('/copy.bin');
  t.is(copyAfter.size, big.length);
  t.true(BigInt(copyAfter.mtime) > BigInt(copy.attr.mtime));
  t.is(copyAfter.version, copy.attr.version, 'touch does not change the content version');
});

test.serial('dfs shell: cd, pwd, mkdir, put and get with relative paths, ls, errors that do not end it', async (t) => {
  const cluster = await startCluster(t, { storageServers: 1, replicas: 1 });
  const local = join(cluster.dir, 'hello.txt');
  await writeFile(local, 'hello from the shell\n');
  const got = join(cluster.dir, 'got.txt');
  const script = [
    'pwd',
    'mkdir docs',
    'cd docs',
    'pwd',
    `put ${local} a.txt`,
    `put "${local}" ./b.txt`,
    'mkdir -p deeper/still',
    'ls',
    'cd deeper/still',
    'pwd',
    'cd ../..',
    'cat a.txt',
    'cd nowhere',
    'cd a.txt',
    'pwd',
    '# a comment',
    '',
    'cd ..',
    'ls -l docs',
    `get docs/b.txt ${got}`,
    'mv docs/b.txt docs/deeper/c.txt',
    'ls docs/deeper',
    'frob',
    'exit',
    'mkdir /after-exit',
  ].join('\n');
  const result = await runCli(['shell'], { env: cliEnv(cluster), input: `${script}\n` });
  t.is(result.code, 0, result.stderr);
  const out = result.stdout.split('\n');
  t.deepEqual(out.slice(0, 2), ['/', '/docs']);
  t.deepEqual(out.slice(2, 5), ['a.txt', 'b.txt', 'deeper'], 'ls in /docs');
  t.is(out[5], '/docs/deeper/still');
  t.is(out[6], 'hello from the shell');
  t.is(out[7], '/docs', 'failed cds leave the directory as it was');
  t.regex(out[8]!, /^-rw\S+\s+1\s+\d+\s+\d+\s+21\s+\S+ \S+\s+a\.txt$/);
  t.regex(out[9]!, /^-rw\S+\s+1\s+\d+\s+\d+\s+21\s+\S+ \S+\s+b\.txt$/);
  t.regex(out[10]!, /^drwx\S+\s+3\s+.*deeper$/);
  t.deepEqual(out.slice(11), ['c.txt', 'still', '']);
  // Errors go to stderr, one `dfs: ` line each, and the shell goes on.
  const errors = result.stderr.trimEnd().split('\n');
  t.is(errors.length, 3, result.stderr);
  t.regex(errors[0]!, /^dfs: \/docs\/nowhere: no such file or directory$/);
  t.regex(errors[1]!, /^dfs: \/docs\/a\.txt: not a directory$/);
  t.regex(errors[2]!, /^dfs: .*frob/);
  // The store saw it all; nothing after `exit` ran.
  t.is(await readFile(got, 'utf8'), 'hello from the shell\n');
  t.is((await cluster.client.stat('/docs/deeper/c.txt')).size, 21);
  t.is((await cluster.client.ns.call(nameApi.list, { path: '/' })).entries.map((e) => e.name).join(','), 'docs');
});
