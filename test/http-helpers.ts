import { request } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDaemon } from '../common/daemon-process.js';
import type { ExecutionContext } from 'ava';
import type { CliResult } from './harness.js';

/**
 * Raw HTTP for tests that speak to daemons the way an attacker or a broken client would: no schema
 * checks on the way out, paths sent exactly as given (no dot-segment normalisation, unlike fetch/got).
 */

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface RawRequest {
  method?: string;
  /** Sent verbatim as the request target. */
  path: string;
  /** A query object, appended to `path`. */
  query?: Record<string, string>;
  token?: string | undefined;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string or buffer as is. */
  body?: unknown;
  contentType?: string;
}

export function rawRequest(baseUrl: string, options: RawRequest): Promise<RawResponse> {
  const url = new URL(baseUrl);
  let path = options.path;
  if (options.query) path += `?${new URLSearchParams(options.query).toString()}`;
  let body: Buffer | undefined;
  let contentType = options.contentType;
  if (Buffer.isBuffer(options.body)) body = options.body;
  else if (typeof options.body === 'string') body = Buffer.from(options.body);
  else if (options.body !== undefined) {
    body = Buffer.from(JSON.stringify(options.body));
    contentType ??= 'application/json';
  }
  const headers: Record<string, string> = {
    ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}),
    ...(contentType ? { 'content-type': contentType } : {}),
    ...(body && !options.headers?.['transfer-encoding'] ? { 'content-length': String(body.length) } : {}),
    connection: 'close',
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: options.method ?? 'GET', path, headers, timeout: 20_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('error', reject);
      res.on('end', () => {
        const data = Buffer.concat(parts);
        let json: unknown;
        try {
          json = JSON.parse(data.toString('utf8'));
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${path}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A request to a route as the JSON API defines it: query for GET/DELETE, JSON body otherwise. */
export function apiCall(baseUrl: string, method: string, path: string, input: Record<string, unknown>, token: string | undefined): Promise<RawResponse> {
  if (method === 'GET' || method === 'DELETE') {
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(input)) query[k] = String(v);
    return rawRequest(baseUrl, { method, path, query, token });
  }
  return rawRequest(baseUrl, { method, path, body: input, token });
}

/** Asserts an error reply: the HTTP status, a JSON body `{code, message}` with this code and a message. */
export function assertError(t: ExecutionContext, res: RawResponse, status: number, code: string, what: string): void {
  const body = res.json as { code?: unknown; message?: unknown } | undefined;
  t.is(res.status, status, `${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  t.true(String(res.headers['content-type']).startsWith('application/json'), `${what}: content-type ${String(res.headers['content-type'])}`);
  t.is(body?.code, code, `${what}: code ${String(body?.code)} (${String(body?.message)})`);
  t.true(typeof body?.message === 'string' && body.message.length > 0, `${what}: message ${String(body?.message)}`);
}

/** Asserts a CLI failure: non-zero exit (1 unless told), one line on stderr starting `dfs: `, matching `pattern`. */
export function assertCliError(t: ExecutionContext, result: CliResult, pattern: RegExp, what: string, exitCode = 1): void {
  t.is(result.code, exitCode, `${what}: exit ${result.code}; stderr ${result.stderr}; stdout ${result.stdout}`);
  const lines = result.stderr.split('\n').filter((line) => line.length > 0);
  t.is(lines.length, 1, `${what}: stderr has ${lines.length} lines: ${result.stderr}`);
  t.true(lines[0]?.startsWith('dfs: '), `${what}: stderr ${result.stderr}`);
  t.regex(lines[0] ?? '', pattern, what);
}

/** Asserts a CLI success, showing its output when it failed. */
export function assertCliOk(t: ExecutionContext, result: CliResult, what: string): void {
  t.is(result.code, 0, `${what}: exit ${result.code}; stderr ${result.stderr}; stdout ${result.stdout}`);
}

/** Every file under `dir` (recursively) as `relative/path -> size`, sorted; directories as `relative/path/`. */
export async function tree(dir: string, options: { sizes?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(join(dir, rel));
    } catch {
      return;
    }
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const st = await stat(join(dir, relPath)).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) {
        out.push(`${relPath}/`);
        await walk(relPath);
      } else {
        out.push(options.sizes === false ? relPath : `${relPath} -> ${st.size}`);
      }
    }
  };
  await walk('');
  return out.sort();
}

/** A request whose answer a delaying proxy holds back. */
export interface Delay {
  method: string;
  path: string;
  ms: number;
}

/**
 * An HTTP proxy in front of a daemon (`target`) that holds back its answers to the requests `delays` names;
 * the others pass at once. It runs as a process of its own: a test process blocks while it spawns a command
 * whose folder is in a mount (the child's chdir waits on the mount), so a mount must never depend on it.
 * Stopped when the test ends.
 */
export async function delayingProxy(t: ExecutionContext, target: string, delays: Delay[]): Promise<string> {
  const proxy = await spawnDaemon({ script: PROXY_SCRIPT, args: [target, JSON.stringify(delays)] });
  t.teardown(() => proxy.stop());
  return proxy.url;
}

const PROXY_SCRIPT = fileURLToPath(new URL('./delaying-proxy.js', import.meta.url));
