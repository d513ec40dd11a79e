import { Agent as HttpAgent } from 'node:http';
import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import { DfsError, isErrorCode, type ErrorCode } from './errors.js';
import { inputInQuery, type Input, type Output, type Route } from './contract.js';

/**
 * HTTP for every client of a dfs daemon, on undici: keep-alive connection pools and per-phase timeouts.
 * (got, measured against the same server, doubled the round trip of a small call: 1.30 ms against
 * 0.63 ms; the mount's metadata operations are bound by that latency.)
 */

/** Default limits for a remote call. Callers raise them for bulk transfers; nothing waits forever. */
export const DEFAULT_TIMEOUTS = { connectMs: 3_000, requestMs: 15_000 };

/** One connection pool per process, kept alive between calls. */
export const dispatcher: Dispatcher = new Agent({
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 60_000,
  connections: 256,
  connect: { timeout: DEFAULT_TIMEOUTS.connectMs },
});

/** A node:http agent for the one streaming upload that is written piece by piece (chain forwarding). */
export const keepAliveAgent = new HttpAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: 60_000 });

/** Network failures worth another try on an idempotent call (the request may not have arrived). */
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED']);
const RETRY_DELAYS_MS = [100, 400];

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request limit, ms. */
  timeoutMs: number;
  /** Retry network failures (never application errors): only for idempotent calls. */
  retry: boolean;
}

export interface HttpResponse {
  status: number;
  body: Buffer;
}

/**
 * One HTTP exchange: an error status becomes the DfsError its `{code, message}` body names; network
 * failures become UPSTREAM, timeouts ETIMEDOUT.
 */
export async function httpExchange(url: string, req: HttpRequest): Promise<HttpResponse> {
  if (!TRACE) return exchange(url, req);
  const started = performance.now();
  try {
    return await exchange(url, req);
  } finally {
    const line: HttpTraceLine = { trace: 'http', method: req.method, url: url.replace(/\?.*$/, ''), ms: Number((performance.now() - started).toFixed(2)) };
    process.stderr.write(`${JSON.stringify(line)}\n`);
  }
}

/** One line of that trace, as httpExchange writes it and tests read it (the URL without its query). */
export interface HttpTraceLine {
  trace: 'http';
  method: HttpRequest['method'];
  url: string;
  ms: number;
}

/** DFS_TRACE_HTTP=1: one line on stderr per call with its duration (to see where time goes). */
const TRACE = process.env.DFS_TRACE_HTTP === '1';

async function exchange(url: string, req: HttpRequest): Promise<HttpResponse> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await request(url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        dispatcher,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
        signal: AbortSignal.timeout(req.timeoutMs),
      });
      const body = await gather(res.body);
      if (res.statusCode >= 400) throw errorFromBody(body, res.statusCode, `${req.method} ${url}`);
      return { status: res.statusCode, body };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (req.retry && code && RETRYABLE.has(code) && attempt < RETRY_DELAYS_MS.length) {
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
        continue;
      }
      throw toDfsError(err, `${req.method} ${url}`);
    }
  }
}

/**
 * A body in one buffer. Buffer.concat takes memory the allocator has (undici's own arrayBuffer() takes
 * zeroed memory, whose fresh pages cost a 4 MiB chunk twice the copy), and a large body owns its memory,
 * so it can move to another thread (sha256Moving).
 */
async function gather(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let length = 0;
  for await (const piece of body) {
    pieces.push(piece);
    length += piece.length;
  }
  return Buffer.concat(pieces, length);
}

/** Turns whatever a call threw into a DfsError: the server's own, or EIO/ETIMEDOUT/UPSTREAM. */
export function toDfsError(err: unknown, what: string): DfsError {
  if (err instanceof DfsError) return err;
  const name = (err as { name?: string }).name;
  const code = (err as { code?: string }).code;
  if (
    name === 'TimeoutError' ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError ||
    code === 'ETIMEDOUT'
  ) {
    return new DfsError('ETIMEDOUT', `${what}: timed out`);
  }
  if (code) return new DfsError('UPSTREAM', `${what}: ${code}`);
  return new DfsError('EIO', `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/** The DfsError an error reply's `{code, message, details}` body describes (EIO if it describes none). */
export function errorFromBody(body: Buffer | string, status: number, what: string): DfsError {
  const parsed = parseErrorBody(body);
  if (parsed) return new DfsError(parsed.code, parsed.message, parsed.details);
  return new DfsError('EIO', `${what}: HTTP ${status}`);
}

function parseErrorBody(body: Buffer | string): { code: ErrorCode; message: string; details?: Record<string, unknown> } | undefined {
  try {
    const parsed = JSON.parse(body.toString()) as { code?: unknown; message?: unknown; details?: unknown };
    if (isErrorCode(parsed.code)) {
      return {
        code: parsed.code,
        message: typeof parsed.message === 'string' ? parsed.message : parsed.code,
        ...(parsed.details && typeof parsed.details === 'object' ? { details: parsed.details as Record<string, unknown> } : {}),
      };
    }
  } catch {
    // not a JSON error body
  }
  return undefined;
}

export interface CallOptions {
  /** Whole-request limit, ms. */
  timeoutMs?: number;
  /** Path parameters (`:hash`). */
  params?: Record<string, string>;
  /** A token other than the client's own (a storage token for a storage call). */
  token?: string;
  headers?: Record<string, string>;
  /** false: one attempt even on an idempotent route (a health check: a miss is a miss, not three tries). */
  retry?: boolean;
}

function fillPath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:(\w+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`missing path parameter ${key}`);
    return encodeURIComponent(value);
  });
}

function queryString(input: unknown): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries((input ?? {}) as Record<string, unknown>)) {
    if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * A typed client for one daemon: `call(route, input)` validates the input with the route's schema, sends
 * it, and parses the reply with the route's output schema.
 */
export class RouteClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token: () => string | undefined,
    private readonly defaultTimeoutMs = DEFAULT_TIMEOUTS.requestMs,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async call<R extends Route>(r: R, input: Input<R>, options: CallOptions = {}): Promise<Output<R>> {
    const parsedInput = r.input.parse(input);
    const inQuery = inputInQuery(r);
    const url = `${this.baseUrl}${fillPath(r.path, options.params)}${inQuery ? queryString(parsedInput) : ''}`;
    const token = options.token ?? this.token();
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    if (!inQuery) headers['content-type'] = 'application/json';
    const response = await httpExchange(url, {
      method: r.method,
      headers,
      ...(inQuery ? {} : { body: JSON.stringify(parsedInput) }),
      timeoutMs: options.timeoutMs ?? this.defaultTimeoutMs,
      retry: r.idempotent && options.retry !== false,
    });
    let body: unknown;
    try {
      body = JSON.parse(response.body.toString('utf8'));
    } catch {
      throw new DfsError('EIO', `${r.method} ${url}: reply is not JSON`);
    }
    const parsed = r.output.safeParse(body);
    if (!parsed.success) throw new DfsError('EIO', `${r.method} ${url}: malformed reply: ${parsed.error.message}`);
    return parsed.data as Output<R>;
  }
}
