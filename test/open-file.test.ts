import test from 'ava';
import { OpenFile, type FileBackend } from '../mount/open-file.js';
import type { Attr, ChunkLocation } from '../protocol/schemas.js';

// OpenFile's choice of which committed version to hold is pure logic: a backend that is never called.
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
