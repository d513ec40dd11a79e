import { Agent as HttpAgent } from 'node:http';
import got, { HTTPError, RequestError, type Got, type OptionsInit } from 'got';
import { DfsError, isErrorCode, type ErrorCode } from './errors.js';
import { inputInQuery, type Input, type Output, type Route } from './contract.js';

/** One keep-alive agent per process: a TCP connection per request would cost more than small requests. */
export const keepAliveAgent = new HttpAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: 60_000 });

/** Default limits for a remote call. Callers raise them for bulk transfers; nothing waits forever. */
export const DEFAULT_TIMEOUTS = { connectMs: 3_000, requestMs: 15_000 };

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

export const httpClient: Got = got.extend({
  agent: { http: keepAliveAgent },
  throwHttpErrors: true,
  retry: { limit: 0 },
  timeout: { connect: DEFAULT_TIMEOUTS.connectMs, request: DEFAULT_TIMEOUTS.requestMs },
});

/** Retry network failures (never application errors) of idempotent calls only. */
export function retryFor(idempotent: boolean): OptionsInit['retry'] {
  return idempotent
    ? { limit: 2, methods: ['GET', 'PUT', 'POST', 'DELETE'], statusCodes: [], backoffLimit: 500 }
    : { limit: 0 };
}

/** Turns whatever a got call threw into a DfsError carrying the server's code, or EIO/ETIMEDOUT/UPSTREAM. */
export function toDfsError(err: unknown, what: string): DfsError {
  if (err instanceof DfsError) return err;
  if (err instanceof HTTPError) {
    const body = parseErrorBody(err.response.body);
    if (body) return new DfsError(body.code, body.message, body.details);
    return new DfsError('EIO', `${what}: HTTP ${err.response.statusCode}`);
  }
  if (err instanceof RequestError) {
    if (err.code === 'ETIMEDOUT' || err.name === 'TimeoutError') return new DfsError('ETIMEDOUT', `${what}: timed out`);
    return new DfsError('UPSTREAM', `${what}: ${err.code ?? err.message}`);
  }
  return new DfsError('EIO', `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

function parseErrorBody(body: unknown): { code: ErrorCode; message: string; details?: Record<string, unknown> } | undefined {
  try {
    const parsed = (
      typeof body === 'object' && body !== null && !Buffer.isBuffer(body) ? body : JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : String(body))
    ) as { code?: unknown; message?: unknown; details?: unknown };
    if (isErrorCode(parsed.code)) {
      return {
        code: parsed.code,
        message: typeof parsed.message === 'string' ? parsed.message : parsed.code,
        ...(parsed.details && typeof parsed.details === 'object' ? { details: parsed.details as Record<string, unknown> } : {}),
      };
    }
  } catch {
    // not a JSON error body: fall through
  }
  return undefined;
}

function fillPath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:(\w+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`missing path parameter ${key}`);
    return encodeURIComponent(value);
  });
}

function toSearchParams(input: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries((input ?? {}) as Record<string, unknown>)) {
    if (value !== undefined) out[key] = String(value);
  }
  return out;
}

/**
 * A typed client for one daemon: `call(route, input)` validates the input with the route's schema, sends
 * it, and parses the reply with the route's output schema.
 */
export class RouteClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: () => string | undefined,
    private readonly defaultTimeoutMs = DEFAULT_TIMEOUTS.requestMs,
  ) {}

  async call<R extends Route>(r: R, input: Input<R>, options: CallOptions = {}): Promise<Output<R>> {
    const parsedInput = r.input.parse(input);
    const url = new URL(fillPath(r.path, options.params), this.baseUrl).toString();
    const token = options.token ?? this.token();
    const request: OptionsInit = {
      method: r.method,
      retry: retryFor(r.idempotent && options.retry !== false),
      timeout: { connect: DEFAULT_TIMEOUTS.connectMs, request: options.timeoutMs ?? this.defaultTimeoutMs },
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers },
      responseType: 'json',
    };
    if (inputInQuery(r)) request.searchParams = toSearchParams(parsedInput);
    else request.json = parsedInput;
    let body: unknown;
    try {
      const response = (await httpClient(url, request)) as { body: unknown };
      body = response.body;
    } catch (err) {
      throw toDfsError(err, `${r.method} ${url}`);
    }
    const parsed = r.output.safeParse(body);
    if (!parsed.success) throw new DfsError('EIO', `${r.method} ${url}: malformed reply: ${parsed.error.message}`);
    return parsed.data as Output<R>;
  }
}
