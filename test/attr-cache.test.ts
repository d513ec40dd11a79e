import test from 'ava';
import { AttrCache } from '../mount/attr-cache.js';
import type { Attr } from '../protocol/schemas.js';

/** The mount's attribute and listing cache, as pure logic: what the change feed lets it keep, and what it forgets. */

const TTL_MS = 20;
const pastTtl = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, TTL_MS * 2));

function attr(ino: number, type: Attr['type'] = 'file', size = 1): Attr {
  const t = '1700000000000000000';
  return { ino, type, mode: type === 'dir' ? 0o40755 : 0o100644, uid: 0, gid: 0, size, nlink: 1, rdev: 0, atime: t, mtime: t, ctime: t, version: 1 };
}

function cacheWithFeed(): { cache: AttrCache; feed: { live: boolean } } {
  const feed = { live: true };
  return { cache: new AttrCache(TTL_MS, () => feed.live), feed };
}

test('a kept file and listing outlast the timeout while the feed is heard, and only then', async (t) => {
  const { cache, feed } = cacheWithFeed();
  cache.put('/d/f', attr(2), true);
  cache.put('/d/g', attr(3), false);
  cache.put('/d/sub', attr(4, 'dir'), true);
  cache.listedAll('/d', ['f', 'g', 'sub'], true);
  await pastTtl();
  t.is(cache.get('/d/f')?.ino, 2, 'kept');
  t.is(cache.get('/d/g'), undefined, 'not kept: asked for across a change');
  t.is(cache.get('/d/sub'), undefined, "a folder's attributes are never kept");
  t.true(cache.knownMissing('/d/new'));
  t.false(cache.knownMissing('/d/f'));
  feed.live = false;
  t.is(cache.get('/d/f'), undefined, 'feed lost: back to the timeout');
  t.false(cache.knownMissing('/d/new'));
});

test('what the feed names is forgotten: names, their folders\' listings, inodes, whole trees', async (t) => {
  const { cache } = cacheWithFeed();
  for (const [path, ino] of [['/a/x', 10], ['/a/y', 11], ['/b/sub/z', 12], ['/b/subway', 13], ['/c/w', 14]] as const) cache.put(path, attr(ino), true);
  cache.listedAll('/a', ['x', 'y'], true);
  cache.listedAll('/b/sub', ['z'], true);
  cache.listedAll('/c', ['w'], true);
  await pastTtl();
  cache.changedElsewhere({ reset: false, entries: ['/a/x'], trees: ['/b/sub'], inos: [14] });
  t.is(cache.get('/a/x'), undefined, 'a name that went');
  t.false(cache.knownMissing('/a/new'), "its folder's listing is asked for again");
  t.is(cache.get('/a/y')?.ino, 11, 'a neighbour stays');
  t.is(cache.get('/b/sub/z'), undefined, 'below a folder that went');
  t.false(cache.knownMissing('/b/sub/q'));
  t.is(cache.get('/b/subway')?.ino, 13, 'a name that only starts like it stays');
  t.is(cache.get('/c/w'), undefined, 'an inode that changed');
  t.true(cache.knownMissing('/c/new'), "an inode's change leaves its folder's listing");
  cache.changedElsewhere({ reset: true, entries: [], trees: [], inos: [] });
  t.is(cache.get('/a/y'), undefined, 'a reset forgets everything');
  t.false(cache.knownMissing('/c/new'));
});
