/**
 * `npm run bench`: the file-system workloads on every target side by side, interleaved and repeated,
 * then the name server's metadata benchmark and the repair benchmark; tables on the terminal and every
 * figure in one JSON file.
 *
 *   npm run bench -- [--quick] [--reps 2] [--targets local,passthrough,dfs,moosefs] [--out FILE]
 *                    [--skip metadata,repair] [--only seq-write,cat,…] [size flags, see bench/sizes.ts]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, release, tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { peakRss, run } from './proc.js';
import { rssTable, summarize, summaryTable, writeReport, type PeakRss, type RunFigure, type TargetFailure } from './report.js';
import { sizeFlags, sizesFrom, sizesToFlags, type Sizes } from './sizes.js';
import { prepareSources } from './sources.js';
import { dfsTarget } from './targets/dfs.js';
import { localTarget } from './targets/local.js';
import { moosefsTarget } from './targets/moosefs.js';
import { passthroughTarget } from './targets/passthrough.js';
import type { RunningTarget, Target } from './targets/target.js';
import { WORKLOADS, type Figure } from './workloads.js';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const WORKLOAD_SCRIPT = here('./workloads.js');
const METADATA_SCRIPT = here('./metadata.js');
const REPAIR_SCRIPT = here('./repair.js');
const REPO = here('../..');

const ALL_TARGETS: Record<string, () => Target> = {
  local: () => localTarget,
  passthrough: () => passthroughTarget,
  dfs: () => dfsTarget(),
  moosefs: () => moosefsTarget(),
  // Not in the default list: MooseFS with its chunkservers fsyncing, to compare durable writes with durable writes.
  'moosefs-fsync': () => moosefsTarget({ fsync: true }),
  // Not in the default list: dfs with namespace changes fsynced within a second rather than before each answer
  // (file content still before close returns), as MooseFS's master writes its changelog in the background by
  // default: to compare metadata operations under the same promise.
  'dfs-sync-data': () => dfsTarget({ name: 'dfs-sync-data', nameServerArgs: ['--sync', 'data'] }),
};

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '2' },
    targets: { type: 'string', default: 'local,passthrough,dfs,moosefs' },
    out: { type: 'string' },
    skip: { type: 'string', default: '' },
    only: { type: 'string' },
    'step-timeout': { type: 'string', default: '1800' },
    'metadata-clients': { type: 'string', default: '8' },
    'metadata-ops': { type: 'string' },
    'repair-chunks': { type: 'string' },
    ...sizeFlags,
  },
});

const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** What is running now, so a signal can stop it. */
let activeTarget: RunningTarget | undefined;
/** A target being started: a signal waits for it, then stops it. */
let startingTarget: Promise<RunningTarget> | undefined;
let activeChild: ChildProcess | undefined;
let scratch: string | undefined;
let interrupted = false;

async function cleanupAndExit(signal: string): Promise<void> {
  if (interrupted) return;
  interrupted = true;
  log(`\n${signal}: stopping the running target and cleaning up…`);
  if (activeChild) {
    // The workload process ends the command it is running; then it goes, or is made to.
    const child = activeChild;
    const gone = new Promise((r) => child.once('close', r));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(killer);
  }
  if (startingTarget) await (await startingTarget.catch(() => undefined))?.stop();
  await activeTarget?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  process.exit(130);
}
process.once('SIGINT', () => void cleanupAndExit('SIGINT'));
process.once('SIGTERM', () => void cleanupAndExit('SIGTERM'));
process.once('SIGHUP', () => void cleanupAndExit('SIGHUP'));

/** Runs a node script as a child process, handing each JSON line of its stdout to `onJson`. */
function runScript(script: string, args: string[], onJson: (value: Record<string, unknown>) => void, prefix: string): Promise<number | null> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    activeChild = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        onJson(JSON.parse(line) as Record<string, unknown>);
      } catch {
        log(`${prefix}${line}`);
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => log(`${prefix}${line}`));
    child.on('close', (code) => {
      activeChild = undefined;
      resolvePromise(code);
    });
  });
}

/** Samples peak memory (VmHWM) of a target's processes until stopped; keeps the largest seen per role. */
function sampleRss(target: RunningTarget, into: Record<string, number>): { final(): Promise<void>; stop(): void } {
  const sample = async (): Promise<void> => {
    for (const p of target.processes) {
      const bytes = await peakRss(p.pid);
      if (bytes !== undefined) into[p.role] = Math.max(into[p.role] ?? 0, bytes);
    }
  };
  const timer = setInterval(() => void sample(), 1_000);
  return { final: sample, stop: () => clearInterval(timer) };
}

async function benchTarget(target: Target, rep: number, sizes: Sizes, figures: RunFigure[], failures: TargetFailure[], rss: PeakRss, infos: Record<string, unknown>): Promise<void> {
  log(`\n[rep ${rep}] ${target.name}: starting`);
  let running: RunningTarget;
  try {
    // Stopped once, whether by the end of its run or by a signal meanwhile.
    startingTarget = target.start().then((started) => {
      let stopping: Promise<void> | undefined;
      return { ...started, stop: () => (stopping ??= started.stop()) };
    });
    running = await startingTarget.finally(() => (startingTarget = undefined));
  } catch (err) {
    log(`[rep ${rep}] ${target.name}: could not start: ${(err as Error).message}`);
    failures.push({ target: target.name, rep, stage: 'start', error: (err as Error).message });
    return;
  }
  if (interrupted) return void (await running.stop());
  activeTarget = running;
  infos[target.name] = running.info;
  const peaks = (rss[target.name] ??= {});
  const sampler = sampleRss(running, peaks);
  try {
    log(`[rep ${rep}] ${target.name}: workloads in ${running.dir}`);
    const mine: RunFigure[] = [];
    const args = ['--dir', running.dir, '--scratch', scratch!, '--step-timeout', values['step-timeout']!, ...sizesToFlags(sizes), ...(values.only ? ['--only', values.only] : [])];
    const code = await runScript(WORKLOAD_SCRIPT, args, (f) => mine.push({ ...(f as unknown as Figure), target: target.name, rep }), `[${target.name}] `);
    figures.push(...mine);
    const bad = mine.filter((f) => !f.valid);
    if (code !== 0 || bad.length > 0) {
      failures.push({
        target: target.name,
        rep,
        stage: 'workload',
        error: [code !== 0 ? `workload process exited with ${code}` : '', ...bad.map((f) => `${f.workload}: ${f.error}`)].filter(Boolean).join('\n'),
        diagnosis: await running.diagnose(),
      });
    }
    await sampler.final();
  } finally {
    sampler.stop();
    log(`[rep ${rep}] ${target.name}: stopping`);
    await running.stop();
    activeTarget = undefined;
  }
}

