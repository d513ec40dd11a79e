import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import type { RunResult } from '../bench/proc.js';
import { nameApi } from '../protocol/name-api.js';
import { sha256Hex, bufferSource, readAll, startCluster } from './harness.js';
import { httpTrace, sh, startMount, TRACE_HTTP } from './mount-harness.js';
import { q } from './mount-util.js';
import { copiesOnDisk, databaseProblems, diskSnapshots, errorCode, randomBlob } from './store-checks.js';

// Small files are kept by the name server, in its database: written in one commit, read in the open that
// fetches the chunk list, and independent of storage servers.

const KiB = 1024;

test.serial('a small file is kept by the name server: no storage server holds it, and it is written and read with all of them down', async (t) => {
  const cluster = await startCluster(t);
  const client = cluster.client;
  t.is((await cluster.status()).inlineMax, 64 * KiB);
  const small = randomBlob(10 * KiB);
  await client.writeFile('/small.bin', bufferSource(small.data));
  const info = await client.info('/small.bin');
  t.is(info.chunks.length, 1);
  t.deepEqual(info.chunks[0]!.servers, []);
  t.is(info.chunks[0]!.data, small.data.toString('base64'));
  t.true(info.fullyReplicated);
  t.is(copiesOnDisk(await diskSnapshots(cluster)).size, 0, 'no chunk file on any storage server');
  const status = await cluster.status();
  t.is(status.underReplicated + status.unavailable, 0, 'a kept chunk needs no copies');

  for (let i = 0; i < cluster.storage.length; i++) await cluster.killStorage(i);
  await cluster.waitFor('every storage server dead', () => cluster.status(), (s) => s.storage.alive === 0);
  t.is(sha256Hex(await readAll(client, '/small.bin')), small.sha, 'read with no storage server alive');
  const another = randomBlob(64 * KiB);
  await client.writeFile('/another.bin', bufferSource(another.data));
  t.is(sha256Hex(await readAll(client, '/another.bin')), another.sha, 'written with no storage server alive');
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('a kept file that outgrows the limit moves to storage servers, and its kept bytes are collected', async (t) => {
  const cluster = await startCluster(t);
  const client = cluster.client;
  const small = randomBlob(64 * KiB);
  await client.writeFile('/f.bin', bufferSource(small.data));
  // The same bytes under a second name are one kept chunk.
  await client.writeFile('/same.bin', bufferSource(small.data));
  t.is((await cluster.status()).chunks, 1);

  const big = randomBlob(64 * KiB + 1);
  await client.writeFile('/f.bin', bufferSource(big.data));
  const info = await client.info('/f.bin');
  t.is(info.chunks[0]!.data, undefined);
  t.is(info.chunks[0]!.servers.length, 2);
  t.is(copiesOnDisk(await diskSnapshots(cluster)).get(info.chunks[0]!.hash), 2);
  t.is(sha256Hex(await readAll(client, '/f.bin')), big.sha);

  // The kept chunk stays while /same.bin references it, and goes with its last reference.
  await client.ns.call(nameApi.unlink, { path: '/same.bin' });
  await cluster.waitFor('the kept chunk collected', () => cluster.status(), (s) => s.chunks === 1);
  t.is(sha256Hex(await readAll(client, '/f.bin')), big.sha);
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('bytes to keep are checked against their hash; over the limit, or where the cluster keeps none, the chunk must be uploaded', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--inline-max', '4K'] });
  const client = cluster.client;
  await client.ns.call(nameApi.create, { path: '/f' });
  const blob = randomBlob(1000);
  const chunks = [{ hash: blob.sha, size: 1000 }];
  const other = randomBlob(1000).data.toString('base64');
  t.is(await errorCode(client.ns.call(nameApi.commit, { path: '/f', chunks, size: 1000, inline: [{ hash: blob.sha, data: other }] })), 'HASH_MISMATCH');
  const stranger = randomBlob(10);
  t.is(await errorCode(client.ns.call(nameApi.commit, { path: '/f', chunks, size: 1000, inline: [{ hash: stranger.sha, data: stranger.data.toString('base64') }] })), 'EINVAL');
  // Over the limit, the bytes are not kept: the chunk is missing like any new one (a writer that learnt the
  // limit before it was lowered then uploads it).
  const large = randomBlob(5000);
  t.is(await errorCode(client.ns.call(nameApi.commit, { path: '/f', chunks: [{ hash: large.sha, size: 5000 }], size: 5000, inline: [{ hash: large.sha, data: large.data.toString('base64') }] })), 'CHUNKS_MISSING');
  t.is((await client.stat('/f')).size, 0, 'a refused commit changes nothing');
  // A file over this cluster's limit goes to storage servers, one under it stays here.
  await client.writeFile('/large', bufferSource(large.data));
  t.is((await client.info('/large')).chunks[0]!.servers.length, 2);
  await client.writeFile('/small', bufferSource(blob.data));
  t.deepEqual((await client.info('/small')).chunks[0]!.servers, []);

  const none = await startCluster(t, { nameServerArgs: ['--inline-max', '0'] });
  await none.client.ns.call(nameApi.create, { path: '/f' });
  t.is(await errorCode(none.client.ns.call(nameApi.commit, { path: '/f', chunks, size: 1000, inline: [{ hash: blob.sha, data: blob.data.toString('base64') }] })), 'CHUNKS_MISSING');
  await none.client.writeFile('/small', bufferSource(blob.data));
  t.is((await none.client.info('/small')).chunks[0]!.servers.length, 2, 'with --inline-max 0 a small file is on storage servers');
});

test.serial('a mount whose name server stops keeping small files sends them to storage servers, after one refused commit', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster, [], TRACE_HTTP);
  const commits = (): number => httpTrace(mount, /^\/fs\/commit$/).length;
  const write = async (name: string): Promise<void> => {
    const r = await sh(`head -c 3000 /dev/urandom > ${join(mount.dir, name)}`);
    t.is(r.code, 0, r.stderr);
  };
  await write('a');
  t.deepEqual((await cluster.client.info('/a')).chunks[0]!.servers, []);

  // The same database, the same port: the mount carries on, not knowing the limit changed.
  cluster.options.nameServerArgs = ['--inline-max', '0'];
  await cluster.nameServer.stop();
  await cluster.startNameServer();
  await cluster.waitAlive(cluster.options.storageServers);
  let before = commits();
  await write('b');
  t.is((await cluster.client.info('/b')).chunks[0]!.servers.length, 2, 'b is on two storage servers');
  t.is(commits() - before, 2, "b's bytes were refused once, then uploaded and committed");
  before = commits();
  await write('c');
  t.is((await cluster.client.info('/c')).chunks[0]!.servers.length, 2);
  t.is(commits() - before, 1, 'c went to storage servers at once: the mount learnt the new limit');
  // The file kept before the change is still read from the name server.
  t.is((await sh(`wc -c < ${join(mount.dir, 'a')}`)).stdout.trim(), '3000');
});

test.serial('an append adds bytes to a kept file once, however often it is sent, and only to a file the name server keeps whole', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--inline-max', '4K'] });
  const client = cluster.client;
  const append = (path: string, text: string, id: string, ino?: number): Promise<unknown> =>
    client.ns.call(nameApi.append, { path, data: Buffer.from(text).toString('base64'), id, ...(ino === undefined ? {} : { ino }) });
  const content = async (path: string): Promise<string> => (await readAll(client, path)).toString();

  const { ino } = await client.ns.call(nameApi.create, { path: '/log' });
  await append('/log', 'one\n', 'append-1');
  await append('/log', 'two\n', 'append-2', ino);
  // The same id again (a writer whose answer was lost): answered, not made twice.
  await append('/log', 'two\n', 'append-2', ino);
  t.is(await content('/log'), 'one\ntwo\n');
  const info = await client.info('/log');
  t.is(info.attr.version, 2);
  t.deepEqual(info.chunks[0]!.servers, [], 'still kept by the name server');

  // Many writers at once: every append lands, none on top of another.
  await Promise.all(Array.from({ length: 40 }, (_, i) => append('/log', `w${i}\n`, `writer-${i}`)));
  const lines = (await content('/log')).split('\n').filter((l) => l);
  t.is(lines.length, 42);
  t.deepEqual(lines.slice(2).sort(), Array.from({ length: 40 }, (_, i) => `w${i}`).sort());

  // Refused, and nothing changes: another inode under the name, a file that would outgrow the limit, one on storage servers.
  t.is(await errorCode(append('/log', 'x', 'append-wrong-ino', ino + 1000)), 'NOT_KEPT');
  const full = randomBlob(4 * KiB);
  await client.writeFile('/full', bufferSource(full.data));
  t.is(await errorCode(append('/full', 'x', 'append-too-big')), 'NOT_KEPT');
  const large = randomBlob(5000);
  await client.writeFile('/large', bufferSource(large.data));
  t.is(await errorCode(append('/large', 'x', 'append-on-storage')), 'NOT_KEPT');
  t.is(sha256Hex(await readAll(client, '/full')), full.sha);
  t.is(sha256Hex(await readAll(client, '/large')), large.sha);
  t.is(await errorCode(append('/missing', 'x', 'append-to-no-file')), 'ENOENT');
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('an append made before the name server was killed, sent again after its restart (the answer lost), is not made twice', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--inline-max', '4K'] });
  const client = cluster.client;
  const append = (text: string, id: string, resent: boolean) =>
    client.ns.call(nameApi.append, { path: '/log', data: Buffer.from(text).toString('base64'), id, ...(resent ? { resent } : {}) });
  await client.ns.call(nameApi.create, { path: '/log' });
  await append('one\n', 'before-the-kill', false);

  // A whole-content commit of bytes appended to a version (a mount's, for files on storage servers) is made
  // only on that version, and once per id.
  const content = (text: string) => {
    const data = Buffer.from(text);
    const hash = sha256Hex(data);
    return { chunks: [{ hash, size: data.length }], size: data.length, inline: [{ hash, data: data.toString('base64') }] };
  };
  const commitAppended = (text: string, version: number, id: string) => client.ns.call(nameApi.commit, { path: '/other', ...content(text), appendedTo: { version, id } });
  await client.ns.call(nameApi.create, { path: '/other' });
  await client.ns.call(nameApi.commit, { path: '/other', ...content('x\n') });
  const based = (await client.info('/other')).attr.version;
  await commitAppended('x\ny\n', based, 'commit-before-kill');
  t.is(await errorCode(commitAppended('x\nz\n', based, 'commit-on-a-stale-version')), 'VERSION_MOVED');
  t.is((await commitAppended('x\ny\n', based, 'commit-before-kill')).version, based + 1, 'the same commit again: answered');
  t.is((await readAll(client, '/other')).toString(), 'x\ny\n');

  await cluster.killNameServer();
  await cluster.startNameServer(); // same port, same database, nothing remembered in memory
  await cluster.waitAlive(cluster.options.storageServers);

  const answer = await append('one\n', 'before-the-kill', true);
  t.is(answer.size, 4, 'answered with the file as it is');
  t.is((await readAll(client, '/log')).toString(), 'one\n', 'made once');
  // Sent again but never made (the request was what got lost): made now.
  await append('two\n', 'lost-on-the-way', true);
  t.is((await readAll(client, '/log')).toString(), 'one\ntwo\n');
  // The commit made before the kill, sent again: answered from the database, not refused as on a stale version.
  t.is((await commitAppended('x\ny\n', based, 'commit-before-kill')).version, based + 1);
  t.is(await errorCode(commitAppended('x\nz\n', based, 'another-stale-one')), 'VERSION_MOVED');
  t.is((await readAll(client, '/other')).toString(), 'x\ny\n');
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('appends through the mount (>>) open without asking for the file, land from two mounts at once, and outgrow the limit', async (t) => {
  const cluster = await startCluster(t, { nameServerArgs: ['--inline-max', '4K'] });
  const a = await startMount(t, cluster, [], TRACE_HTTP);
  const b = await startMount(t, cluster);
  const lines = (tag: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${tag} line ${i}`);
  const appendLoop = (dir: string, tag: string, n: number): Promise<RunResult> =>
    sh(`for ((i = 0; i < ${n}; i++)); do echo "${tag} line $i" >> log; done`, { cwd: dir });

  let r = await sh('echo first > log', { cwd: a.dir });
  t.is(r.code, 0, r.stderr);
  const infos = (): number => httpTrace(a, /^\/fs\/file$/).length;
  const appends = (): number => httpTrace(a, /^\/fs\/append$/).length;
  const [infosBefore, appendsBefore] = [infos(), appends()];
  r = await appendLoop(a.dir, 'a', 20);
  t.is(r.code, 0, r.stderr);
  t.is(infos() - infosBefore, 0, 'no open asked for the file');
  t.is(appends() - appendsBefore, 20, 'one append per close');
  t.is(await readFile(join(b.dir, 'log'), 'utf8'), ['first', ...lines('a', 20), ''].join('\n'));

  // Both mounts append to the one file at once: each line lands once (with whole content commits, the last
  // close would win and the other mount's lines be lost).
  const [ra, rb] = await Promise.all([appendLoop(a.dir, 'A', 30), appendLoop(b.dir, 'B', 30)]);
  t.is(ra.code, 0, ra.stderr);
  t.is(rb.code, 0, rb.stderr);
  const all = (await readFile(join(a.dir, 'log'), 'utf8')).split('\n').filter((l) => l);
  t.deepEqual(all.slice(21).sort(), [...lines('A', 30), ...lines('B', 30)].sort());
  t.deepEqual(all.filter((l) => l.startsWith('A ')), lines('A', 30), "a mount's own appends stay in order");

  // Past the 4 KiB the name server keeps, the file moves to storage servers and appends go on.
  r = await appendLoop(a.dir, 'C', 400);
  t.is(r.code, 0, r.stderr);
  const after = (await readFile(join(b.dir, 'log'), 'utf8')).split('\n').filter((l) => l);
  t.deepEqual(after.slice(81), lines('C', 400));
  t.is((await cluster.client.info('/log')).chunks[0]!.servers.length, 2);

  // On storage servers too, both mounts' appends at once all land: a close commits only on the version its
  // bytes were appended to, and lays them at the new end when the other mount's close came first.
  const [rc, rd] = await Promise.all([appendLoop(a.dir, 'D', 30), appendLoop(b.dir, 'E', 30)]);
  t.is(rc.code, 0, rc.stderr);
  t.is(rd.code, 0, rd.stderr);
  const last = (await readFile(join(b.dir, 'log'), 'utf8')).split('\n').filter((l) => l);
  t.deepEqual(last.slice(0, 481), after);
  t.deepEqual(last.slice(481).sort(), [...lines('D', 30), ...lines('E', 30)].sort());
  t.deepEqual(last.filter((l) => l.startsWith('E ')), lines('E', 30), "a mount's own appends stay in order");
  t.deepEqual(await databaseProblems(cluster.dbFile), []);
});

test.serial('a file open for appending reads, in the same mount, with what was appended and not yet closed', async (t) => {
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster);
  const log = join(mount.dir, 'log');
  t.is((await sh(`printf 'kept\\n' > ${log}`)).code, 0);
  // One process: appends without closing, reads the file through another descriptor, truncates, closes.
  const script = `
    const fs = require('node:fs');
    const fd = fs.openSync(process.argv[1], 'a');
    fs.writeSync(fd, 'appended\\n');
    const seen = fs.readFileSync(process.argv[1], 'utf8');
    fs.writeSync(fd, 'more\\n');
    fs.closeSync(fd);
    process.stdout.write(JSON.stringify(seen));`;
  const r = await sh(`node -e ${q(script)} ${log}`);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(r.stdout), 'kept\nappended\n');
  t.is(await readFile(log, 'utf8'), 'kept\nappended\nmore\n');
  t.is((await cluster.client.info('/log')).attr.size, 19);
});
