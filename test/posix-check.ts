import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpGenerator, type TreeView } from './posix-generator.js';
import { isHidden, Rng, Side, summarize, type Op, type Outcome, type StatSummary } from './posix-model.js';
import { OpenNames } from './posix-names.js';
import { compareOutcomes, compareTrees, markLooseMtimes, show, snapshot, whereBytesDiffer, type Snapshot } from './posix-snapshot.js';

/**
 * The differential POSIX test's runner: applies each generated operation to the local tree and to the
 * mount, then compares what each returned (value or exact errno) and both whole trees: names, types,
 * permission bits, link counts, which names share an inode, sizes, content hashes, symlink targets, and
 * modification times wherever one was set explicitly (utimes). Any difference stops the run with the
 * seed, the step and the operations that led there.
 *
 * Exclusions, each as narrow as it can be; all but the last come from FUSE 2's high-level API (libfuse
 * 2 addresses files by path and gives each name its own node), not from dfs:
 * - libfuse renames a file that is unlinked (or renamed over) while open to `.fuse_hidden…` in the same
 *   directory until its last close. Those names are left out of listings; such a file keeps one link
 *   there, so the mount's link count of an inode may exceed the local one by its hidden names; and
 *   rmdir of (or rename onto) a directory that holds only hidden names would fail with ENOTEMPTY, so
 *   that step is skipped on both sides. When libfuse finally removes a hidden name, the directory's
 *   mtime moves on the mount alone: it is not compared until utimes sets it again.
 * - posix-names.ts: reads through a descriptor that missed writes made through another hard link, and
 *   renames onto an open hard link of the source (both from libfuse's one-node-per-name).
 * - truncate(2) to the current size (see truncatesToSameSize).
 * - Access times are compared only right after utimes set them: the mount does not update them on read
 *   (as with noatime, by design), while the local file system does (relatime).
 */

/** After utimes, both times as stat shows them (atime is compared only here). */
async function timesAfter(op: Op, side: Side): Promise<string> {
  let s: StatSummary;
  if (op.op === 'fdutimes') s = summarize(await side.fds[op.slot]!.stat({ bigint: true }));
  else if (op.op === 'utimes') s = summarize(op.follow ? await fsp.stat(join(side.root, op.path), { bigint: true }) : await fsp.lstat(join(side.root, op.path), { bigint: true }));
  else return '';
  return `atime ${s.atimeNs} mtime ${s.mtimeNs}`;
}

/**
 * Whether a step must be skipped: rmdir of a directory, or rename onto one, whose only entries on the
 * mount are `.fuse_hidden` files (locally it is empty, on the mount ENOTEMPTY: see the header).
 */
async function holdsOnlyHidden(mount: Side, op: Op): Promise<boolean> {
  const path = op.op === 'rmdir' ? op.path : op.op === 'rename' ? op.to : undefined;
  if (path === undefined) return false;
  try {
    const names = await fsp.readdir(join(mount.root, path));
    return names.length > 0 && names.every(isHidden);
  } catch {
    return false;
  }
}

/**
 * truncate(2) to a file's current size leaves its times alone on Linux, while open(O_TRUNC) and ftruncate
 * update them. FUSE 2 hands the mount the same truncate(path, size) for truncate(2) and for O_TRUNC, so
 * the mount updates them always (as `: > file` needs): that one case is skipped.
 */
async function truncatesToSameSize(local: Side, op: Op): Promise<boolean> {
  if (op.op !== 'truncate' || op.syscall !== 'truncate') return false;
  const s = await fsp.stat(join(local.root, op.path)).catch(() => undefined);
  return s !== undefined && s.isFile() && s.size === op.size;
}

/** How many hidden names this inode has under `root`. */
async function hiddenCount(root: string, ino: string): Promise<number> {
  let n = 0;
  for (const entry of await fsp.readdir(root, { withFileTypes: true }).catch(() => [])) {
    const at = join(root, entry.name);
    if (isHidden(entry.name) && (await fsp.lstat(at, { bigint: true }).catch(() => undefined))?.ino.toString() === ino) n += 1;
    if (entry.isDirectory()) n += await hiddenCount(at, ino);
  }
  return n;
}

