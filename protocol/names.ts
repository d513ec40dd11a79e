import { DfsError } from './errors.js';

/** Longest name in bytes (NAME_MAX on Linux). */
export const NAME_MAX = 255;
/** Longest path in bytes (PATH_MAX on Linux). */
export const PATH_MAX = 4096;

/**
 * The one name check, in a fixed order (as MooseFS fsnodes_namecheck): empty, `.`/`..`, NUL or `/`,
 * then length. Throws EINVAL or ENAMETOOLONG.
 */
export function checkName(name: string): void {
  if (name.length === 0) throw new DfsError('EINVAL', 'empty file name');
  if (name === '.' || name === '..') throw new DfsError('EINVAL', `invalid file name: ${name}`);
  if (name.includes('\0') || name.includes('/')) throw new DfsError('EINVAL', 'file name contains NUL or /');
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX) throw new DfsError('ENAMETOOLONG', `file name longer than ${NAME_MAX} bytes`);
}

/**
 * Splits an absolute path into checked names. `/` gives []. Repeated and trailing slashes are folded;
 * `.` and `..` are refused rather than resolved, since the namespace is addressed by canonical paths.
 */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new DfsError('EINVAL', `path must be absolute: ${String(path)}`);
  if (Buffer.byteLength(path, 'utf8') > PATH_MAX) throw new DfsError('ENAMETOOLONG', `path longer than ${PATH_MAX} bytes`);
  const names = path.split('/').filter((part) => part.length > 0);
  for (const name of names) checkName(name);
  return names;
}

/** The canonical form of an absolute path: `/a/b`, or `/` for the root. */
export function normalizePath(path: string): string {
  return '/' + splitPath(path).join('/');
}

/** Parent path and last name of a path other than `/`. */
export function parentAndName(path: string): { parent: string; name: string } {
  const names = splitPath(path);
  const name = names.pop();
  if (name === undefined) throw new DfsError('EINVAL', 'the root has no parent');
  return { parent: '/' + names.join('/'), name };
}

/** Joins a base path and a relative or absolute one, resolving `.` and `..` (for shells and CLIs). */
export function resolvePath(base: string, path: string): string {
  const parts = path.startsWith('/') ? [] : base.split('/').filter(Boolean);
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return '/' + parts.join('/');
}
