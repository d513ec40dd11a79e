import { createHash } from 'node:crypto';
import test from 'ava';
import { OpenFile, type FileBackend } from '../mount/open-file.js';
import { DfsError } from '../protocol/errors.js';
import type { Attr, ChunkLocation } from '../protocol/schemas.js';

// OpenFile's choice of which committed version to hold, and of what to send for appended bytes, is pure
// logic: a backend that is never called, or one that records what it is asked.
const unused = (): never => {
  throw new Error('the backend is not used here');
};
const backend = new Proxy({}, { get: () => unused }) as unknown as FileBackend;

function version(n: number, size: number): { attr: Attr; chunks: ChunkLocation[] } {
  const time = '1764000000000000000';
  const attr: Attr = { ino: 7, type: 'file', mode: 0o100644, uid: 0, gid: 0, size, nlink: 1, rdev: 0, atime: time, mtime: time, ctime: time, version: n };
  const hash = String(n).padStart(64, '0');
  return { attr, chunks: size > 0 ? [{ hash, size, offset: 0, servers: [] }] : [] };
}

test('an open answered with an older version than the one held does not take it back (concurrent appends)', (t) => {
  const v1 = version(1, 10);
  const file = new OpenFile(7, '/f', v1.attr, v1.chunks, backend);
  const v3 = version(3, 30);
  file.refresh(v3.attr, v3.chunks);
  t.is(file.attr.version, 3);
  t.is(file.size, 30);
  // A lookup that left before version 3 was committed answers with version 2: stale, ignored.
  const v2 = version(2, 20);
  file.refresh(v2.attr, v2.chunks);
  t.is(file.attr.version, 3);
  t.is(file.size, 30);
  file.refresh(v3.attr, v3.chunks);
  t.is(file.size, 30);
});

/** A backend that records appends and commits, answering appends from a script. */
function appendBackend(answers: (Error | undefined)[], content: Buffer): { backend: FileBackend; appends: { id: string; data: string; resent: boolean }[]; commits: string[] } {
  const appends: { id: string; data: string; resent: boolean }[] = [];
  const commits: string[] = [];
  const base = version(1, content.length);
  const attrAt = (n: number, size: number): Attr => ({ ...base.attr, version: n, size });
  const fake: Partial<FileBackend> = {
    chunkSize: 4 * 1024 * 1024,
    inlineMax: 64 * 1024,
    append: async ({ data, id, resent }) => {
      appends.push({ id, data: Buffer.from(data, 'base64').toString(), resent: resent ?? false });
      const answer = answers.shift();
      if (answer) throw answer;
      return attrAt(appends.length + 1, content.length + Buffer.from(data, 'base64').length);
    },
    info: async () => {
      const chunk = { hash: createHash('sha256').update(content).digest('hex'), size: content.length, offset: 0, servers: [], data: content.toString('base64') };
      return { path: '/f', attr: base.attr, replicas: 2, chunkSize: 4 * 1024 * 1024, chunks: [chunk], fullyReplicated: true };
    },
    hash: async (data) => createHash('sha256').update(data).digest('hex'),
    commit: async ({ size, inline }) => {
      commits.push(Buffer.from(inline![0]!.data, 'base64').toString());
      return attrAt(99, size);
    },
  };
  return { backend: fake as FileBackend, appends, commits };
}

test('appended bytes whose answer was lost are sent again under the same id, before the bytes appended since', async (t) => {
  const { backend: fake, appends } = appendBackend([new DfsError('ETIMEDOUT', 'no answer')], Buffer.from('base\n'));
  const file = OpenFile.appending(7, '/f', version(1, 5).attr, fake);
  await file.append(Buffer.from('one\n'));
  await t.throwsAsync(file.flush(), { message: 'no answer' });
  t.true(file.dirty, 'the bytes are still to be sent');
  await file.append(Buffer.from('two\n'));
  await file.flush();
  t.false(file.dirty);
  t.is(appends.length, 3);
  t.deepEqual({ ...appends[1], resent: false }, appends[0], 'the same bytes under the same id');
  t.true(appends[1]!.resent, 'marked as sent before, for a name server that restarted meanwhile');
  t.is(appends[2]!.data, 'two\n');
  t.false(appends[2]!.resent);
  t.not(appends[2]!.id, appends[0]!.id);
});

