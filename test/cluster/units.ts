import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';

/**
 * The deployment files as systemd reads them: a unit's [Service] settings, an EnvironmentFile, and the
 * expansion of an Exec line. The multi-host harness starts every daemon with its unit's own ExecStart, so
 * a unit that names a flag the CLI lacks, a variable dfs.env does not define, or a path outside what the
 * host is given, fails a test instead of a deployment.
 */

/** The settings of one section of a unit file, each key with every value it was given, in order. */
export function unitSection(text: string, section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  // Lines ending in a backslash continue on the next line.
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`unit line without '=': ${line}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

export function readUnit(file: string): Map<string, string[]> {
  const service = unitSection(readFileSync(file, 'utf8'), 'Service');
  if (!service.get('ExecStart')?.length) throw new Error(`${file}: no ExecStart`);
  return service;
}

/** An EnvironmentFile: KEY=VALUE lines, comments, optional quotes (as systemd and `set -a; . file` agree on). */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`environment file line is not KEY=VALUE: ${line}`);
    let value = m[2]!;
    if (/^"(.*)"$/.test(value) || /^'(.*)'$/.test(value)) value = value.slice(1, -1);
    out.set(m[1]!, value);
  }
  return out;
}

/** Writes an environment map back as a file in the same format. */
export function formatEnvFile(env: ReadonlyMap<string, string>, header: string): string {
  const lines = [header];
  for (const [key, value] of env) lines.push(`${key}=${/\s/.test(value) ? `"${value}"` : value}`);
  return `${lines.join('\n')}\n`;
}

/** Splits an Exec line into words: whitespace separates, double or single quotes group, backslash escapes. */
function splitWords(line: string): { word: string; quoted: boolean }[] {
  const words: { word: string; quoted: boolean }[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let word = '';
    let quoted = false;
    while (i < line.length && !/\s/.test(line[i]!)) {
      const c = line[i]!;
      if (c === '"' || c === "'") {
        quoted = true;
        const end = line.indexOf(c, i + 1);
        if (end < 0) throw new Error(`unterminated quote in: ${line}`);
        word += line.slice(i + 1, end);
        i = end + 1;
      } else if (c === '\\' && i + 1 < line.length) {
        word += line[i + 1];
        i += 2;
      } else {
        word += c;
        i++;
      }
    }
    words.push({ word, quoted });
  }
  return words;
}

export interface PathMap {
  /** What `/usr/bin/node` is here. */
  node: string;
  /** Absolute path prefixes and what they stand for on this machine, longest first wins. */
  prefixes: [from: string, to: string][];
  /** Directories an argument's absolute path may point into (after mapping): anything else is refused. */
  allowed: string[];
}

/**
 * Expands an Exec line as systemd does: `${VAR}` is replaced by the variable's exact value inside one
 * argument; a word that is exactly `$VAR` is replaced by the value split at whitespace (zero or more
 * arguments). A variable the environment does not define is an error here (systemd would quietly use an
 * empty string). Leading `-`, `@`, `+`, `!` prefixes are dropped. Then paths are mapped onto this machine.
 */
export function expandExec(line: string, env: ReadonlyMap<string, string>, paths: PathMap): string[] {
  const body = line.replace(/^[-@+!:]+/, '');
  const lookup = (name: string): string => {
    const value = env.get(name);
    if (value === undefined) throw new Error(`the unit uses \${${name}}, which its environment file does not define`);
    return value;
  };
  const argv: string[] = [];
  for (const { word, quoted } of splitWords(body)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole && !quoted) {
      argv.push(...lookup(whole[1]!).split(/\s+/).filter(Boolean));
      continue;
    }
    argv.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => lookup(name)));
  }
  if (argv.length === 0) throw new Error(`empty Exec line: ${line}`);
  return argv.map((arg, i) => mapPath(arg, i, paths));
}

function mapPath(arg: string, index: number, paths: PathMap): string {
  if (arg === '/usr/bin/node') return paths.node;
  for (const [from, to] of paths.prefixes) {
    if (arg === from) return to;
    if (arg.startsWith(`${from}/`)) return `${to}${arg.slice(from.length)}`;
  }
  // The program itself may be a system tool (/bin/mkdir); its arguments must stay inside the run.
  if (index > 0 && isAbsolute(arg) && !paths.allowed.some((dir) => arg === dir || arg.startsWith(`${dir}/`))) {
    throw new Error(`the unit passes ${arg}, a path outside what this host was given`);
  }
  return arg;
}
