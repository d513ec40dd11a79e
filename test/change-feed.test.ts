import test from 'ava';
import { ChangeFeed } from '../daemons/name-server/change-feed.js';

/** The name server's change feed, as pure logic: order, own changes left out, resets, waiting. */

const change = (entries: string[], inos: number[] = [], trees: string[] = []) => ({ entries: new Set(entries), trees: new Set(trees), inos: new Set(inos) });

test('a client hears what others changed after its mark, not what it changed itself', async (t) => {
  const feed = new ChangeFeed();
  const first = await feed.read('', 0, 'a', 0);
  t.true(first.reset, 'a client new to this epoch starts over');
  feed.publish('a', change(['/d/mine'], [7]));
  feed.publish('b', change(['/d/theirs'], [8], ['/d/moved']));
  const next = await feed.read(first.epoch, first.seq, 'a', 0);
  t.false(next.reset);
  t.deepEqual(next.entries, ['/d/theirs']);
  t.deepEqual(next.trees, ['/d/moved']);
  t.deepEqual(next.inos, [8]);
  t.is(next.seq, first.seq + 2);
  const none = await feed.read(next.epoch, next.seq, 'a', 0);
  t.deepEqual([none.entries, none.inos, none.reset], [[], [], false]);
});

test('a waiting client is answered when another changes something, and not for its own change', async (t) => {
  const feed = new ChangeFeed();
  const { epoch, seq } = await feed.read('', 0, 'a', 0);
  const waiting = feed.read(epoch, seq, 'a', 5_000);
  setTimeout(() => feed.publish('a', change(['/own'])), 20);
  setTimeout(() => feed.publish('b', change(['/other'])), 80);
  // Had its own change ended the wait, the answer would name nothing.
  t.deepEqual((await waiting).entries, ['/other']);
});

test('another epoch, a mark from the future or one too far behind means starting over', async (t) => {
  const feed = new ChangeFeed();
  const { epoch } = await feed.read('', 0, 'a', 0);
  t.true((await feed.read('other', 0, 'a', 0)).reset);
  t.true((await feed.read(epoch, 5, 'a', 0)).reset);
  for (let i = 0; i < 22_000; i++) feed.publish('b', change([`/f${i}`]));
  t.true((await feed.read(epoch, 100, 'a', 0)).reset, 'the oldest changes are forgotten');
  t.true((await feed.read(epoch, 8_000, 'a', 0)).reset, 'too many changes for one answer');
  const recent = await feed.read(epoch, 21_995, 'a', 0);
  t.false(recent.reset);
  t.is(recent.entries.length, 5);
  feed.reset();
  t.true((await feed.read(epoch, recent.seq, 'a', 0)).reset, 'a rebuilt namespace is a new epoch');
});

test('long paths are remembered up to a size: a client further behind starts over', async (t) => {
  const feed = new ChangeFeed();
  const { epoch, seq } = await feed.read('', 0, 'a', 0);
  const long = '/'.padEnd(4000, 'x');
  for (let i = 0; i < 3_000; i++) feed.publish('b', change([`${long}${i}`]));
  t.true((await feed.read(epoch, seq, 'a', 0)).reset, '12 MB of paths were not all kept');
  t.is((await feed.read(epoch, seq + 2_999, 'a', 0)).entries.length, 1);
});

test('a wait ends when its time is up, or at once when the server stops', async (t) => {
  const feed = new ChangeFeed();
  const { epoch, seq } = await feed.read('', 0, 'a', 0);
  const answer = await feed.read(epoch, seq, 'a', 100);
  t.deepEqual([answer.reset, answer.seq, answer.entries], [false, seq, []]);
  const long = feed.read(epoch, seq, 'a', 30_000);
  feed.close();
  t.false((await long).reset);
});
