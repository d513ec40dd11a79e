import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { EXPLICIT_BEFORE_S, isHidden, sha, summarize, type Op, type Outcome, type StatSummary } from './posix-model.js';

/**
 * What the differential POSIX test compares (posix-check.ts runs it): snapshots of a whole tree (names,
 * types, permission bits, link counts, inodes, sizes, content hashes, symlink targets, mtimes) and the
 * differences between the local tree and the mount's, or between what one operation did on each side,
 * with the allowances posix-check.ts explains (libfuse's hidden names).
 */

export interface Entry {
  stat: StatSummary;
  sha?: string;
  target?: string;
}

export interface Snapshot {
  entries: Map<string, Entry>;
  /** Inode number → how many `.fuse_hidden` names it has (the mount only). */
  hidden: Map<string, number>;
  /** The hidden names with their inode and link count (shown when a run diverges). */
  hiddenNames: string[];
  /** Directory inode number → the hidden names in it. */
  hiddenIn: Map<string, Set<string>>;
}

/** What comparing attributes must allow for on the mount's side. */
export interface Allowances {
  hidden: Map<string, number>;
  /** Directories (inode numbers on the mount) whose mtime moved when libfuse dropped a hidden name. */
  looseMtime: Set<string>;
}

/**
 * Every name under `root` (`.` for the root itself) with its attributes and content. `direct` reads with
 * O_DIRECT (a mount: the bytes come from the mount process, not from the kernel's page cache).
 */
export async function snapshot(root: string, direct = false): Promise<Snapshot> {
  const entries = new Map<string, Entry>();
  const hidden = new Map<string, number>();
  const hiddenNames: string[] = [];
  const hiddenIn = new Map<string, Set<string>>();
  const visit = async (rel: string): Promise<void> => {
    const abs = join(root, rel);
    const stat = summarize(await fsp.lstat(abs, { bigint: true }));
    const entry: Entry = { stat };
    if (stat.type === 'file') entry.sha = sha(await fsp.readFile(abs, { flag: direct ? constants.O_RDONLY | constants.O_DIRECT : 'r' }));
    if (stat.type === 'symlink') entry.target = await fsp.readlink(abs);
    entries.set(rel, entry);
    if (stat.type !== 'dir') return;
    for (const name of (await fsp.readdir(abs)).sort()) {
      if (isHidden(name)) {
        // libfuse removes it after the last close returns (release is asynchronous): it may be gone.
        const s = await fsp.lstat(join(abs, name), { bigint: true }).catch(() => undefined);
        if (s) hidden.set(s.ino.toString(), (hidden.get(s.ino.toString()) ?? 0) + 1);
        if (s) hiddenNames.push(`${rel}/${name} ino ${s.ino} nlink ${s.nlink} size ${s.size}`);
        hiddenIn.set(stat.ino, (hiddenIn.get(stat.ino) ?? new Set()).add(name));
        continue;
      }
      await visit(rel === '.' ? name : `${rel}/${name}`);
    }
  };
  await visit('.');
  return { entries, hidden, hiddenNames, hiddenIn };
}

const isExplicit = (ns: string): boolean => BigInt(ns) < BigInt(EXPLICIT_BEFORE_S) * 1_000_000_000n;

/** Differences between two stat summaries of the same name (the local one is the reference). */
function compareStat(what: string, local: StatSummary, mount: StatSummary, allow: Allowances): string[] {
  const out: string[] = [];
  if (local.type !== mount.type) return [`${what}: type ${local.type} locally, ${mount.type} on the mount`];
  if (local.perm !== mount.perm) out.push(`${what}: mode ${local.perm.toString(8)} locally, ${mount.perm.toString(8)} on the mount`);
  if (local.size !== mount.size) out.push(`${what}: size ${local.size} locally, ${mount.size} on the mount`);
  // Each `.fuse_hidden` name holds a link that the local file system has already dropped; through a
  // hidden name libfuse reports one link fewer than the mount does (it discounts that name itself).
  const extra = allow.hidden.get(mount.ino) ?? 0;
  if (mount.nlink < local.nlink || mount.nlink > local.nlink + extra) {
    out.push(`${what}: ${local.nlink} links locally, ${mount.nlink} on the mount${extra ? ` (${extra} hidden)` : ''}`);
  }
  const loose = allow.looseMtime.has(mount.ino);
  if ((isExplicit(local.mtimeNs) || isExplicit(mount.mtimeNs)) && local.mtimeNs !== mount.mtimeNs && !loose) {
    out.push(`${what}: mtime ${local.mtimeNs} locally, ${mount.mtimeNs} on the mount`);
  }
  return out;
}

