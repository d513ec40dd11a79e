import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Express } from 'express';
import { ZodError, type z } from 'zod';
import { DfsError } from './errors.js';
import { inputInQuery, type Output, type Route } from './contract.js';
import { bearer, verifyToken, type TokenClaims } from './token.js';

/** What a handler gets besides its validated input. */
export interface HandlerContext {
  claims: TokenClaims | undefined;
  /** The `:name` parts of the route's path. */
  params: Record<string, string>;
}

export type Handler<R extends Route> = (input: z.output<R['input']>, ctx: HandlerContext) => Promise<Output<R>> | Output<R>;

export interface ErrorLogger {
  error(obj: object, msg: string): void;
}

interface Entry {
  route: Route;
  handler: Handler<Route>;
  bodyLimit: number;
  /** The path's parts, `undefined` where a `:name` part takes any value. */
  parts?: (string | undefined)[];
  names?: string[];
}

/**
 * A daemon's JSON routes (its contract), answered without express's router: every call checks its token,
 * validates its input with the route's schema and answers JSON, or an error as `{code, message}` with the
 * catalog's status. Express's per-request work (router layers, request and response decorations) cost
 * more than the name server's own work on a stat: a trivial JSON GET took 7,600 requests/s through express
 * and 16,300 through this, 8 clients on this machine. Requests for other paths go to the daemon's express
 * app (chunk streams, 404s).
 */
export class RouteTable {
  private readonly exact = new Map<string, Entry>();
  private readonly withParams: Entry[] = [];

  constructor(
    private readonly secret: string,
    private readonly log: ErrorLogger,
    /** Largest JSON body a route takes unless it says otherwise. */
    private readonly bodyLimit: number,
  ) {}

  serve<R extends Route>(r: R, handler: Handler<R>, options: { bodyLimit?: number } = {}): void {
    const entry: Entry = { route: r, handler: handler as Handler<Route>, bodyLimit: options.bodyLimit ?? this.bodyLimit };
    if (!r.path.includes('/:')) {
      this.exact.set(`${r.method} ${r.path}`, entry);
      return;
    }
    const segments = r.path.split('/');
    entry.parts = segments.map((s) => (s.startsWith(':') ? undefined : s));
    entry.names = segments.filter((s) => s.startsWith(':')).map((s) => s.slice(1));
    this.withParams.push(entry);
  }

  /** Answers a request for one of its routes and returns true, or returns false and leaves it alone. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    let params: Record<string, string> = {};
    let entry = this.exact.get(`${req.method} ${path}`);
    if (!entry) {
      const segments = path.split('/');
      for (const candidate of this.withParams) {
        if (candidate.route.method !== req.method) continue;
        const found = matchParams(candidate, segments);
        if (found) {
          entry = candidate;
          params = found;
          break;
        }
      }
    }
    if (!entry) return false;
    void this.answer(entry, req, res, q < 0 ? '' : url.slice(q + 1), params);
    return true;
  }

  private async answer(entry: Entry, req: IncomingMessage, res: ServerResponse, query: string, params: Record<string, string>): Promise<void> {
    try {
      const r = entry.route;
      // The body first: a malformed request is BAD_REQUEST whoever sends it.
      const raw = inputInQuery(r) ? parseQuery(query) : await readJsonBody(req, res, entry.bodyLimit);
      const claims = r.auth ? verifyToken(this.secret, bearer(req.headers.authorization), r.auth) : undefined;
      const input = r.input.parse(raw) as z.output<Route['input']>;
      const result = await entry.handler(input, { claims, params });
      sendJson(res, 200, result);
    } catch (err) {
      sendError(res, err, this.log, req);
    }
  }
}

function matchParams(entry: Entry, segments: string[]): Record<string, string> | undefined {
  const parts = entry.parts!;
  if (parts.length !== segments.length) return undefined;
  const values: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === undefined) {
      if (!segments[i]) return undefined;
      try {
        values.push(decodeURIComponent(segments[i]!));
      } catch {
        return undefined;
      }
    } else if (part !== segments[i]) return undefined;
  }
  return Object.fromEntries(entry.names!.map((name, i) => [name, values[i]!]));
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent) return;
  const body = JSON.stringify(value) ?? '';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Any error as `{code, message}` with its status; a daemon never dies of a request. */
export function sendError(res: ServerResponse, err: unknown, log: ErrorLogger, req: IncomingMessage): void {
  const error = classify(err);
  if (error.code === 'INTERNAL') log.error({ err, method: req.method, url: req.url }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, error.status, error.toJSON());
}

function classify(err: unknown): DfsError {
  if (err instanceof DfsError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    return new DfsError('BAD_REQUEST', `${where}${first?.message ?? 'invalid input'}`);
  }
  const httpErr = err as { status?: number; message?: string };
  if (typeof httpErr.status === 'number' && httpErr.status >= 400 && httpErr.status < 500) {
    return new DfsError('BAD_REQUEST', httpErr.message ?? 'bad request');
  }
  return new DfsError('INTERNAL', err instanceof Error ? err.message : String(err));
}

/**
 * A JSON request body, at most `limit` bytes: over it is PAYLOAD_TOO_LARGE, one that is not a JSON object
 * or array is BAD_REQUEST, an empty one (or one that is not `application/json`) is `{}`.
 */
function readJsonBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (!type || !/^application\/json\s*(;|$)/i.test(type)) return Promise.resolve({});
  const tooLarge = (): DfsError => {
    // The rest of the body stays unread: this connection cannot carry another request.
    res.setHeader('connection', 'close');
    return new DfsError('PAYLOAD_TOO_LARGE', `a request body is at most ${limit} bytes`);
  };
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    let length = 0;
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    req.on('data', (piece: Buffer) => {
      if (settled) return;
      length += piece.length;
      if (length > limit) fail(tooLarge());
      else pieces.push(piece);
    });
    req.on('error', fail);
    req.on('end', () => {
      if (settled) return;
      settled = true;
      const text = Buffer.concat(pieces, length).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed === null || typeof parsed !== 'object') throw new Error('not an object or array');
        resolve(parsed);
      } catch {
        reject(new DfsError('BAD_REQUEST', 'body is not valid JSON'));
      }
    });
  });
}

/** Listens on `host:port`: contract routes through `routes`, anything else through `app`. */
export async function listen(routes: RouteTable, app: Express, port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (!routes.handle(req, res)) app(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    // Rejects on a failure to listen. The handler stays: a later error event with no handler would be
    // thrown, and end the daemon.
    server.on('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.keepAliveTimeout = 65_000;
  return server;
}
