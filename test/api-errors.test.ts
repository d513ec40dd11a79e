import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { nameApi } from '../protocol/name-api.js';
import { issueToken } from '../protocol/token.js';
import { bufferSource, chunkFiles, cliEnv, runCli, sha256Hex, startCluster } from './harness.js';
import { apiCall, assertCliError, assertCliOk, assertError, rawRequest } from './http-helpers.js';

/**
 * Every error code of the namespace API, over HTTP (status + `{code, message}`) and through the CLI
 * (exit code + one `dfs: ` line on stderr), against a real cluster.
 */

test.serial('namespace errors over HTTP: each code with its status and a JSON body', async (t) => {
  const cluster = await startCluster(t, { storageServers: 2 });
  const url = cluster.url;
  const token = issueToken(cluster.secret, 'client', 60_000);
  const call = (method: string, path: string, input: Record<string, unknown>) => apiCall(url, method, path, input, token);

  // Fixture: /d/f.txt (a file with content), /d/sub (a directory), /empty (an empty directory).
  const content = randomBytes(10_000);
  await cluster.client.ns.call(nameApi.mkdir, { path: '/d/sub', parents: true });
  await cluster.client.writeFile('/d/f.txt', bufferSource(content));
  t.is((await call('POST', '/fs/mkdir', { path: '/empty' })).status, 200);

  // ENOENT: 404
  assertError(t, await call('GET', '/fs/stat', { path: '/nope' }), 404, 'ENOENT', 'stat of a missing file');
  assertError(t, await call('GET', '/fs/list', { path: '/nope/deeper' }), 404, 'ENOENT', 'list below a missing dir');
  assertError(t, await call('DELETE', '/fs/file', { path: '/d/nope' }), 404, 'ENOENT', 'unlink of a missing file');
  assertError(t, await call('DELETE', '/fs/dir', { path: '/nope' }), 404, 'ENOENT', 'rmdir of a missing dir');
  assertError(t, await call('POST', '/fs/rename', { from: '/nope', to: '/other' }), 404, 'ENOENT', 'rename of a missing file');
  assertError(t, await call('POST', '/fs/create', { path: '/nope/f' }), 404, 'ENOENT', 'create in a missing dir');
  assertError(t, await call('POST', '/fs/copy', { from: '/nope', to: '/x' }), 404, 'ENOENT', 'copy of a missing file');
  assertError(t, await call('GET', '/fs/file', { path: '/nope' }), 404, 'ENOENT', 'info of a missing file');

  // EEXIST: 409
  assertError(t, await call('POST', '/fs/mkdir', { path: '/d' }), 409, 'EEXIST', 'mkdir of an existing dir');
  assertError(t, await call('POST', '/fs/mkdir', { path: '/d/f.txt' }), 409, 'EEXIST', 'mkdir over a file');
  assertError(t, await call('POST', '/fs/create', { path: '/d/f.txt', exclusive: true }), 409, 'EEXIST', 'exclusive create of an existing file');
  assertError(t, await call('POST', '/fs/rename', { from: '/empty', to: '/d', noReplace: true }), 409, 'EEXIST', 'rename with noReplace onto an existing name');
  assertError(t, await call('POST', '/fs/copy', { from: '/d/f.txt', to: '/d/f.txt', overwrite: false }), 409, 'EEXIST', 'copy without overwrite onto an existing file');
  assertError(t, await call('POST', '/fs/symlink', { path: '/d/f.txt', target: '/x' }), 409, 'EEXIST', 'symlink over a file');
  assertError(t, await call('POST', '/fs/mkdir', { path: '/d/f.txt/x', parents: true }), 409, 'ENOTDIR', 'mkdir -p through a file');

  // ENOTEMPTY: 409
  assertError(t, await call('DELETE', '/fs/dir', { path: '/d' }), 409, 'ENOTEMPTY', 'rmdir of a non-empty dir');
  assertError(t, await call('POST', '/fs/rename', { from: '/empty', to: '/d' }), 409, 'ENOTEMPTY', 'rename onto a non-empty dir');

  // ENOTDIR: 409
  assertError(t, await call('GET', '/fs/list', { path: '/d/f.txt' }), 409, 'ENOTDIR', 'list of a file');
  assertError(t, await call('GET', '/fs/stat', { path: '/d/f.txt/x' }), 409, 'ENOTDIR', 'a walk through a file');
  assertError(t, await call('POST', '/fs/mkdir', { path: '/d/f.txt/x' }), 409, 'ENOTDIR', 'mkdir below a file');
  assertError(t, await call('DELETE', '/fs/dir', { path: '/d/f.txt' }), 409, 'ENOTDIR', 'rmdir of a file');
  assertError(t, await call('POST', '/fs/rename', { from: '/empty', to: '/d/f.txt' }), 409, 'ENOTDIR', 'rename of a dir onto a file');

  // EISDIR: 409
  assertError(t, await call('DELETE', '/fs/file', { path: '/d' }), 409, 'EISDIR', 'unlink of a dir');
  assertError(t, await call('GET', '/fs/file', { path: '/d' }), 409, 'EISDIR', 'info of a dir');
  assertError(t, await call('POST', '/fs/rename', { from: '/d/f.txt', to: '/empty' }), 409, 'EISDIR', 'rename of a file onto a dir');
  assertError(t, await call('POST', '/fs/copy', { from: '/d', to: '/d2' }), 409, 'EISDIR', 'copy of a dir');
  assertError(t, await call('POST', '/fs/commit', { path: '/d', chunks: [], size: 0 }), 409, 'EISDIR', 'commit to a dir');
  assertError(t, await call('POST', '/fs/setattr', { path: '/d', size: 0 }), 409, 'EISDIR', 'truncate of a dir');

  // EINVAL: 400 (a dir into its own subtree, bad names, chunk lists that do not add up)
  assertError(t, await call('POST', '/fs/rename', { from: '/d', to: '/d/sub/d' }), 400, 'EINVAL', 'rename of a dir below itself');
  assertError(t, await call('POST', '/fs/rename', { from: '/d', to: '/d/inside' }), 400, 'EINVAL', 'rename of a dir into itself');
  for (const bad of ['/d/.', '/d/..', '/.', '/a\0b']) {
    assertError(t, await call('POST', '/fs/mkdir', { path: bad }), 400, 'EINVAL', `mkdir ${JSON.stringify(bad)}`);
    assertError(t, await call('POST', '/fs/create', { path: bad }), 400, 'EINVAL', `create ${JSON.stringify(bad)}`);
  }
  assertError(t, await call('GET', '/fs/stat', { path: '/d/../d' }), 400, 'EINVAL', 'a path with ..');
  assertError(t, await call('GET', '/fs/readlink', { path: '/d/f.txt' }), 400, 'EINVAL', 'readlink of a file');
  const info = await cluster.client.info('/d/f.txt');
  const real = info.chunks.map((c) => ({ hash: c.hash, size: c.size }));
  assertError(t, await call('POST', '/fs/commit', { path: '/d/f.txt', chunks: real, size: content.length + 1 }), 400, 'EINVAL', 'commit whose chunks do not add up');
  assertError(t, await call('POST', '/fs/commit', { path: '/d/f.txt', chunks: real, size: 0 }), 400, 'EINVAL', 'commit of chunks for an empty file');
  assertError(t, await call('POST', '/fs/commit', { path: '/d/f.txt', chunks: [], size: 5 }), 400, 'EINVAL', 'commit of no chunks for 5 bytes');
  assertError(t, await call('POST', '/fs/commit', { path: '/d/f.txt', chunks: [...real, ...real], size: 2 * content.length }), 400, 'EINVAL', 'a short chunk that is not the last');
  assertError(t, await call('POST', '/fs/commit', { path: '/d/f.txt', chunks: [{ hash: real[0]!.hash, size: 0 }], size: 0 }), 400, 'EINVAL', 'an empty chunk');
  // A chunk list that does not add up is refused as EINVAL even when its chunks were never uploaded:
  // the client must not be sent off to upload chunks for a commit that can never succeed.
  const neverUploaded = sha256Hex(randomBytes(100));
  assertError(t, await call('POST', '/fs/commit', { path: '/d/f.txt', chunks: [{ hash: neverUploaded, size: 100 }], size: 99 }), 400, 'EINVAL', 'commit of unknown chunks that do not add up');

  // ENAMETOOLONG: 400. NAME_MAX counts bytes, not characters.
  assertError(t, await call('POST', '/fs/mkdir', { path: `/${'a'.repeat(256)}` }), 400, 'ENAMETOOLONG', 'a 256-byte name');
  assertError(t, await call('POST', '/fs/create', { path: `/d/${'é'.repeat(128)}` }), 400, 'ENAMETOOLONG', 'a 128-character, 256-byte name');
  assertError(t, await call('POST', '/fs/rename', { from: '/d/f.txt', to: `/d/${'b'.repeat(256)}` }), 400, 'ENAMETOOLONG', 'rename to a 256-byte name');
  t.is((await call('POST', '/fs/mkdir', { path: `/${'a'.repeat(255)}` })).status, 200, 'a 255-byte name is fine');
  t.is((await call('POST', '/fs/create', { path: `/d/${'é'.repeat(127)}` })).status, 200, 'a 254-byte name is fine');

  // Nothing above changed the fixture.
  const root = (await cluster.client.ns.call(nameApi.list, { path: '/d' })).entries.map((e) => e.name);
  t.deepEqual(root, ['f.txt', 'sub', 'é'.repeat(127)]);
  t.is((await cluster.client.stat('/d/f.txt')).size, content.length);
});

