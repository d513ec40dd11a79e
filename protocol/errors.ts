/**
 * The one error catalog. Every error on the wire is `{code, message}` with a code from here; the HTTP
 * status and the POSIX errno a client maps it to are decided once, in this table.
 */
export const errorCatalog = {
  ENOENT: { status: 404, errno: 2, text: 'no such file or directory' },
  EEXIST: { status: 409, errno: 17, text: 'file exists' },
  ENOTEMPTY: { status: 409, errno: 39, text: 'directory not empty' },
  ENOTDIR: { status: 409, errno: 20, text: 'not a directory' },
  EISDIR: { status: 409, errno: 21, text: 'is a directory' },
  EINVAL: { status: 400, errno: 22, text: 'invalid argument' },
  ENAMETOOLONG: { status: 400, errno: 36, text: 'file name too long' },
  ELOOP: { status: 400, errno: 40, text: 'too many levels of symbolic links' },
  EXDEV: { status: 400, errno: 18, text: 'invalid cross-device link' },
  EPERM: { status: 403, errno: 1, text: 'operation not permitted' },
  EACCES: { status: 403, errno: 13, text: 'permission denied' },
  EBADF: { status: 400, errno: 9, text: 'bad file descriptor' },
  EBUSY: { status: 409, errno: 16, text: 'device or resource busy' },
  EMLINK: { status: 409, errno: 31, text: 'too many links' },
  ENODATA: { status: 404, errno: 61, text: 'no such attribute' },
  ERANGE: { status: 400, errno: 34, text: 'result too large' },
  EFBIG: { status: 413, errno: 27, text: 'file too large' },
  ENOSPC: { status: 507, errno: 28, text: 'no space left on device' },
  EIO: { status: 502, errno: 5, text: 'input/output error' },
  EOPNOTSUPP: { status: 400, errno: 95, text: 'operation not supported' },
  E2BIG: { status: 413, errno: 7, text: 'argument list too long' },
  ENOSYS: { status: 501, errno: 38, text: 'function not implemented' },
  /** The request lacks a valid token, or the token is forged or expired. */
  UNAUTHORIZED: { status: 401, errno: 13, text: 'missing or invalid token' },
  /** The token is valid but not for this operation. */
  FORBIDDEN: { status: 403, errno: 13, text: 'token does not allow this operation' },
  /** The request body or query does not match the route's schema. */
  BAD_REQUEST: { status: 400, errno: 22, text: 'bad request' },
  PAYLOAD_TOO_LARGE: { status: 413, errno: 27, text: 'request body too large' },
  NOT_FOUND: { status: 404, errno: 38, text: 'no such route' },
  /** A chunk's bytes do not hash to its name. */
  HASH_MISMATCH: { status: 422, errno: 5, text: 'chunk content does not match its hash' },
  /** A commit names chunks the cluster does not hold with enough copies; upload them and commit again. */
  CHUNKS_MISSING: { status: 409, errno: 5, text: 'chunks are missing' },
  /** An append the name server cannot make itself: the file is not one it keeps whole, or would be too big to. */
  NOT_KEPT: { status: 409, errno: 5, text: 'the file is not kept whole by the name server' },
  /** A change made from one version of a file (bytes appended to it) found the file at another: nothing changed. */
  VERSION_MOVED: { status: 409, errno: 16, text: 'the file changed since the change to it was made from it' },
  /** A chunk was stored again after this delete was issued, so the delete is refused. */
  CHUNK_REFRESHED: { status: 409, errno: 5, text: 'chunk was stored again after the delete was issued' },
  /** No storage server is alive to take or serve data. */
  NO_STORAGE: { status: 503, errno: 5, text: 'no storage server is available' },
  /** A storage server this storage server depends on did not answer. */
  UPSTREAM: { status: 502, errno: 5, text: 'a server did not answer' },
  ETIMEDOUT: { status: 504, errno: 110, text: 'timed out' },
  INTERNAL: { status: 500, errno: 5, text: 'internal error' },
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCatalog, code);
}

/** An error that crosses the wire as `{code, message, details}`. */
export class DfsError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? errorCatalog[code].text);
    this.name = 'DfsError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return errorCatalog[this.code].status;
  }

  get errno(): number {
    return errorCatalog[this.code].errno;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

/** The POSIX errno for any thrown value: a DfsError's own, EIO for anything unknown (never ENOENT). */
export function errnoOf(err: unknown): number {
  return err instanceof DfsError ? err.errno : errorCatalog.EIO.errno;
}

/**
 * Whether a failed call may still have taken effect: no answer came (a timeout, a lost connection) or the
 * server failed (5xx). A refusal (4xx) means nothing was changed.
 */
export function outcomeUnknown(err: unknown): boolean {
  return !(err instanceof DfsError) || err.status >= 500;
}

/** Errors a name check or argument check throws, with the path named in the message. */
export function fsError(code: ErrorCode, path: string): DfsError {
  return new DfsError(code, `${path}: ${errorCatalog[code].text}`, { path });
}
