import { parentAndName } from '../protocol/names.js';
import type { Attr } from '../protocol/schemas.js';

interface Timed<T> {
  value: T;
  expires: number;
}

/** An entry that may stay true past its timeout, while the change feed is heard (`keptUntil` > 0). */
interface Kept<T> extends Timed<T> {
  /** Even a kept entry is asked for again after this (a safety net, should a change go unheard); 0: not kept. */
  keptUntil: number;
}

/** More entries than this and the cache starts over (cheaper than tracking recency for every stat). */
const MAX_ENTRIES = 200_000;
/** Listings (name sets of folders): bounded in number and size, and in how long one is trusted. */
const MAX_LISTING_NAMES = 10_000;
const MAX_LISTINGS = 10_000;
/** Names held in listings in all, at most (counted as they come; the listings start over beyond it). */
const MAX_NAMES_IN_LISTINGS = 1_000_000;
/** How long an entry kept by the change feed is trusted at most. */
const KEPT_MS = 60_000;

/**
 * Attributes and names seen recently, for a short time: path → inode number, inode number → attributes.
 * Keyed by inode too, so a change made through one hard link shows through every name of the file.
 * Changes made by this mount update or drop entries at once; other clients' changes show after the TTL.
 * Entries asked for while the name server's change feed was heard (`kept`) are the exception: while it
 * is still heard (`feedLive`), it names what other clients changed, and the rest stays true.
 */