test.serial('malformed requests get 400 BAD_REQUEST or 404 NOT_FOUND as JSON, and the daemons keep serving', async (t) => {
  const cluster = await startCluster(t, { storageServers: 1, replicas: 1 });
  const url = cluster.url;
  const storageUrl = cluster.storage[0]!.process!.url;
  const token = issueToken(cluster.secret, 'client', 60_000);

  // Bad JSON, with and without a token.
  for (const tok of [token, undefined]) {
    const res = await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: '{"path": "/x",', contentType: 'application/json', token: tok });
    assertError(t, res, 400, 'BAD_REQUEST', `bad JSON (${tok ? 'with' : 'without'} token)`);
  }
  // Missing and mistyped fields.
  const missing = await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: {}, token });
  assertError(t, missing, 400, 'BAD_REQUEST', 'mkdir without a path');
  t.regex((missing.json as { message: string }).message, /path/, 'the message names the field');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: { path: 42 }, token }), 400, 'BAD_REQUEST', 'a number as path');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: { path: 'relative' }, token }), 400, 'BAD_REQUEST', 'a relative path');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: { path: '/m', mode: -1 }, token }), 400, 'BAD_REQUEST', 'a negative mode');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: [1, 2], token }), 400, 'BAD_REQUEST', 'an array as body');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/mkdir', body: 'null', contentType: 'application/json', token }), 400, 'BAD_REQUEST', 'null as body');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/rename', body: { from: '/a' }, token }), 400, 'BAD_REQUEST', 'rename without a target');
  assertError(t, await rawRequest(url, { method: 'POST', path: '/fs/commit', body: { path: '/a', chunks: [{ hash: 'xyz', size: 1 }], size: 1 }, token }), 400, 'BAD_REQUEST', 'a commit with a bad hash');
  assertError(t, await rawRequest(url, { method: 'GET', path: '/fs/stat', token }), 400, 'BAD_REQUEST', 'stat without a path');
  assertError(t, await rawRequest(url, { method: 'GET', path: '/fs/stat?path=/a&path=/b', token }), 400, 'BAD_REQUEST', 'a repeated query parameter');
  assertError(t, await rawRequest(url, { method: 'GET', path: '/available?count=zero', token }), 400, 'BAD_REQUEST', 'a non-numeric count');
  assertError(t, await rawRequest(url, { method: 'GET', path: '/status?extra=1' }), 400, 'BAD_REQUEST', 'unknown fields on a strict route');

  // Unknown routes and methods: a JSON 404 (never express's HTML page).
  for (const [method, path] of [['GET', '/nope'], ['POST', '/status'], ['GET', '/fs'], ['PUT', '/fs/mkdir'], ['GET', '/fs/stat/extra']] as const) {
    assertError(t, await rawRequest(url, { method, path, token }), 404, 'NOT_FOUND', `name server ${method} ${path}`);
  }
  for (const [method, path] of [['GET', '/nope'], ['POST', '/file/abc'], ['GET', '/file'], ['PATCH', '/status']] as const) {
    assertError(t, await rawRequest(storageUrl, { method, path }), 404, 'NOT_FOUND', `storage server ${method} ${path}`);
  }
  // Storage JSON routes: bad JSON, missing fields, a body over the limit.
  const replicateToken = issueToken(cluster.secret, 'replicate', 60_000, { hash: '0'.repeat(64) });
  assertError(t, await rawRequest(storageUrl, { method: 'POST', path: '/replicate', body: '{', contentType: 'application/json', token: replicateToken }), 400, 'BAD_REQUEST', 'storage: bad JSON');
  assertError(t, await rawRequest(storageUrl, { method: 'POST', path: '/replicate', body: { hash: '0'.repeat(64) }, token: replicateToken }), 400, 'BAD_REQUEST', 'storage: replicate without a target');
  assertError(t, await rawRequest(storageUrl, { method: 'POST', path: '/replicate', body: { pad: 'x'.repeat(200_000) }, token: replicateToken }), 413, 'PAYLOAD_TOO_LARGE', 'storage: a body over the limit');
  // A chunk upload without content-length (chunked) is refused before anything is stored.
  const writeToken = issueToken(cluster.secret, 'write', 60_000);
  const data = randomBytes(1000);
  const noLength = await rawRequest(storageUrl, { method: 'PUT', path: `/file/${sha256Hex(data)}`, token: writeToken, headers: { 'transfer-encoding': 'chunked' }, body: data });
  assertError(t, noLength, 400, 'BAD_REQUEST', 'PUT without content-length');

  // Both daemons are alive and still answer.
  t.is(cluster.nameServer.child.exitCode, null);
  t.is(cluster.storage[0]!.process!.child.exitCode, null);
  t.is((await rawRequest(url, { path: '/status' })).status, 200);
  t.is((await rawRequest(storageUrl, { path: '/status' })).status, 200);
  t.is((await cluster.status()).files, 0, 'no request above created anything');
  t.is((await chunkFiles(cluster.storage[0]!.dataDir)).size, 0);
});

