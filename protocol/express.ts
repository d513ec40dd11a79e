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
      if (!res.headersSent) res.json(result);
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
  const httpErr = err as { type?: string; status?: number; message?: string };
  if (httpErr.type === 'entity.too.large') return new DfsError('PAYLOAD_TOO_LARGE');
  if (httpErr.type === 'entity.parse.failed') return new DfsError('BAD_REQUEST', 'body is not valid JSON');
  if (typeof httpErr.status === 'number' && httpErr.status >= 400 && httpErr.status < 500) {
    return new DfsError('BAD_REQUEST', httpErr.message ?? 'bad request');
  }
  return new DfsError('INTERNAL', err instanceof Error ? err.message : String(err));
}

/** Answers unknown routes with a JSON 404 rather than express's HTML page. */
export function notFound(req: Request, res: Response): void {
  res.status(404).json(new DfsError('NOT_FOUND', `no route ${req.method} ${req.path}`).toJSON());
}

/** A JSON body parser with a size limit. */
export function jsonBody(limit: string): express.RequestHandler {
  return express.json({ limit, type: ['application/json'] });
}
