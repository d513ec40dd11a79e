import type { Attr } from '../protocol/schemas.js';
import { nsToDate } from '../protocol/time.js';

/** Byte counts as people read them: 1.5 GiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const TYPE_CHAR: Record<Attr['type'], string> = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', char: 'c', block: 'b' };

/** `drwxr-xr-x` from a type and st_mode, as ls prints it. */
export function formatMode(attr: Pick<Attr, 'type' | 'mode'>): string {
  const bits = 'rwxrwxrwx';
  let out = TYPE_CHAR[attr.type];
  for (let i = 0; i < 9; i++) out += attr.mode & (1 << (8 - i)) ? bits[i] : '-';
  const chars = out.split('');
  if (attr.mode & 0o4000) chars[3] = chars[3] === 'x' ? 's' : 'S';
  if (attr.mode & 0o2000) chars[6] = chars[6] === 'x' ? 's' : 'S';
  if (attr.mode & 0o1000) chars[9] = chars[9] === 'x' ? 't' : 'T';
  return chars.join('');
}

export function formatTime(ns: string): string {
  const date = nsToDate(ns);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Lines of columns, each padded to its widest cell; `right` columns are right-aligned. */
export function table(rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
