import type { NextFunction, Request, Response } from 'express';
import { DfsError } from './errors.js';
import { sendError, type ErrorLogger } from './route-table.js';

/** The express side of a daemon: what its RouteTable does not answer (chunk streams, unknown paths). */

/** Turns any error into `{code, message}` with the catalog's status; a daemon never dies of a request. */
export function errorHandler(log: ErrorLogger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => sendError(res, err, log, req);
}

/** Answers unknown routes with a JSON 404 rather than express's HTML page. */
export function notFound(req: Request, res: Response): void {
  res.status(404).json(new DfsError('NOT_FOUND', `no route ${req.method} ${req.path}`).toJSON());
}