/**
 * Waits (a few seconds at most) until this inode has fewer hidden names than `before`, and a little
 * more: the mount hears back from its unlink of the hidden name (and updates its caches) a moment after
 * the name server has dropped it.
 */
async function hiddenGone(root: string, ino: string, before: number): Promise<void> {
  for (let i = 0; i < 50 && (await hiddenCount(root, ino)) >= before; i++) await sleep(50);
  await sleep(SETTLE_MS);
}

/** How long the mount gets to finish a release that libfuse runs after close has returned. */
const SETTLE_MS = 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The end of a run: every descriptor closed, so everything is committed. The trees must still match,
 * and a second mount (which shares no cache with the first) must see the same tree.
 */
async function finalCheck(o: RunOptions, local: Side, mount: Side, lastMount: Snapshot, looseMtime: Set<string>, history: string[]): Promise<void> {
  await local.closeAll();
  await mount.closeAll();
  const localSnap = await snapshot(o.local);
  let mountSnap = await snapshot(o.mount, true);
  // libfuse drops hidden names after the last close returns; then one more look, once that has settled.
  for (let i = 0; i < 50 && mountSnap.hiddenNames.length; i++) {
    await sleep(100);
    mountSnap = await snapshot(o.mount, true);
  }
  await sleep(SETTLE_MS);
  mountSnap = await snapshot(o.mount, true);
  markLooseMtimes(lastMount, mountSnap, looseMtime);
  const diffs = compareTrees(localSnap, mountSnap, looseMtime);
  if (mountSnap.hiddenNames.length) diffs.push(`hidden names left after every descriptor was closed: ${mountSnap.hiddenNames.join('; ')}`);
  if (o.verify) diffs.push(...compareTrees(localSnap, await snapshot(o.verify, true), looseMtime).map((d) => `second mount: ${d}`));
  if (diffs.length) {
    throw new Divergence(
      [`SEED=${o.seed} diverged after the last step, once every descriptor was closed (chunk size ${o.chunkSize}):`, ...diffs.map((d) => `  - ${d}`), ...history.slice(-40)].join('\n'),
    );
  }
}

const withoutValue = (o: Outcome): Outcome => (o.ok ? { ok: true } : o);

function view(s: Snapshot): TreeView {
  const tree: TreeView = { files: [], dirs: [], symlinks: [] };
  for (const [path, e] of s.entries) {
    if (path === '.') continue;
    if (e.stat.type === 'file') tree.files.push(path);
    else if (e.stat.type === 'dir') tree.dirs.push(path);
    else if (e.stat.type === 'symlink') tree.symlinks.push(path);
  }
  return tree;
}

export interface RunOptions {
  seed: number;
  steps: number;
  chunkSize: number;
  /** The two trees' roots (existing, empty, made alike). */
  local: string;
  mount: string;
  /** The mount's root as a second mount of the same cluster shows it (checked at the end). */
  verify?: string;
  /** Where to write every step of a run that passes (a diverging run always writes its steps). */
  logFile?: string;
}

export interface RunReport {
  steps: number;
  /** Steps skipped under the exclusions (see the header). */
  skipped: number;
  /** How often each operation ran, and each errno came back. */
  ops: Record<string, number>;
  errors: Record<string, number>;
}

export class Divergence extends Error {}

