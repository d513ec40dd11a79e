import type { FuseOps } from 'fuse-native';

/** One line of the trace, as traceFuseOps writes it and tests read it. */
export interface FuseTraceLine {
  trace: 'fuse';
  op: string;
  path: unknown;
  /** Reads and writes: the bytes the kernel asked for. */
  bytes?: number;
  ms: number;
}

/**
 * DFS_TRACE_FUSE=1: one line on stderr per FUSE operation with the time from its call to its answer (to
 * see where time goes between the kernel and the name and storage servers; DFS_TRACE_HTTP shows the calls),
 * and for reads and writes the bytes the kernel asked for.
 */
export function traceFuseOps(ops: FuseOps): FuseOps {
  if (process.env.DFS_TRACE_FUSE !== '1') return ops;
  const traced: Record<string, unknown> = {};
  for (const [name, op] of Object.entries(ops) as [string, ((...args: unknown[]) => void) | undefined][]) {
    if (typeof op !== 'function') continue;
    traced[name] = (...args: unknown[]) => {
      const started = performance.now();
      const cb = args[args.length - 1] as (...reply: unknown[]) => void;
      args[args.length - 1] = (...reply: unknown[]) => {
        const line: FuseTraceLine = { trace: 'fuse', op: name, path: args[0], ms: Number((performance.now() - started).toFixed(3)) };
        if (name === 'read' || name === 'write') line.bytes = args[3] as number;
        process.stderr.write(`${JSON.stringify(line)}\n`);
        cb(...reply);
      };
      op(...args);
    };
  }
  return traced as FuseOps;
}
