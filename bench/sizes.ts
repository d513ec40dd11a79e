/**
 * Workload sizes: full defaults, the `--quick` set, and the flags that override either. Shared by the
 * workload script and the harness, which passes them on as the same flags.
 */

export interface Sizes {
  /** Bytes of the sequentially written and read file. */
  fileBytes: number;
  /** Small files of the tree (cp -r, ls -lR, renames, cat, rm -rf). */
  files: number;
  dirs: number;
  minFileBytes: number;
  maxFileBytes: number;
  renames: number;
  appends: number;
  /** Files and links taken from the tar source (0: all of it). */
  tarFiles: number;
  tarSource: string;
}

export const fullSizes: Sizes = {
  fileBytes: 512 * 1024 * 1024,
  files: 5_000,
  dirs: 50,
  minFileBytes: 1024,
  maxFileBytes: 16 * 1024,
  renames: 1_000,
  appends: 1_000,
  tarFiles: 0,
  tarSource: '/usr/include',
};

export const quickSizes: Sizes = {
  ...fullSizes,
  fileBytes: 64 * 1024 * 1024,
  files: 500,
  dirs: 50,
  renames: 500,
  appends: 500,
  tarFiles: 1_000,
};

/** parseArgs options for every size flag (strings, so "512M" works). */
export const sizeFlags = {
  quick: { type: 'boolean' },
  'file-size': { type: 'string' },
  files: { type: 'string' },
  dirs: { type: 'string' },
  'min-file': { type: 'string' },
  'max-file': { type: 'string' },
  renames: { type: 'string' },
  appends: { type: 'string' },
  'tar-files': { type: 'string' },
  'tar-source': { type: 'string' },
} as const;

/** "512M", "16K", "1G" or plain bytes. */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text}`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.round(Number(m[1]) * unit);
}

function count(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, not ${text}`);
  return n;
}

type SizeValues = { [K in keyof typeof sizeFlags]?: (typeof sizeFlags)[K]['type'] extends 'boolean' ? boolean : string };

export function sizesFrom(values: SizeValues): Sizes {
  const base = values.quick ? quickSizes : fullSizes;
  const s: Sizes = {
    fileBytes: values['file-size'] !== undefined ? parseBytes(values['file-size']) : base.fileBytes,
    files: values.files !== undefined ? count(values.files, 'files') : base.files,
    dirs: values.dirs !== undefined ? count(values.dirs, 'dirs') : base.dirs,
    minFileBytes: values['min-file'] !== undefined ? parseBytes(values['min-file']) : base.minFileBytes,
    maxFileBytes: values['max-file'] !== undefined ? parseBytes(values['max-file']) : base.maxFileBytes,
    renames: values.renames !== undefined ? count(values.renames, 'renames') : base.renames,
    appends: values.appends !== undefined ? count(values.appends, 'appends') : base.appends,
    tarFiles: values['tar-files'] !== undefined ? count(values['tar-files'], 'tar-files') : base.tarFiles,
    tarSource: values['tar-source'] ?? base.tarSource,
  };
  if (s.dirs < 1 || s.files < 1) throw new Error('--files and --dirs must be at least 1');
  if (s.minFileBytes > s.maxFileBytes) throw new Error('--min-file must not exceed --max-file');
  return s;
}

/** The same sizes as flags, for a child workload process. */
export function sizesToFlags(s: Sizes): string[] {
  return [
    '--file-size', String(s.fileBytes),
    '--files', String(s.files),
    '--dirs', String(s.dirs),
    '--min-file', String(s.minFileBytes),
    '--max-file', String(s.maxFileBytes),
    '--renames', String(s.renames),
    '--appends', String(s.appends),
    '--tar-files', String(s.tarFiles),
    '--tar-source', s.tarSource,
  ];
}