test('appended bytes the name server refuses (NOT_KEPT) are laid over the fetched content and committed whole', async (t) => {
  const refused = new DfsError('NOT_KEPT', 'not kept');
  const { backend: fake, appends, commits } = appendBackend([refused], Buffer.from('base\n'));
  const file = OpenFile.appending(7, '/f', version(1, 5).attr, fake);
  await file.append(Buffer.from('one\n'));
  await file.append(Buffer.from('two\n'));
  await file.flush();
  t.is(appends.length, 1);
  t.is(appends[0]!.data, 'one\ntwo\n');
  t.deepEqual(commits, ['base\none\ntwo\n']);
  t.is(file.size, 13);
});

test('bytes in doubt that the name server then refuses go with the content at once, with the bytes appended since', async (t) => {
  const { backend: fake, appends, commits } = appendBackend([new DfsError('ETIMEDOUT', 'no answer'), new DfsError('NOT_KEPT', 'not kept')], Buffer.from('base\n'));
  const file = OpenFile.appending(7, '/f', version(1, 5).attr, fake);
  await file.append(Buffer.from('one\n'));
  await t.throwsAsync(file.flush());
  await file.append(Buffer.from('two\n'));
  await file.flush();
  t.is(appends.length, 2, 'the refused bytes are not offered again with the newer ones');
  t.deepEqual(commits, ['base\none\ntwo\n']);
});

/**
 * A name server and storage servers in memory, for OpenFile's commits of content on storage servers: one
 * file, its versions, commits of appended bytes made once per id (answered, when sent again, with the file
 * as it is then, as a restarted name server does), and answers, reads or lookups that fail on demand.
 */
class FakeCluster {
  version = 1;
  content: Buffer;
  readonly store = new Map<string, Buffer>();
  readonly made = new Set<string>();
  readonly commits: { content: string; appendedTo: { version: number; id: string } | undefined }[] = [];
  loseAnswers = 0;
  failReads = 0;

  constructor(
    content: string,
    readonly chunkSize: number,
    /** Above 0: files up to this size are committed with their bytes, as to a name server that keeps them. */
    readonly inlineMax = 0,
  ) {
    this.content = Buffer.from(content);
  }

  /** Another client's append, committed. */
  othersAppend(text: string): void {
    this.content = Buffer.concat([this.content, Buffer.from(text)]);
    this.version++;
  }

  attr(): Attr {
    return { ...version(this.version, this.content.length).attr };
  }

  chunks(): ChunkLocation[] {
    const out: ChunkLocation[] = [];
    for (let offset = 0; offset < this.content.length; offset += this.chunkSize) {
      const data = this.content.subarray(offset, offset + this.chunkSize);
      const hash = createHash('sha256').update(data).digest('hex');
      this.store.set(hash, Buffer.from(data));
      out.push({ hash, size: data.length, offset, servers: [] });
    }
    return out;
  }

  backend(): FileBackend {
    const fake: Partial<FileBackend> = {
      chunkSize: this.chunkSize,
      inlineMax: this.inlineMax,
      inlineRefused: () => undefined,
      readChunk: async (hash) => {
        if (this.failReads > 0 && this.failReads--) throw new DfsError('EIO', 'replicas failed');
        return this.store.get(hash)!;
      },
      prefetch: () => undefined,
      hash: async (data) => createHash('sha256').update(data).digest('hex'),
      locate: async (hashes) => new Map(hashes.filter((h) => this.store.has(h)).map((h) => [h, [{ id: 'fake', url: 'http://127.0.0.1:9' }]])),
      upload: async (hash, data) => {
        this.store.set(hash, Buffer.from(data));
        return [];
      },
      uploadSlot: async () => () => undefined,
      remember: () => undefined,
      info: async () => ({ path: '/f', attr: this.attr(), replicas: 2, chunkSize: this.chunkSize, chunks: this.chunks(), fullyReplicated: true }),
      commit: async ({ chunks, appendedTo, inline }) => {
        for (const kept of inline ?? []) this.store.set(kept.hash, Buffer.from(kept.data, 'base64'));
        const content = Buffer.concat(chunks.map((c) => this.store.get(c.hash)!));
        this.commits.push({ content: content.toString(), appendedTo });
        if (appendedTo && this.made.has(appendedTo.id)) return this.attr();
        if (appendedTo && appendedTo.version !== this.version) throw new DfsError('VERSION_MOVED', 'moved on');
        this.content = content;
        this.version++;
        if (appendedTo) this.made.add(appendedTo.id);
        if (this.loseAnswers > 0 && this.loseAnswers--) throw new DfsError('ETIMEDOUT', 'no answer');
        return this.attr();
      },
    };
    return fake as FileBackend;
  }

