import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { nameApi } from '../protocol/name-api.js';
import { FORWARD_HEADER } from '../protocol/storage-api.js';
import { issueToken, signReceipt, verifyToken, type TokenScope } from '../protocol/token.js';
import { bufferSource, chunkFiles, readAll, sha256Hex, sleep, startCluster, type TestCluster } from './harness.js';
import { apiCall, assertError, rawRequest, tree } from './http-helpers.js';

/**
 * Tokens, scopes and chunk names: what the name server and storage servers refuse, and that a refused
 * request changes nothing, in the database or on disk.
 */

const OTHER_SECRET = randomBytes(32).toString('hex');

/** A validly signed token whose claims were edited afterwards (the signature no longer matches). */
function tampered(token: string, edit: (claims: Record<string, unknown>) => void): string {
  const [prefix, body, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
  edit(claims);
  return `${prefix}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

/** A token with one signature byte changed. (Not the last character: its low bits are base64 padding.) */
function badSignature(token: string): string {
  const [prefix, body, signature] = token.split('.') as [string, string, string];
  const bytes = Buffer.from(signature, 'base64url');
  bytes[0] = bytes[0]! ^ 0x01;
  return `${prefix}.${body}.${bytes.toString('base64url')}`;
}

interface BadToken {
  what: string;
  token: string | undefined;
  status: 401 | 403;
}

/** Tokens that must not pass a route that wants `scope` (`hash`: the chunk a chunk-scoped token is for). */
function badTokens(secret: string, scope: TokenScope, hash?: string): BadToken[] {
  const extra = hash ? { hash } : {};
  const good = issueToken(secret, scope, 60_000, extra);
  const out: BadToken[] = [
    { what: 'no token', token: undefined, status: 401 },
    { what: 'garbage', token: 'not-a-token', status: 401 },
    { what: 'an empty bearer', token: '', status: 401 },
    { what: `a ${scope} token signed with another secret`, token: issueToken(OTHER_SECRET, scope, 60_000, extra), status: 401 },
    { what: `an expired ${scope} token`, token: issueToken(secret, scope, -1_000, extra), status: 401 },
    { what: `a ${scope} token with a changed expiry`, token: tampered(issueToken(secret, scope, -1_000, extra), (c) => (c.exp = Date.now() + 3_600_000)), status: 401 },
    { what: `a ${scope} token with a bad signature`, token: badSignature(good), status: 401 },
  ];
  for (const other of ['client', 'storage', 'write', 'delete', 'replicate', 'admin'] as const) {
    if (other === scope) continue;
    out.push({ what: `a valid ${other} token`, token: issueToken(secret, other, 60_000, extra), status: 403 });
    out.push({ what: `a ${other} token re-labelled ${scope}`, token: tampered(issueToken(secret, other, 60_000, extra), (c) => (c.scope = scope)), status: 401 });
  }
  return out;
}

interface NsSnapshot {
  tree: unknown[];
  counts: unknown;
  servers: string[];
}

/** Everything a client can see of the namespace, with attributes and chunk lists. */
async function nsSnapshot(cluster: TestCluster): Promise<NsSnapshot> {
  const out: unknown[] = [];
  const walk = async (path: string): Promise<void> => {
    const { attr, entries } = await cluster.client.ns.call(nameApi.list, { path });
    out.push({ path, attr });
    for (const entry of entries) {
      const child = path === '/' ? `/${entry.name}` : `${path}/${entry.name}`;
      if (entry.attr.type === 'dir') await walk(child);
      else if (entry.attr.type === 'file') {
        const info = await cluster.client.info(child);
        out.push({ path: child, attr: entry.attr, chunks: info.chunks.map((c) => [c.hash, c.size, c.servers.map((s) => s.id).sort()]) });
      } else out.push({ path: child, attr: entry.attr });
    }
  };
  await walk('/');
  const s = await cluster.status();
  return { tree: out, counts: { files: s.files, dirs: s.dirs, chunks: s.chunks, bytes: s.bytes }, servers: s.servers.map((x) => x.id).sort() };
}

test.serial('the name server refuses namespace calls without a valid client token, and they change nothing', async (t) => {
  const cluster = await startCluster(t, { storageServers: 2 });
  const url = cluster.url;
  const content = randomBytes(20_000);
  await cluster.client.ns.call(nameApi.mkdir, { path: '/keep/empty', parents: true });
  await cluster.client.writeFile('/keep/file.txt', bufferSource(content));
  await cluster.client.writeFile('/keep/other.txt', bufferSource(Buffer.from('other')));
  await cluster.client.ns.call(nameApi.symlink, { path: '/keep/link', target: '/keep/file.txt' });
  const [chunk] = (await cluster.client.info('/keep/file.txt')).chunks;
  const before = await nsSnapshot(cluster);

  // Requests that would each change the namespace (or tell something of it) with a valid client token,
  // in an order in which each succeeds when run for real (the control at the end).
  const requests: [string, string, Record<string, unknown>][] = [
    ['GET', '/fs/stat', { path: '/keep/file.txt' }],
    ['GET', '/fs/list', { path: '/keep' }],
    ['GET', '/fs/file', { path: '/keep/file.txt' }],
    ['GET', '/fs/readlink', { path: '/keep/link' }],
    ['GET', '/available', { size: 100 }],
    ['POST', '/chunks/missing', { hashes: [chunk!.hash] }],
    ['POST', '/fs/mkdir', { path: '/evil' }],
    ['POST', '/fs/create', { path: '/evil.txt' }],
    ['POST', '/fs/symlink', { path: '/evil-link', target: '/keep/file.txt' }],
    ['POST', '/fs/link', { existing: '/keep/file.txt', path: '/evil-hard' }],
    ['POST', '/fs/copy', { from: '/keep/file.txt', to: '/evil-copy' }],
    ['POST', '/fs/setattr', { path: '/keep/file.txt', mode: 0o777, uid: 666 }],
    ['POST', '/fs/commit', { path: '/keep/file.txt', chunks: [], size: 0 }],
    ['DELETE', '/fs/dir', { path: '/keep/empty' }],
    ['DELETE', '/fs/file', { path: '/keep/other.txt' }],
    ['POST', '/fs/rename', { from: '/keep/file.txt', to: '/moved.txt' }],
  ];
  let refused = 0;
  for (const bad of badTokens(cluster.secret, 'client')) {
    const replies = await Promise.all(requests.map(([method, path, input]) => apiCall(url, method, path, input, bad.token)));
    replies.forEach((res, i) => {
      assertError(t, res, bad.status, bad.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN', `${requests[i]![0]} ${requests[i]![1]} with ${bad.what}`);
      refused += 1;
    });
  }
  t.true(refused > 100);

  // The storage servers' own routes: a client (or nobody) cannot register a server or report chunks.
  const register = { id: 'evil-server', url: 'http://127.0.0.1:9', capacity: 1 << 40, free: 1 << 40, chunks: 0 };
  const stored = { chunks: [{ hash: sha256Hex(Buffer.from('evil')), size: 4, servers: [cluster.storage[0]!.id] }] };
  for (const bad of badTokens(cluster.secret, 'storage')) {
    assertError(t, await apiCall(url, 'POST', '/storages/register', register, bad.token), bad.status, bad.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN', `register with ${bad.what}`);
    assertError(t, await apiCall(url, 'POST', '/chunks/stored', stored, bad.token), bad.status, bad.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN', `chunks/stored with ${bad.what}`);
  }

  // Nothing changed: the same tree, attributes, chunks and servers; the file reads back whole.
  t.deepEqual(await nsSnapshot(cluster), before);
  t.deepEqual(await readAll(cluster.client, '/keep/file.txt'), content);

  // Control: the same requests with a valid client token do succeed (so the refusals above were the tokens').
  const good = issueToken(cluster.secret, 'client', 60_000);
  for (const [method, path, input] of requests) {
    const res = await apiCall(url, method, path, input, good);
    t.is(res.status, 200, `${method} ${path} with a valid token: ${res.body.toString('utf8')}`);
  }
  t.is((await cluster.client.stat('/moved.txt')).size, 0);
  t.is((await cluster.client.stat('/evil-copy')).size, content.length);
});

test.serial('GET /status answers without a token and tells no file names', async (t) => {
  const cluster = await startCluster(t, { storageServers: 1, replicas: 1 });
  const names = [`confidential-dir-${randomBytes(4).toString('hex')}`, `secret-plan-${randomBytes(4).toString('hex')}.txt`];
  await cluster.client.ns.call(nameApi.mkdir, { path: `/${names[0]}` });
  await cluster.client.writeFile(`/${names[0]}/${names[1]}`, bufferSource(Buffer.from('the plan')));
  for (const token of [undefined, 'garbage', issueToken(OTHER_SECRET, 'client', 60_000)]) {
    const res = await rawRequest(cluster.url, { path: '/status', token });
    t.is(res.status, 200, res.body.toString('utf8'));
    const text = res.body.toString('utf8');
    const body = res.json as { files: number; dirs: number; storage: { alive: number } };
    t.is(body.files, 1);
    t.is(body.dirs, 2);
    t.is(body.storage.alive, 1);
    for (const name of names) t.false(text.includes(name), `status mentions ${name}`);
    t.false(text.includes('plan'), 'status mentions a file name');
    t.false(text.includes(cluster.secret), 'status shows the secret');
  }
  // A storage server's /status is open too, and tells no secrets either.
  const storage = await rawRequest(cluster.storage[0]!.process!.url, { path: '/status' });
  t.is(storage.status, 200);
  t.false(storage.body.toString('utf8').includes(cluster.secret));
});

test.serial('storage servers store, delete and replicate only with a valid token of the right scope and chunk', async (t) => {
  // One copy per chunk, so a replication target is left that lacks it; the file's chunk on a storage server.
  const cluster = await startCluster(t, { storageServers: 2, replicas: 1, nameServerArgs: ['--inline-max', '0'] });
  const content = randomBytes(50_000);
  await cluster.client.writeFile('/file.bin', bufferSource(content));
  const info = await cluster.client.info('/file.bin');
  const hash = info.chunks[0]!.hash;
  const holderId = info.chunks[0]!.servers[0]!.id;
  const source = cluster.storage.find((s) => s.id === holderId)!;
  const target = cluster.storage.find((s) => s.id !== holderId)!;
  const sourceUrl = source.process!.url;
  const targetUrl = target.process!.url;
  const treesBefore = [await tree(source.dataDir), await tree(target.dataDir)];
  t.true((await chunkFiles(source.dataDir)).has(hash));
  t.false((await chunkFiles(target.dataDir)).has(hash));

  const secret = cluster.secret;
  const code = (status: number): string => (status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
  const fresh = randomBytes(30_000);
  const freshHash = sha256Hex(fresh);
  const otherHash = sha256Hex(Buffer.from('another chunk'));

  // PUT /file/:hash wants a write token.
  for (const bad of badTokens(secret, 'write')) {
    const res = await rawRequest(sourceUrl, { method: 'PUT', path: `/file/${freshHash}`, token: bad.token, body: fresh, contentType: 'application/octet-stream' });
    assertError(t, res, bad.status, code(bad.status), `PUT with ${bad.what}`);
  }
  // DELETE /file/:hash wants a delete token for that very chunk.
  const deleteRefusals: BadToken[] = [
    ...badTokens(secret, 'delete', hash),
    { what: 'a delete token for another chunk', token: issueToken(secret, 'delete', 60_000, { hash: otherHash }), status: 403 },
    { what: 'a delete token for no chunk', token: issueToken(secret, 'delete', 60_000), status: 403 },
    { what: 'a delete token re-targeted at this chunk', token: tampered(issueToken(secret, 'delete', 60_000, { hash: otherHash }), (c) => (c.hash = hash)), status: 401 },
  ];
  for (const bad of deleteRefusals) {
    const res = await rawRequest(sourceUrl, { method: 'DELETE', path: `/file/${hash}`, token: bad.token });
    assertError(t, res, bad.status, code(bad.status), `DELETE with ${bad.what}`);
  }
  // POST /replicate wants a replicate token for that chunk.
  const writeToken = issueToken(secret, 'write', 60_000);
  const replicateBody = { hash, target: targetUrl, writeToken };
  const replicateRefusals: BadToken[] = [
    ...badTokens(secret, 'replicate', hash),
    { what: 'a replicate token for another chunk', token: issueToken(secret, 'replicate', 60_000, { hash: otherHash }), status: 403 },
    { what: 'a replicate token for no chunk', token: issueToken(secret, 'replicate', 60_000), status: 403 },
  ];
  for (const bad of replicateRefusals) {
    const res = await rawRequest(sourceUrl, { method: 'POST', path: '/replicate', token: bad.token, body: replicateBody });
    assertError(t, res, bad.status, code(bad.status), `replicate with ${bad.what}`);
  }
  // A valid replicate token with a forged write token for the target: the target refuses.
  const forgedWrite = await rawRequest(sourceUrl, {
    method: 'POST',
    path: '/replicate',
    token: issueToken(secret, 'replicate', 60_000, { hash }),
    body: { ...replicateBody, writeToken: issueToken(OTHER_SECRET, 'write', 60_000) },
  });
  t.true(forgedWrite.status >= 400 && forgedWrite.status < 600, `replicate with a forged write token: ${forgedWrite.status}`);
  // Reading chunks and the chunk list needs a token as well.
  for (const token of [undefined, issueToken(OTHER_SECRET, 'client', 60_000)]) {
    assertError(t, await rawRequest(sourceUrl, { path: `/file/${hash}`, token }), 401, 'UNAUTHORIZED', `GET a chunk with ${token ? 'a forged token' : 'no token'}`);
    assertError(t, await rawRequest(sourceUrl, { path: '/dump_tree', token }), 401, 'UNAUTHORIZED', `dump_tree with ${token ? 'a forged token' : 'no token'}`);
  }
  assertError(t, await rawRequest(sourceUrl, { path: `/file/${hash}`, token: issueToken(secret, 'write', 60_000) }), 403, 'FORBIDDEN', 'GET a chunk with a write token');
  assertError(t, await rawRequest(sourceUrl, { path: '/dump_tree', token: issueToken(secret, 'client', 60_000) }), 403, 'FORBIDDEN', 'dump_tree with a client token');

  // Nothing on either disk changed, and the name server still sees the one copy.
  t.deepEqual([await tree(source.dataDir), await tree(target.dataDir)], treesBefore);
  t.deepEqual((await cluster.client.info('/file.bin')).chunks[0]!.servers.map((s) => s.id), [holderId]);
  t.deepEqual(await readAll(cluster.client, '/file.bin'), content);

  // Controls: the right tokens do work, so the refusals above were the tokens'.
  const put = await rawRequest(sourceUrl, { method: 'PUT', path: `/file/${freshHash}`, token: issueToken(secret, 'write', 60_000), body: fresh, contentType: 'application/octet-stream' });
  t.is(put.status, 200, put.body.toString('utf8'));
  t.true((await chunkFiles(source.dataDir)).has(freshHash));
  const replicated = await rawRequest(sourceUrl, { method: 'POST', path: '/replicate', token: issueToken(secret, 'replicate', 60_000, { hash }), body: replicateBody });
  t.is(replicated.status, 200, replicated.body.toString('utf8'));
  t.true((await chunkFiles(target.dataDir)).has(hash));
  // A delete is refused for a chunk stored shortly (2 s of clock skew) before the token was issued.
  const storedAt = (await stat(join(source.dataDir, 'chunks', hash.slice(0, 2), hash))).mtimeMs;
  await sleep(Math.max(0, storedAt + 2_200 - Date.now()));
  const deleted = await rawRequest(sourceUrl, { method: 'DELETE', path: `/file/${hash}`, token: issueToken(secret, 'delete', 60_000, { hash }) });
  t.is(deleted.status, 200, deleted.body.toString('utf8'));
  t.deepEqual(deleted.json, { deleted: true });
  t.false((await chunkFiles(source.dataDir)).has(hash));
});

test.serial('a storage server refuses bytes that do not hash to their name, and keeps nothing of them', async (t) => {
  const cluster = await startCluster(t, { storageServers: 2 });
  const [head, tail] = cluster.storage as [(typeof cluster.storage)[0], (typeof cluster.storage)[0]];
  const token = issueToken(cluster.secret, 'write', 60_000, { report: true });
  const good = randomBytes(64 * 1024);
  const name = sha256Hex(good);
  const sameLength = Buffer.from(good);
  sameLength[12_345] = sameLength[12_345]! ^ 0xff;
  const bodies: [string, Buffer][] = [
    ['one flipped byte', sameLength],
    ['other bytes of another length', randomBytes(1000)],
    ['an empty body', Buffer.alloc(0)],
  ];
  for (const [what, body] of bodies) {
    // Straight to one server, and down a chain of two (the head forwards as it stores).
    const single = await rawRequest(head.process!.url, { method: 'PUT', path: `/file/${name}`, token, body, contentType: 'application/octet-stream' });
    assertError(t, single, 422, 'HASH_MISMATCH', `PUT of ${what}`);
    const chained = await rawRequest(head.process!.url, {
      method: 'PUT',
      path: `/file/${name}`,
      token,
      body,
      contentType: 'application/octet-stream',
      headers: { [FORWARD_HEADER]: tail.process!.url },
    });
    assertError(t, chained, 422, 'HASH_MISMATCH', `chained PUT of ${what}`);
  }
  // No chunk under that name, no temp file left behind, on either server; the name server never heard of it.
  for (const s of [head, tail]) {
    await cluster.waitFor(`temp files on ${s.id} to go`, () => tree(join(s.dataDir, 'tmp')), (files) => files.length === 0, 10_000);
    t.false((await chunkFiles(s.dataDir)).has(name), `${s.id} holds the mismatched chunk`);
    t.false(existsSync(join(s.dataDir, 'chunks', name.slice(0, 2), name)));
  }
  const missing = await cluster.client.ns.call(nameApi.chunksMissing, { hashes: [name] });
  t.deepEqual(missing.missing, [name]);

  // Control: the right bytes under the same name are taken, down the whole chain.
  const ok = await rawRequest(head.process!.url, { method: 'PUT', path: `/file/${name}`, token, body: good, contentType: 'application/octet-stream', headers: { [FORWARD_HEADER]: tail.process!.url } });
  t.is(ok.status, 200, ok.body.toString('utf8'));
  t.true((await chunkFiles(head.dataDir)).has(name));
  t.true((await chunkFiles(tail.dataDir)).has(name));
});

test.serial('chunk names other than 64 lowercase hex digits are refused, and nothing is read or written outside the data dir', async (t) => {
  const cluster = await startCluster(t, { storageServers: 1, replicas: 1 });
  const s = cluster.storage[0]!;
  const url = s.process!.url;
  const data = randomBytes(1000);
  const hash = sha256Hex(data);
  const escape = `escape-${randomBytes(4).toString('hex')}`;
  // Chunk names as they appear in the URL (percent-encoded where a client would have to).
  const names = [
    `..%2F..%2F..%2F${escape}`,
    `%2E%2E%2F%2E%2E%2F${escape}`,
    `..%2F..%2Fserver-id`,
    `..%5C..%5C${escape}`,
    encodeURIComponent('/etc/passwd'),
    hash.toUpperCase(),
    hash.slice(0, 63),
    `${hash}0`,
    'g'.repeat(64),
    `${hash.slice(0, 62)}%2F${hash.slice(62)}`,
    `${hash}%00`,
  ];
  const writeToken = issueToken(cluster.secret, 'write', 60_000);
  const readToken = issueToken(cluster.secret, 'client', 60_000);
  const before = await tree(cluster.dir, { sizes: false });
  for (const name of names) {
    const deleteToken = issueToken(cluster.secret, 'delete', 60_000, { hash: decodeURIComponent(name.replace('%00', '')) });
    const put = await rawRequest(url, { method: 'PUT', path: `/file/${name}`, token: writeToken, body: data, contentType: 'application/octet-stream' });
    assertError(t, put, 400, 'BAD_REQUEST', `PUT /file/${name}`);
    const get = await rawRequest(url, { path: `/file/${name}`, token: readToken });
    assertError(t, get, 400, 'BAD_REQUEST', `GET /file/${name}`);
    const del = await rawRequest(url, { method: 'DELETE', path: `/file/${name}`, token: deleteToken });
    assertError(t, del, 400, 'BAD_REQUEST', `DELETE /file/${name}`);
  }
  // Unencoded dot segments never reach a handler (this client sends them verbatim; a server must not resolve them).
  for (const path of [`/file/../../../${escape}`, `/file/../server-id`, `/file/./${hash}/../../${escape}`]) {
    const put = await rawRequest(url, { method: 'PUT', path, token: writeToken, body: data, contentType: 'application/octet-stream' });
    t.true(put.status === 400 || put.status === 404, `PUT ${path}: ${put.status}`);
    t.true(['BAD_REQUEST', 'NOT_FOUND'].includes((put.json as { code: string }).code), `PUT ${path}: ${put.body.toString('utf8')}`);
    const get = await rawRequest(url, { path, token: readToken });
    t.true(get.status === 400 || get.status === 404, `GET ${path}: ${get.status}`);
    t.false(get.body.toString('utf8').includes(s.id), `GET ${path} served the server-id file`);
  }
  // Nothing new anywhere under the cluster dir (chunks, temp files, escapes), and no escape file near it.
  const after = (await tree(cluster.dir, { sizes: false })).filter((p) => !/^meta\.db/.test(p));
  t.deepEqual(after, before.filter((p) => !/^meta\.db/.test(p)));
  for (const dir of [cluster.dir, join(cluster.dir, '..'), s.dataDir, join(s.dataDir, 'chunks'), '/']) t.false(existsSync(join(dir, escape)), `${dir}/${escape} exists`);
  t.is((await chunkFiles(s.dataDir)).size, 0);
  // Control: the lowercase name of the same bytes is taken.
  const ok = await rawRequest(url, { method: 'PUT', path: `/file/${hash}`, token: writeToken, body: data, contentType: 'application/octet-stream' });
  t.is(ok.status, 200, ok.body.toString('utf8'));
  t.deepEqual([...(await chunkFiles(s.dataDir))], [hash]);
});

test('a commit counts a copy by a receipt only if it is genuine and recent: forged and stale receipts are refused', async (t) => {
  const uploadGraceMs = 20_000;
  const cluster = await startCluster(t, { uploadGraceMs });
  const url = cluster.url;
  const token = issueToken(cluster.secret, 'client', 60_000);
  const servers = cluster.storage.map((s) => s.id).slice(0, 2);
  // A chunk no server holds: only receipts can vouch for it.
  const data = randomBytes(4096);
  const hash = sha256Hex(data);
  const commit = (path: string, receipts: { server: string; receipt: string }[]) =>
    apiCall(url, 'POST', '/fs/commit', { path, chunks: [{ hash, size: data.length }], size: data.length, receipts: receipts.map((r) => ({ hash, size: data.length, ...r })) }, token);
  const cases: { what: string; receipts: { server: string; receipt: string }[] }[] = [
    { what: 'no receipt', receipts: [] },
    { what: 'receipts signed with another secret', receipts: servers.map((server) => ({ server, receipt: signReceipt(OTHER_SECRET, hash, data.length, server) })) },
    { what: 'receipts for another size', receipts: servers.map((server) => ({ server, receipt: signReceipt(cluster.secret, hash, data.length + 1, server) })) },
    { what: 'receipts older than the upload grace', receipts: servers.map((server) => ({ server, receipt: signReceipt(cluster.secret, hash, data.length, server, Date.now() - uploadGraceMs - 1_000) })) },
    { what: 'receipts of servers the name server does not know', receipts: ['ss-000000000000', 'ss-111111111111'].map((server) => ({ server, receipt: signReceipt(cluster.secret, hash, data.length, server) })) },
  ];
  for (const [i, c] of cases.entries()) {
    const path = `/refused-${i}`;
    t.is((await apiCall(url, 'POST', '/fs/create', { path }, token)).status, 200);
    assertError(t, await commit(path, c.receipts), 409, 'CHUNKS_MISSING', c.what);
    t.is((await cluster.client.ns.call(nameApi.stat, { path })).size, 0, `${c.what}: the file stays empty`);
  }
  // Control: genuine, fresh receipts of known servers are taken (the name server trusts its own signature).
  t.is((await apiCall(url, 'POST', '/fs/create', { path: '/taken' }, token)).status, 200);
  const fresh = await commit('/taken', servers.map((server) => ({ server, receipt: signReceipt(cluster.secret, hash, data.length, server, Date.now() - 2_000) })));
  t.is(fresh.status, 200, fresh.body.toString('utf8'));
  t.is((await cluster.client.ns.call(nameApi.stat, { path: '/taken' })).size, data.length);
});

test('a token checked once is taken again without its HMAC, but never past its expiry, outside its scope, or under another secret', async (t) => {
  const secret = randomBytes(32).toString('hex');
  const token = issueToken(secret, 'client', 300);
  const first = verifyToken(secret, token, ['client']);
  t.is(verifyToken(secret, token, ['client']), first, 'the second check answers from what the first found');
  t.is(errorOf(() => verifyToken(secret, token, ['storage'])), 'FORBIDDEN');
  t.is(errorOf(() => verifyToken(OTHER_SECRET, token, ['client'])), 'UNAUTHORIZED', 'a token checked under one secret is not good under another');
  // Its signature only: a token with the same claims signed with another secret is refused.
  t.is(errorOf(() => verifyToken(secret, `${token.slice(0, token.lastIndexOf('.'))}.${issueToken(OTHER_SECRET, 'client', 300).split('.')[2]}`, ['client'])), 'UNAUTHORIZED');
  await sleep(400);
  t.is(errorOf(() => verifyToken(secret, token, ['client'])), 'UNAUTHORIZED', 'expired, though it was checked before');
});

function errorOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}
