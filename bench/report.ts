import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Figure, Workload } from './workloads.js';

/**
 * Medians per target and workload over the repetitions, ratios of dfs to MooseFS and to the passthrough,
 * peak memory per process, printed as tables and written as one JSON file with every raw figure.
 */

export interface RunFigure extends Figure {
  target: string;
  rep: number;
}

export interface TargetFailure {
  target: string;
  rep: number;
  stage: 'start' | 'workload' | 'stop';
  error: string;
  /** Log tails of the target's processes. */
  diagnosis?: string;
}

export interface Summary {
  workload: Workload;
  unit: string;
  /** target → median of the valid figures (null when none was valid). */
  medians: Record<string, number | null>;
  /** target → "valid of total". */
  runs: Record<string, string>;
  ratios: Record<string, number | null>;
}

export const RATIOS: Array<[string, string]> = [
  ['dfs', 'moosefs'],
  ['dfs', 'moosefs-fsync'],
  ['dfs', 'passthrough'],
  ['dfs-sync-data', 'moosefs'],
];

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(figures: RunFigure[], targets: string[], workloads: readonly Workload[]): Summary[] {
  const out: Summary[] = [];
  for (const workload of workloads) {
    const mine = figures.filter((f) => f.workload === workload);
    if (mine.length === 0) continue;
    const medians: Record<string, number | null> = {};
    const runs: Record<string, string> = {};
    for (const target of targets) {
      const all = mine.filter((f) => f.target === target);
      const valid = all.filter((f) => f.valid && f.value !== null).map((f) => f.value!);
      medians[target] = median(valid);
      runs[target] = `${valid.length}/${all.length}`;
    }
    const ratios: Record<string, number | null> = {};
    for (const [a, b] of RATIOS) {
      if (!targets.includes(a) || !targets.includes(b)) continue;
      const x = medians[a];
      const y = medians[b];
      ratios[`${a}/${b}`] = x != null && y != null && y > 0 ? Number((x / y).toFixed(3)) : null;
    }
    out.push({ workload, unit: mine[0]!.unit, medians, runs, ratios });
  }
  return out;
}

function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined) return 'FAIL';
  if (value >= 100) return String(Math.round(value));
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

export function summaryTable(summaries: Summary[], targets: string[]): string {
  const ratioNames = summaries[0] ? Object.keys(summaries[0].ratios) : [];
  const rows = [['workload', 'unit', ...targets, ...ratioNames]];
  for (const s of summaries) {
    rows.push([
      s.workload,
      s.unit,
      ...targets.map((t) => `${fmt(s.medians[t])}${s.runs[t]!.split('/')[0] !== s.runs[t]!.split('/')[1] ? ` (${s.runs[t]} ok)` : ''}`),
      ...ratioNames.map((r) => (s.ratios[r] == null ? '-' : s.ratios[r]!.toFixed(2))),
    ]);
  }
  return table(rows);
}

/** target → role → peak bytes. */
export type PeakRss = Record<string, Record<string, number>>;

export function rssTable(rss: PeakRss): string {
  const rows = [['target', 'process', 'peak RSS (MiB)']];
  for (const [target, roles] of Object.entries(rss)) {
    for (const [role, bytes] of Object.entries(roles)) rows.push([target, role, (bytes / 1024 / 1024).toFixed(1)]);
  }
  return table(rows);
}

export async function writeReport(path: string, report: Record<string, unknown>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