  open(backend = this.backend()): OpenFile {
    return new OpenFile(7, '/f', this.attr(), this.chunks(), backend);
  }
}

test('a commit of appended bytes that got no answer is sent again unchanged before more bytes are appended', async (t) => {
  const cluster = new FakeCluster('base\n', 4 * 1024 * 1024);
  const file = cluster.open();
  await file.append(Buffer.from('one\n'));
  cluster.loseAnswers = 1;
  await t.throwsAsync(file.flush(), { message: 'no answer' });
  await file.append(Buffer.from('two\n'));
  await file.flush();
  t.is(cluster.content.toString(), 'base\none\ntwo\n');
  const [first, again, next] = cluster.commits;
  t.deepEqual(again, first, 'the commit in doubt, sent again as it was');
  t.is(next!.appendedTo!.version, 2, 'the bytes appended since go on the version it made');
  t.not(next!.appendedTo!.id, first!.appendedTo!.id);
});

test('a commit made before, answered with a later version, leaves the mount holding the version it made', async (t) => {
  const cluster = new FakeCluster('base\n', 4 * 1024 * 1024);
  const file = cluster.open();
  await file.append(Buffer.from('one\n'));
  cluster.loseAnswers = 1;
  await t.throwsAsync(file.flush());
  cluster.othersAppend('other\n');
  // Sent again: made before, so answered with the file as it is now (version 3).
  await file.flush();
  t.is(file.attr.version, 2);
  t.is(file.size, 9);
  await file.append(Buffer.from('three\n'));
  await file.flush();
  t.is(cluster.content.toString(), 'base\none\nother\nthree\n');
});

test('a rebase that fails part way keeps the appended bytes for the next flush', async (t) => {
  // Chunks of 8 bytes: the appended bytes fill chunks, which are uploaded as they fill.
  const cluster = new FakeCluster('base\n', 8);
  const file = cluster.open();
  await file.append(Buffer.from('AAAAAAAAAAAAAAAA\n'));
  cluster.othersAppend('other\n');
  cluster.failReads = 1;
  await t.throwsAsync(file.flush(), { message: 'replicas failed' });
  await file.flush();
  t.is(cluster.content.toString(), 'base\nother\nAAAAAAAAAAAAAAAA\n');
});

test('bytes appended (O_APPEND) to a version another client has since moved on from go at its new end, under a new id', async (t) => {
  const cluster = new FakeCluster('base\n', 4 * 1024 * 1024, 64 * 1024);
  const file = cluster.open();
  await file.append(Buffer.from('mine\n'));
  // Another client appends and closes first.
  cluster.othersAppend('other\n');
  await file.flush();
  const commits = cluster.commits;
  t.is(commits.length, 2);
  t.deepEqual(
    commits.map((c) => [c.content, c.appendedTo?.version]),
    [
      ['base\nmine\n', 1],
      ['base\nother\nmine\n', 2],
    ],
  );
  t.not(commits[0]!.appendedTo!.id, commits[1]!.appendedTo!.id);
  t.is(file.size, 16);
  t.false(file.dirty);
});

test('a commit of appended bytes that got no answer is sent again with the same version and id', async (t) => {
  const cluster = new FakeCluster('base\n', 4 * 1024 * 1024, 64 * 1024);
  const file = cluster.open();
  await file.append(Buffer.from('mine\n'));
  cluster.loseAnswers = 1;
  await t.throwsAsync(file.flush(), { message: 'no answer' });
  await file.flush();
  t.is(cluster.commits.length, 2);
  t.deepEqual(cluster.commits[1], cluster.commits[0], 'the same content on the same version under the same id');
});

test('a write elsewhere than the end, or a truncate, makes the commit unconditional (the last close wins, as before)', async (t) => {
  for (const change of [(f: OpenFile) => f.write(0, Buffer.from('B')), (f: OpenFile) => f.truncate(3)]) {
    const cluster = new FakeCluster('base\n', 4 * 1024 * 1024, 64 * 1024);
    const file = cluster.open();
    await file.append(Buffer.from('mine\n'));
    await change(file);
    await file.flush();
    t.is(cluster.commits.length, 1);
    t.is(cluster.commits[0]!.appendedTo, undefined);
  }
});