test.serial('ENOSPC: full storage servers answer 507 on /available and on upload, and dfs put fails cleanly', async (t) => {
  const cluster = await startCluster(t, { storageServers: 2, storageArgs: () => ['--capacity', '1M'] });
  const token = issueToken(cluster.secret, 'client', 60_000);
  const status = await cluster.status();
  t.is(status.storage.capacity, 2 * 1024 * 1024, 'each server reports its 1 MiB capacity');

  // A whole default chunk (4 MiB) fits nowhere.
  assertError(t, await apiCall(cluster.url, 'GET', '/available', {}, token), 507, 'ENOSPC', '/available for a default chunk');
  // Small writes fit: fill both servers to about 100 KiB free each.
  const ok = await apiCall(cluster.url, 'GET', '/available', { size: 1000 }, token);
  t.is(ok.status, 200);
  t.is((ok.json as { servers: unknown[] }).servers.length, 2);
  const filler = randomBytes(900 * 1024);
  await cluster.client.writeFile('/filler.bin', bufferSource(filler));
  await cluster.waitFor('free space to be reported', () => cluster.status(), (s) => s.storage.free < 2 * 200 * 1024);

  assertError(t, await apiCall(cluster.url, 'GET', '/available', { size: 300 * 1024 }, token), 507, 'ENOSPC', '/available when every server is full');

  // A storage server refuses an upload it has no room for, and keeps nothing of it.
  const big = randomBytes(300 * 1024);
  const writeToken = issueToken(cluster.secret, 'write', 60_000);
  const before = await chunkFiles(cluster.storage[0]!.dataDir);
  const put = await rawRequest(cluster.storage[0]!.process!.url, { method: 'PUT', path: `/file/${sha256Hex(big)}`, token: writeToken, body: big });
  assertError(t, put, 507, 'ENOSPC', 'PUT on a full storage server');
  t.deepEqual(await chunkFiles(cluster.storage[0]!.dataDir), before);

  // The CLI: exit 1, one line.
  const local = join(cluster.dir, 'big.bin');
  await writeFile(local, big);
  const result = await runCli(['put', local, '/big.bin'], { env: cliEnv(cluster) });
  assertCliError(t, result, /full|space/i, 'dfs put onto full servers');
  t.false((await chunkFiles(cluster.storage[1]!.dataDir)).has(sha256Hex(big)));
  // What was stored before is intact.
  t.is((await cluster.client.stat('/filler.bin')).size, filler.length);
});