/** Runs one seed; throws a Divergence naming the seed, step and recent history at the first difference. */
export async function runDifferential(o: RunOptions): Promise<RunReport> {
  const gen = new OpGenerator(new Rng(o.seed), o.chunkSize);
  const local = new Side('local', o.local);
  const mount = new Side('mount', o.mount);
  const openPaths: (string | undefined)[] = local.fds.map(() => undefined);
  const history: string[] = [];
  const names = new OpenNames(o.local);
  const report: RunReport = { steps: 0, skipped: 0, ops: {}, errors: {} };
  let tree = view(await snapshot(o.local));
  let lastMount = await snapshot(o.mount, true);
  const looseMtime = new Set<string>();
  try {
    for (let step = 1; step <= o.steps; step++) {
      const op = gen.next(tree, openPaths);
      const line = `${String(step).padStart(4)} ${JSON.stringify(op)}`;
      const skip = (await holdsOnlyHidden(mount, op))
        ? 'only .fuse_hidden entries'
        : (await names.renamesOntoOpenLink(op))
          ? 'target is an open link of the source'
          : (await truncatesToSameSize(local, op))
            ? 'truncate(2) to the same size'
            : undefined;
      if (skip) {
        history.push(`${line} -> skipped (${skip})`);
        report.skipped += 1;
        continue;
      }
      const stale = 'slot' in op && names.isStale(op.slot);
      const pending = await names.before(op);
      // The last close of a file that lost its name: libfuse drops its hidden name after close returns.
      const lastOfHidden = op.op === 'fdclose' && names.lastThroughHiddenName(op.slot) ? (await mount.fds[op.slot]?.stat({ bigint: true }).catch(() => undefined))?.ino.toString() : undefined;
      const hiddenBefore = lastOfHidden ? await hiddenCount(o.mount, lastOfHidden) : 0;
      const a = await local.apply(op);
      const b = await mount.apply(op);
      if (a.ok && b.ok) await names.after(op, pending, 'slot' in op ? local.fds[op.slot] : undefined);
      if (lastOfHidden && hiddenBefore > 0) await hiddenGone(o.mount, lastOfHidden, hiddenBefore);
      history.push(`${line} -> ${show(a)}${show(a) === show(b) ? '' : ` | mount: ${show(b)}`}${stale ? ' (stale descriptor)' : ''}`);
      report.steps += 1;
      report.ops[op.op] = (report.ops[op.op] ?? 0) + 1;
      if (!a.ok) report.errors[a.code] = (report.errors[a.code] ?? 0) + 1;
      if (op.op === 'fdopen' && a.ok) openPaths[op.slot] = op.path;
      if (op.op === 'fdclose') openPaths[op.slot] = undefined;
      // Before the snapshots read the files (a read moves the local access time).
      const [ta, tb] = a.ok && b.ok ? [await timesAfter(op, local), await timesAfter(op, mount)] : ['', ''];
      const localSnap = await snapshot(o.local);
      const mountSnap = await snapshot(o.mount, true);
      // libfuse removes a hidden name at the last close (asynchronously), which moves its directory's
      // mtime on the mount only: that mtime is not compared until utimes sets it again.
      markLooseMtimes(lastMount, mountSnap, looseMtime);
      if ((op.op === 'utimes' || op.op === 'fdutimes') && a.ok && b.ok) {
        const target = op.op === 'utimes' ? (op.follow ? fsp.stat : fsp.lstat)(join(o.mount, op.path), { bigint: true }) : mount.fds[op.slot]!.stat({ bigint: true });
        looseMtime.delete((await target).ino.toString());
      }
      lastMount = mountSnap;
      const allow = { hidden: mountSnap.hidden, looseMtime };
      // A read through a stale descriptor may see old bytes (see posix-names.ts): its errno still counts.
      const diffs = stale && op.op === 'fdread' ? compareOutcomes(op, withoutValue(a), withoutValue(b), allow) : compareOutcomes(op, a, b, allow);
      if (diffs.length && (op.op === 'fdread' || op.op === 'readFile')) diffs.push(whereBytesDiffer(local.lastRead, mount.lastRead));
      if (ta !== tb) diffs.push(`times after utimes: ${ta} locally, ${tb} on the mount`);
      diffs.push(...compareTrees(localSnap, mountSnap, looseMtime));
      if (diffs.length) {
        const full = join(tmpdir(), `dfs-posix-diff-${o.seed}.log`);
        await fsp.writeFile(full, history.join('\n') + '\n');
        throw new Divergence(
          [
            `SEED=${o.seed} diverged at step ${step} of ${o.steps} (chunk size ${o.chunkSize}): ${JSON.stringify(op)}`,
            ...diffs.map((d) => `  - ${d}`),
            ...(mountSnap.hiddenNames.length ? [`hidden on the mount: ${mountSnap.hiddenNames.join('; ')}`] : []),
            `steps so far (most recent last; all of them in ${full}):`,
            ...history.slice(-40),
          ].join('\n'),
        );
      }
      tree = view(localSnap);
    }
    await finalCheck(o, local, mount, lastMount, looseMtime, history);
    if (o.logFile) await fsp.writeFile(o.logFile, history.join('\n') + '\n');
  } finally {
    await local.closeAll();
    await mount.closeAll();
  }
  return report;
}
