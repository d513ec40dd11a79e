import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ZodError } from 'zod';
import { DfsError } from './errors.js';
import { inputInQuery, type Output, type Route } from './contract.js';
import { bearer, verifyToken, type TokenClaims } from './token.js';
import type { z } from 'zod';

/** What a handler gets besides its validated input. */
export interface HandlerContext {
  req: Request;
  res: Response;
  claims: TokenClaims | undefined;
}

export type Handler<R extends Route> = (input: z.output<R['input']>, ctx: HandlerContext) => Promise<Output<R>> | Output<R>;

/**
 * Binds a route of a contract to a handler: checks the token, validates the input with the route's own
 * schema, and sends the result as JSON. Errors go to `errorHandler`.
 */
export function serve<R extends Route>(router: Router, secret: string, r: R, handler: Handler<R>): void {
  const method = r.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
  router[method](r.path, async (req: Request, res: Response, next: NextFunction) => {
    try {
      const claims = r.auth ? verifyToken(secret, bearer(req.headers.authorization), r.auth) : undefined;
      const raw = inputInQuery(r) ? req.query : (req.body ?? {});
      const input = r.input.parse(raw) as z.output<R['input']>;
      const result = await handler(input, { req, res, claims });
      // Written directly rather than through res.json(): less work on every call.
      if (!res.headersSent) {
        const body = JSON.stringify(result) ?? '';
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }
    } catch (err) {
      next(err);
    }
  });
}

export interface ErrorLogger {
  error(obj: object, msg: string): void;
}

/** Turns any error into `{code, message}` with the catalog's status; a daemon never dies of a request. */
export function errorHandler(log: ErrorLogger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const error = classify(err);
    if (error.code === 'INTERNAL') log.error({ err, method: req.method, url: req.originalUrl }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(error.status).json(error.toJSON());
  };
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

/** Answers unknown routes with a JSON 404 rather than express's HTML page. */
export function notFound(req: Request, res: Response): void {
  res.status(404).json(new DfsError('NOT_FOUND', `no route ${req.method} ${req.path}`).toJSON());
}

/**
 * A JSON body reader with a size limit, for `application/json` requests (others are left alone: a chunk
 * PUT streams its own body). It does what express.json() did for us with less work per request, which the
 * name server's small calls are made of: a body over `limit` is PAYLOAD_TOO_LARGE, one that is not a JSON
 * object or array is BAD_REQUEST, an empty one is `{}`.
 */
export function jsonBody(limit: number): express.RequestHandler {
  return (req, res, next) => {
    const type = req.headers['content-type'];
    if (!type || !/^application\/json\s*(;|$)/i.test(type)) return next();
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return tooLarge(res, next, limit);
    const pieces: Buffer[] = [];
    let length = 0;
    let failed = false;
    req.on('data', (piece: Buffer) => {
      if (failed) return;
      length += piece.length;
      if (length > limit) {
        failed = true;
        tooLarge(res, next, limit);
        return;
      }
      pieces.push(piece);
    });
    req.on('error', (err) => {
      if (!failed) next(err);
      failed = true;
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(pieces, length).toString('utf8');
      if (text.trim() === '') {
        req.body = {};
        return next();
      }
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed === null || typeof parsed !== 'object') throw new Error('not an object or array');
        req.body = parsed;
      } catch {
        return next(new DfsError('BAD_REQUEST', 'body is not valid JSON'));
      }
      next();
    });
  };
}

function tooLarge(res: Response, next: NextFunction, limit: number): void {
  // The rest of the body stays unread: this connection cannot carry another request.
  res.setHeader('connection', 'close');
  next(new DfsError('PAYLOAD_TOO_LARGE', `a request body is at most ${limit} bytes`));
}
