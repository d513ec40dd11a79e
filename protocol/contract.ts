import type { z } from 'zod';
import type { TokenScope } from './token.js';

/**
 * One route of a daemon, defined once and shared by the express side (which validates with it) and the
 * got side (which parses replies with it). GET and DELETE carry their input in the query string, the
 * others as a JSON body.
 */
export interface Route<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  input: I;
  output: O;
  /** Token scopes that may call it; null for open routes (health probes). */
  auth: readonly TokenScope[] | null;
  /** Safe to retry after a timeout or a dropped connection. */
  idempotent: boolean;
}

export type Input<R extends Route> = z.input<R['input']>;
export type Output<R extends Route> = z.output<R['output']>;

export function route<I extends z.ZodType, O extends z.ZodType>(r: Route<I, O>): Route<I, O> {
  return r;
}

export function inputInQuery(r: Route): boolean {
  return r.method === 'GET' || r.method === 'DELETE';
}
