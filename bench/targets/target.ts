/**
 * A file system to benchmark: started fresh for each repetition, used through a folder, stopped (and its
 * state removed) afterwards in every outcome.
 */

export interface TargetProcess {
  /** What the process is, like `mount`, `name-server`, `storage-1`, `mfsmaster`. */
  role: string;
  pid: number;
}

export interface RunningTarget {
  /** The folder the workloads run in. */
  dir: string;
  /** Its processes, whose peak memory is reported. */
  processes: TargetProcess[];
  /** Facts worth recording with the figures (versions, options, addresses). */
  info: Record<string, unknown>;
  /** A short account of what went wrong inside the target (daemon log tails), for a failed figure. */
  diagnose(): Promise<string>;
  /** Unmounts, stops every process, removes every temp folder; never throws. */
  stop(): Promise<void>;
}

export interface Target {
  name: string;
  start(): Promise<RunningTarget>;
}