/** Differences between the local tree and the mount's. */
export function compareTrees(local: Snapshot, mount: Snapshot, looseMtime: Set<string>): string[] {
  const out: string[] = [];
  for (const path of local.entries.keys()) if (!mount.entries.has(path)) out.push(`${path}: missing on the mount`);
  for (const path of mount.entries.keys()) if (!local.entries.has(path)) out.push(`${path}: only on the mount`);
  const localGroups = new Map<string, string[]>();
  const mountGroups = new Map<string, string[]>();
  for (const [path, l] of local.entries) {
    const m = mount.entries.get(path);
    if (!m) continue;
    out.push(...compareStat(path, l.stat, m.stat, { hidden: mount.hidden, looseMtime }));
    if (l.sha !== m.sha && l.stat.type === m.stat.type) out.push(`${path}: content ${l.sha} locally, ${m.sha} on the mount`);
    if (l.target !== m.target) out.push(`${path}: symlink to ${l.target} locally, to ${m.target} on the mount`);
    localGroups.set(l.stat.ino, [...(localGroups.get(l.stat.ino) ?? []), path]);
    mountGroups.set(m.stat.ino, [...(mountGroups.get(m.stat.ino) ?? []), path]);
  }
  // Hard links: the same names share an inode on both sides.
  for (const [path, l] of local.entries) {
    const m = mount.entries.get(path);
    if (!m) continue;
    const a = localGroups.get(l.stat.ino)!.join(' ');
    const b = mountGroups.get(m.stat.ino)!.join(' ');
    if (a !== b) out.push(`${path}: shares its inode with [${a}] locally, with [${b}] on the mount`);
  }
  return [...new Set(out)];
}

/** Differences between what an operation did on each side. */
export function compareOutcomes(op: Op, local: Outcome, mount: Outcome, allow: Allowances): string[] {
  if (local.ok !== mount.ok || (!local.ok && !mount.ok && local.code !== mount.code)) {
    return [`result: ${show(local)} locally, ${show(mount)} on the mount`];
  }
  if (!local.ok || !mount.ok) return [];
  if (op.op === 'stat' || op.op === 'fdstat') return compareStat('stat', local.value as StatSummary, mount.value as StatSummary, allow);
  const a = JSON.stringify(local.value);
  const b = JSON.stringify(mount.value);
  return a === b ? [] : [`value: ${a} locally, ${b} on the mount`];
}

export function show(o: Outcome): string {
  if (!o.ok) return o.code;
  if (o.value === undefined) return 'ok';
  return `ok ${JSON.stringify(o.value, (k, v: unknown) => (k === 'ino' || k === 'atimeNs' ? undefined : v))}`;
}

/** Where two reads differ: the byte ranges, with a few bytes of each. */
export function whereBytesDiffer(a: Buffer, b: Buffer): string {
  const ranges: string[] = [];
  let start = -1;
  const end = Math.max(a.length, b.length);
  for (let i = 0; i <= end; i++) {
    const differ = i < end && a[i] !== b[i];
    if (differ && start < 0) start = i;
    if (!differ && start >= 0) {
      ranges.push(`[${start}, ${i}): local ${a.subarray(start, Math.min(i, start + 8)).toString('hex')}…, mount ${b.subarray(start, Math.min(i, start + 8)).toString('hex')}…`);
      start = -1;
    }
  }
  return `bytes differ at ${ranges.slice(0, 6).join('; ')}${ranges.length > 6 ? ` and ${ranges.length - 6} more ranges` : ''}`;
}

/** Directories whose hidden names went away since `before`: their mtime moved on the mount alone. */
export function markLooseMtimes(before: Snapshot, after: Snapshot, looseMtime: Set<string>): void {
  for (const [dir, names] of before.hiddenIn) {
    const now = after.hiddenIn.get(dir);
    if ([...names].some((name) => !now?.has(name))) looseMtime.add(dir);
  }
}
