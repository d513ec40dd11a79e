import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { sha256, sha256Async, sha256Moving } from '../common/sha256.js';

function reference(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

test('a chunk hashed on the worker comes back whole, with the same hash as on the main thread', async (t) => {
  const original = randomBytes(4 * 1024 * 1024);
  const data = Buffer.from(new ArrayBuffer(original.length));
  original.copy(data);
  const result = await sha256Moving(data);
  t.is(result.hash, reference(original));
  // The bytes were lent to the worker: the caller's view is empty, the returned one holds them all.
  t.is(data.length, 0);
  t.true(result.data.equals(original));
});

test('bytes that share their memory are hashed where they are, and stay usable', async (t) => {
  const big = randomBytes(3 * 1024 * 1024);
  const slice = big.subarray(1024, 2 * 1024 * 1024);
  const result = await sha256Moving(slice);
  t.is(result.hash, reference(slice));
  t.is(result.data, slice);
  t.is(big.length, 3 * 1024 * 1024);
});

test('many concurrent hashes of different sizes each get their own answer', async (t) => {
  const sizes = [0, 1, 65_536, 65_537, 1_000_000, 4 * 1024 * 1024, 2_500_000, 70_000];
  const inputs = sizes.map((size) => {
    const data = Buffer.from(new ArrayBuffer(size));
    randomBytes(size).copy(data);
    return data;
  });
  const expected = inputs.map(reference);
  const moved = await Promise.all(inputs.map((data) => sha256Moving(data)));
  t.deepEqual(
    moved.map((m) => m.hash),
    expected,
  );
  t.deepEqual(
    moved.map((m) => reference(m.data)),
    expected,
  );
  t.deepEqual(await Promise.all(moved.map((m) => sha256Async(m.data))), expected);
  t.deepEqual(
    moved.map((m) => sha256(m.data)),
    expected,
  );
});