export class AttrCache {
  private readonly paths = new Map<string, Kept<number>>();
  private readonly attrs = new Map<number, Kept<Attr>>();
  private readonly xattrs = new Map<number, Timed<ReadonlySet<string>>>();
  /** Folders whose every name is known (made by this mount, or listed while the feed was heard), for answering "no such name". */
  private readonly listings = new Map<string, Kept<Set<string>>>();
  private namesInListings = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly feedLive: () => boolean = () => false,
  ) {}

  /** Whether an entry is still true: within its timeout, or kept and the change feed still heard. */
  private valid(entry: Kept<unknown>, now: number): boolean {
    return entry.expires >= now || (entry.keptUntil >= now && this.feedLive());
  }

  private entry<T>(value: T, kept: boolean): Kept<T> {
    const now = Date.now();
    return { value, expires: now + this.ttlMs, keptUntil: kept ? now + Math.max(this.ttlMs, KEPT_MS) : 0 };
  }

  get(path: string): Attr | undefined {
    const now = Date.now();
    const ino = this.paths.get(path);
    if (!ino || !this.valid(ino, now)) return undefined;
    const attr = this.attrs.get(ino.value);
    if (!attr || !this.valid(attr, now)) return undefined;
    return attr.value;
  }

  /**
   * `kept`: asked for while the change feed was heard throughout (it would have named a change since).
   * Only a file's are kept: this mount's own changes move a folder's times in place (touchDir), which is
   * near enough for a timeout, not for longer.
   */
  put(path: string, attr: Attr, kept = false): void {
    if (this.ttlMs <= 0) return;
    if (this.paths.size > MAX_ENTRIES || this.attrs.size > MAX_ENTRIES) this.clear();
    const keep = kept && attr.type !== 'dir';
    this.paths.set(path, this.entry(attr.ino, keep));
    this.attrs.set(attr.ino, this.entry(attr, keep));
  }

  /** Updates the attributes of an inode already known (a commit or setattr answered them). */
  putAttr(attr: Attr): void {
    if (this.ttlMs <= 0) return;
    this.attrs.set(attr.ino, this.entry(attr, false));
  }

  /**
   * An entry came or went in a directory without changing its link count: its times move, nothing else,
   * so the cached attributes are updated rather than dropped (no round trip for the next stat).
   */
  touchDir(path: string, now: string): void {
    const ino = this.paths.get(path);
    const attr = ino && this.attrs.get(ino.value);
    if (attr) attr.value = { ...attr.value, mtime: now, ctime: now };
  }

  /** The xattr names of an inode, if known lately (the kernel asks for security.capability on every write). */
  xattrNames(ino: number): ReadonlySet<string> | undefined {
    const entry = this.xattrs.get(ino);
    return entry && entry.expires >= Date.now() ? entry.value : undefined;
  }

  putXattrNames(ino: number, names: readonly string[]): void {
    if (this.ttlMs <= 0) return;
    if (this.xattrs.size > MAX_ENTRIES) this.xattrs.clear();
    this.xattrs.set(ino, { value: new Set(names), expires: Date.now() + this.ttlMs });
  }

  forgetXattrs(ino: number): void {
    this.xattrs.delete(ino);
  }

  /**
   * Every name in a directory this mount has just made (none): a name not in it is missing without asking
   * (a cp or tar into a new folder looks up each name before creating it). This mount's own changes keep it
   * up to date. `kept` when the change feed was heard throughout the mkdir and named nothing meanwhile: every
   * name another client makes there comes after the mkdir, so the feed names it later, and the listing holds
   * past the timeout as a listing asked for does (a tar into one folder for minutes asks nothing before each
   * create). Else a name made elsewhere shows after the timeout.
   */
  madeDir(dir: string, kept: boolean): void {
    this.putListing(dir, [], kept);
  }

  /**
   * A folder's names as a listing gave them. Kept only if the change feed was heard throughout the call:
   * without it, a name made elsewhere in a folder this mount merely looked at must show at once.
   */
  listedAll(dir: string, names: readonly string[], kept: boolean): void {
    if (kept) this.putListing(dir, names, true);
    else this.listed(dir, names);
  }

  private putListing(dir: string, names: readonly string[], kept: boolean): void {
    if (this.ttlMs <= 0 || names.length > MAX_LISTING_NAMES) return;
    if (this.listings.size >= MAX_LISTINGS || this.namesInListings + names.length > MAX_NAMES_IN_LISTINGS) {
      this.listings.clear();
      this.namesInListings = 0;
    }
    this.listings.set(dir, this.entry(new Set(names), kept));
    this.namesInListings += names.length;
  }

  /** Whether `path` is known not to exist: its directory's listing is known and lacks the name. */
  knownMissing(path: string): boolean {
    if (path === '/') return false;
    const { parent: dir, name } = parentAndName(path);
    const listing = this.listings.get(dir);
    if (!listing) return false;
    if (!this.valid(listing, Date.now())) {
      this.listings.delete(dir);
      return false;
    }
    return !listing.value.has(name);
  }

  /** What the change feed said other clients did: names that came or went, folders moved or removed, inodes changed. */
  changedElsewhere(changes: { reset: boolean; entries: readonly string[]; trees: readonly string[]; inos: readonly number[] }): void {
    if (changes.reset) this.clear();
    for (const path of changes.entries) {
      this.paths.delete(path);
      this.listings.delete(parentAndName(path).parent);
    }
    if (changes.trees.length > 0) this.forgetTrees(changes.trees);
    for (const ino of changes.inos) {
      this.attrs.delete(ino);
      this.xattrs.delete(ino);
    }
  }

  entryAdded(path: string): void {
    const { parent: dir, name } = parentAndName(path);
    this.listed(dir, [name]);
  }

  /** Names a listing showed, added to the one held for the folder if any (it then knows them too). */
  private listed(dir: string, names: readonly string[]): void {
    const listing = this.listings.get(dir)?.value;
    if (!listing) return;
    for (const name of names) listing.add(name);
    this.namesInListings += names.length;
    if (listing.size > MAX_LISTING_NAMES) this.listings.delete(dir);
  }

  forgetListing(dir: string): void {
    this.listings.delete(dir);
  }

  entryRemoved(path: string): void {
    const { parent: dir, name } = parentAndName(path);
    this.listings.get(dir)?.value.delete(name);
  }

  inoOf(path: string): number | undefined {
    const entry = this.paths.get(path);
    return entry && this.valid(entry, Date.now()) ? entry.value : undefined;
  }

  /** Forgets a name and the inode it led to (its link count or times changed). */
  forget(path: string): void {
    const entry = this.paths.get(path);
    if (entry) this.attrs.delete(entry.value);
    this.paths.delete(path);
  }

  forgetIno(ino: number): void {
    this.attrs.delete(ino);
  }

  /** Forgets a path and everything below it (a directory was renamed or removed). */
  forgetTree(path: string): void {
    this.forget(path);
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const key of this.paths.keys()) if (key.startsWith(prefix)) this.paths.delete(key);
    this.listings.delete(path);
    for (const key of this.listings.keys()) if (key.startsWith(prefix)) this.listings.delete(key);
  }

  /** Forgets every path at or below any of `roots` (folders that went or moved elsewhere), in one pass. */
  private forgetTrees(roots: readonly string[]): void {
    const set = new Set(roots);
    if (set.has('/')) return this.clear();
    const within = (path: string): boolean => {
      for (let at = path; at.length > 1; at = at.slice(0, at.lastIndexOf('/')) || '/') if (set.has(at)) return true;
      return false;
    };
    for (const root of set) this.forget(root);
    for (const key of this.paths.keys()) if (within(key)) this.paths.delete(key);
    for (const key of this.listings.keys()) if (within(key)) this.listings.delete(key);
  }

  clear(): void {
    this.paths.clear();
    this.attrs.clear();
    this.xattrs.clear();
    this.listings.clear();
    this.namesInListings = 0;
  }
}