async function main(): Promise<void> {
  const sizes = sizesFrom(values);
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be at least 1');
  const targetNames = values.targets!.split(',').filter(Boolean);
  for (const t of targetNames) if (!ALL_TARGETS[t]) throw new Error(`unknown target ${t}; known: ${Object.keys(ALL_TARGETS).join(', ')}`);
  const skip = new Set(values.skip!.split(',').filter(Boolean));
  const targets = targetNames.map((t) => ALL_TARGETS[t]!());
  if (process.getuid?.() !== 0) log('warning: not root: caches cannot be dropped, and the MooseFS target cannot start');

  const started = new Date();
  const out = values.out ?? join(REPO, 'bench', 'results', `${started.toISOString().replace(/[:]/g, '-').replace(/\..*/, '')}.json`);
  const figures: RunFigure[] = [];
  const failures: TargetFailure[] = [];
  const rss: PeakRss = {};
  const infos: Record<string, unknown> = {};
  const extra: Record<string, unknown[]> = { metadata: [], repair: [] };

  scratch = await mkdtemp(join(tmpdir(), 'dfsbench-src-'));
  try {
    log(`preparing sources in ${scratch} (${(sizes.fileBytes / 1024 / 1024).toFixed(0)} MiB file, ${sizes.files} files in ${sizes.dirs} dirs, tarball of ${sizes.tarSource})`);
    await prepareSources(scratch, sizes);
    // Interleaved: every repetition runs every target once, the order rotating between repetitions.
    for (let rep = 1; rep <= reps && !interrupted; rep++) {
      const shift = (rep - 1) % targets.length;
      for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) {
        if (interrupted) break;
        await benchTarget(target, rep, sizes, figures, failures, rss, infos);
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    scratch = undefined;
  }

  // After a signal the process is on its way out: start nothing more (a child started now would outlive it).
  if (interrupted) return;
  if (!skip.has('metadata')) {
    log('\nmetadata benchmark (name server, concurrent clients)');
    const ops = values['metadata-ops'] ?? (values.quick ? '1000' : '4000');
    await runScript(METADATA_SCRIPT, ['--clients', values['metadata-clients']!, '--ops', ops], (f) => extra.metadata!.push(f), '[metadata] ');
  }
  if (!skip.has('repair') && !interrupted) {
    log('\nrepair benchmark (kill -9 of a storage server)');
    const chunks = values['repair-chunks'] ?? (values.quick ? '16' : '64');
    await runScript(REPAIR_SCRIPT, ['--chunks', chunks], (f) => extra.repair!.push(f), '[repair] ');
  }

  const summaries = summarize(figures, targetNames, WORKLOADS);
  const commit = (await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO })).stdout.trim();
  const dirty = (await run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO })).stdout.trim() !== '';
  const load = (await run('cat', ['/proc/loadavg'])).stdout.trim();

  process.stdout.write(`\nfile-system workloads: medians of ${reps} run(s) per target (higher is better)\n`);
  process.stdout.write(`${summaryTable(summaries, targetNames)}\n`);
  process.stdout.write(`\npeak RSS (VmHWM) per process, largest over the runs\n${rssTable(rss)}\n`);
  for (const m of extra.metadata as Array<Record<string, unknown>>) process.stdout.write(`metadata ${String(m.op).padEnd(7)} ${m.clients} clients: ${m.opsPerSec} ops/s\n`);
  for (const r of extra.repair as Array<Record<string, unknown>>) {
    if (r.bench === 'repair') process.stdout.write(r.valid ? `repair: ${r.lostMiB} MiB (${r.lostChunks} chunks) re-replicated in ${r.repairSeconds} s after detection (${r.detectSeconds} s): ${r.value} MiB/s\n` : `repair: FAILED: ${r.error}\n`);
    else process.stdout.write(`disk (dd conv=fsync, same folder): ${r.value} MiB/s\n`);
  }
  if (failures.length > 0) {
    process.stdout.write(`\nfailures:\n`);
    for (const f of failures) process.stdout.write(`- ${f.target} rep ${f.rep} (${f.stage}): ${f.error.split('\n').join('\n    ')}\n`);
  }

  await writeReport(out, {
    date: started.toISOString(),
    host: { hostname: hostname(), kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryBytes: totalmem(), loadavgAtEnd: load },
    git: { commit, dirty },
    options: { reps, targets: targetNames, quick: values.quick ?? false, only: values.only, skip: [...skip] },
    sizes,
    targets: infos,
    summaries,
    peakRssBytes: rss,
    metadata: extra.metadata,
    repair: extra.repair,
    failures,
    figures,
  });
  process.stdout.write(`\nresults: ${out}\n`);
}

await main();
