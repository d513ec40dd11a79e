import { readFile, stat, writeFile } from 'node:fs/promises';

/** What /proc/self/mountinfo says of mount points. Reading it never touches the mount itself. */

function mountinfoEscape(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The mountinfo fields of a mount point, if mounted: [id, parent, major:minor, root, mountpoint, …]. */
export async function mountLine(dir: string): Promise<string[] | undefined> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const escaped = mountinfoEscape(dir);
  return info
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[4] === escaped);
}

export async function isMounted(dir: string): Promise<boolean> {
  return (await mountLine(dir)) !== undefined;
}

/**
 * How far the kernel reads ahead of a sequential reader of a FUSE mount. The kernel starts every FUSE
 * mount at 128 KiB (libfuse can only lower it), so a reader has one or two 128 KiB requests in flight and
 * waits out each round trip through the mount process. 1 MiB keeps eight in flight: a cold read of a
 * 512 MiB file went from about 320 to 380–410 MiB/s here (4 MiB gained nothing more).
 */
export const READ_AHEAD_KIB = 1024;

/**
 * Sets the read-ahead of the mount at `dir` (its own backing device, nothing else's). Needs root, as
 * writing to /sys does; returns false where it cannot, and the mount keeps the kernel's default.
 */
export async function setReadAhead(dir: string, kib = READ_AHEAD_KIB): Promise<boolean> {
  // The kernel sets the read-ahead from libfuse's answer to its INIT request, which may come after the
  // mount call returns, and would undo a value set before it. A stat of the mount point waits for that
  // answer. (It is async: the mount process's own event loop answers the stat.)
  await stat(dir).catch(() => undefined);
  const device = (await mountLine(dir))?.[2];
  if (!device || !/^\d+:\d+$/.test(device)) return false;
  try {
    await writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, String(kib));
    return true;
  } catch {
    return false;
  }
}
