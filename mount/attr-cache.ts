import { parentAndName } from '../protocol/names.js';
import type { Attr } from '../protocol/schemas.js';

interface Timed<T> {
  value: T;
  expires: number;
}

/** More entries than this and the cache starts over (cheaper than tracking recency for every stat). */
const MAX_ENTRIES = 200_000;
/** Name sets of new directories: bounded, though one lives a TTL at most. */
const MAX_LISTING_NAMES = 10_000;
const MAX_LISTINGS = 10_000;

/**
 * Attributes and names seen recently, for a short time: path → inode number, inode number → attributes.
 * Keyed by inode too, so a change made through one hard link shows through every name of the file.
 * Changes made by this mount update or drop entries at once; other clients' changes show after the TTL.
 */
export class AttrCache {
  private readonly paths = new Map<string, Timed<number>>();
  private readonly attrs = new Map<number, Timed<Attr>>();
  private readonly xattrs = new Map<number, Timed<ReadonlySet<string>>>();
  /** Directories whose every name is known (made lately by this mount), for answering "no such name". */
  private readonly listings = new Map<string, Timed<Set<string>>>();

  constructor(private readonly ttlMs: number) {}

  get(path: string): Attr | undefined {
    const now = Date.now();
    const ino = this.paths.get(path);
    if (!ino || ino.expires < now) return undefined;
    const attr = this.attrs.get(ino.value);
    if (!attr || attr.expires < now) return undefined;
    return attr.value;
  }

  put(path: string, attr: Attr): void {
    if (this.ttlMs <= 0) return;
    if (this.paths.size > MAX_ENTRIES || this.attrs.size > MAX_ENTRIES) this.clear();
    const expires = Date.now() + this.ttlMs;
    this.paths.set(path, { value: attr.ino, expires });
    this.attrs.set(attr.ino, { value: attr, expires });
  }

  /** Updates the attributes of an inode already known (a commit or setattr answered them). */
  putAttr(attr: Attr): void {
    if (this.ttlMs <= 0) return;
    this.attrs.set(attr.ino, { value: attr, expires: Date.now() + this.ttlMs });
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
   * Every name in a directory this mount has just made (none). Until the TTL runs out, a name not in it
   * is missing without asking: a cp or tar into a new folder looks up each name before creating it. This
   * mount's own changes keep it up to date; a name another client makes there in that second shows after
   * the TTL, as other clients' changes to attributes do. (Listings are not used this way: a name made
   * elsewhere in a folder this mount merely looked at shows at once.)
   */
  madeDir(dir: string): void {
    if (this.ttlMs <= 0) return;
    if (this.listings.size > MAX_LISTINGS) this.listings.clear();
    this.listings.set(dir, { value: new Set(), expires: Date.now() + this.ttlMs });
  }

  /** Whether `path` is known not to exist: its directory's listing is known and lacks the name. */
  knownMissing(path: string): boolean {
    if (path === '/') return false;
    const { parent: dir, name } = parentAndName(path);
    const listing = this.listings.get(dir);
    if (!listing) return false;
    if (listing.expires < Date.now()) {
      this.listings.delete(dir);
      return false;
    }
    return !listing.value.has(name);
  }

  entryAdded(path: string): void {
    const { parent: dir, name } = parentAndName(path);
    this.listed(dir, [name]);
  }

  /** A listing of a directory whose names are kept: names other clients made there are in it too. */
  listed(dir: string, names: readonly string[]): void {
    const listing = this.listings.get(dir)?.value;
    if (!listing) return;
    for (const name of names) listing.add(name);
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
    return entry && entry.expires >= Date.now() ? entry.value : undefined;
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

  clear(): void {
    this.paths.clear();
    this.attrs.clear();
    this.xattrs.clear();
    this.listings.clear();
  }
}
