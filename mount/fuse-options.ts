import type { FuseOptions } from 'fuse-native';

/**
 * Per-operation limits. Flush, release and fsync of a large file wait for its upload and commit, so they
 * get far more than fuse-native's 15 s default; remote calls inside have their own, shorter timeouts.
 */
const OPERATION_TIMEOUTS = {
  default: 60_000,
  read: 180_000,
  write: 300_000,
  flush: 900_000,
  release: 900_000,
  fsync: 900_000,
  truncate: 900_000,
  ftruncate: 300_000,
};

/**
 * Most bytes of one read or write request. Past 128 KiB the kernel needs FUSE_MAX_PAGES, which the patched
 * binding's channel adds to libfuse 2's INIT answer; its request buffers (CHAN_MAX_REQUEST in
 * patches/fuse-native+2.2.6.patch) must hold this much, or libfuse lowers max_write to fit them.
 */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/**
 * How dfs mounts through fuse-native (also the benchmarks' passthrough, so it measures the same binding
 * the same way): operation timeouts, libfuse options and the patched binding's attribute timeouts.
 */
export function fuseMountOptions(caching: { entryTimeoutS: number; attrTtlMs: number }): FuseOptions {
  return {
    timeout: OPERATION_TIMEOUTS,
    options: [
      // Writes and reads of up to MAX_REQUEST_BYTES a request rather than 4 KiB or 128 KiB (fuse-native has
      // no flag for these).
      'big_writes',
      `max_write=${MAX_REQUEST_BYTES}`,
      `max_read=${MAX_REQUEST_BYTES}`,
      // (Read-ahead: libfuse can only lower the kernel's 128 KiB, so the mount raises it itself once
      // mounted: mountinfo.ts's setReadAhead.)
      // Our inode numbers, so every name of a hard-linked file shows the same one.
      'use_ino',
      'readdir_ino',
      // libfuse's one timeout for attributes is 0, for a hard-linked file's sake (one kernel inode per name):
      // the patched binding gives directories and files with one name their own timeouts (below), and
      // drops a file's attributes when it is opened or gets a second name. Names are trusted briefly;
      // missing names are not.
      'attr_timeout=0',
      `entry_timeout=${caching.entryTimeoutS}`,
      'negative_timeout=0',
      // Keep the page cache of a file across opens while its size and time do not change.
      'auto_cache',
    ],
    dirAttrTimeout: caching.entryTimeoutS,
    fileAttrTimeout: caching.attrTtlMs / 1000,
  };
}