test.serial('CLI errors: exit 1 and one `dfs: ` line on stderr for every code; 2 for usage errors', async (t) => {
  const cluster = await startCluster(t, { storageServers: 1, replicas: 1 });
  const env = cliEnv(cluster);
  const dfs = (...args: string[]) => runCli(args, { env });
  const local = join(cluster.dir, 'local.txt');
  await writeFile(local, 'hello\n');
  assertCliOk(t, await dfs('mkdir', '-p', '/d/sub'), 'fixture mkdir');
  assertCliOk(t, await dfs('put', local, '/d/f.txt'), 'fixture put');
  assertCliOk(t, await dfs('touch', '/d/sub/f.txt'), 'fixture touch');

  const cases: [string[], RegExp, string][] = [
    [['ls', '/nope'], /\/nope: no such file or directory/, 'ENOENT: ls of a missing path'],
    [['cat', '/d/nope'], /no such file or directory/, 'ENOENT: cat of a missing file'],
    [['get', '/nope', join(cluster.dir, 'out')], /no such file or directory/, 'ENOENT: get of a missing file'],
    [['mkdir', '/d'], /\/d: file exists/, 'EEXIST: mkdir of an existing dir'],
    [['mv', '-n', '/d/f.txt', '/d/sub'], /\/d\/sub\/f\.txt: file exists/, 'EEXIST: mv -n onto an existing file (it lands at /d/sub/f.txt)'],
    [['rmdir', '/d'], /\/d: directory not empty/, 'ENOTEMPTY: rmdir of a non-empty dir'],
    [['ls', '/d/f.txt/x'], /not a directory/, 'ENOTDIR: ls through a file'],
    [['mkdir', '/d/f.txt/x'], /not a directory/, 'ENOTDIR: mkdir below a file'],
    [['rmdir', '/d/f.txt'], /not a directory/, 'ENOTDIR: rmdir of a file'],
    [['cat', '/d'], /is a directory|not a regular file/, 'EISDIR: cat of a dir'],
    [['rm', '/d'], /is a directory/, 'EISDIR: rm of a dir without -r'],
    [['cp', '/d', '/d2'], /is a directory/, 'EISDIR: cp of a dir without -r'],
    [['mv', '/d', '/d/sub'], /invalid argument/, 'EINVAL: mv of a dir into its own subtree'],
    [['mkdir', `/${'n'.repeat(256)}`], /file name longer than 255 bytes|name too long/, 'ENAMETOOLONG: a 256-byte name'],
    [['put', join(cluster.dir, 'no-such-local'), '/x'], /no such local file/, 'ENOENT: put of a missing local file'],
  ];
  for (let i = 0; i < cases.length; i += 3) {
    const batch = cases.slice(i, i + 3);
    const results = await Promise.all(batch.map(([args]) => dfs(...args)));
    results.forEach((result, j) => assertCliError(t, result, batch[j]![1], batch[j]![2]));
  }

  // Usage errors: exit 2, still one line.
  assertCliError(t, await dfs('ls', '--no-such-flag'), /unknown argument/i, 'an unknown flag', 2);
  assertCliError(t, await dfs('frob'), /unknown command: frob\. Did you mean rm\?/, 'an unknown command near a known one', 2);
  assertCliError(t, await dfs('xyzzyplugh'), /unknown argument: xyzzyplugh/i, 'an unknown command', 2);
  assertCliError(t, await dfs(), /name a command/, 'no command', 2);
  // No cluster configured: a clear one-line error, not a stack trace.
  assertCliError(t, await runCli(['ls', '/'], { env: { DFS_NAME_SERVER: undefined, DFS_SECRET: undefined, DFS_SECRET_FILE: undefined, DFS_STATE: join(cluster.dir, 'nothing') } }), /no name server/, 'no cluster');
  assertCliError(t, await runCli(['ls', '/'], { env: { ...env, DFS_SECRET: 'x'.repeat(32) } }), /token|signature/i, 'the wrong secret');

  // The failed commands changed nothing.
  const ls = await dfs('ls', '/d', '/d/sub');
  assertCliOk(t, ls, 'ls after the errors');
  t.is(ls.stdout, '/d:\nf.txt\nsub\n\n/d/sub:\nf.txt\n');
});
