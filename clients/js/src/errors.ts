// Rejections carry the SDK's code (and type where the SDK has one).

/** The SDK's error codes, plus the gateway's own. */
export type ErrorCode =
  | 'INVALID_ARGS'
  | 'AUTHENTICATION'
  | 'REQUEST_FAILED'
  | 'CONNECTION_LOST'
  | 'TIMEOUT'
  | 'OVERLOADED'
  | 'CANCELLED';

/**
 * GatewayError is every rejection of an instance's methods. `code` is the
 * SDK's (`INVALID_ARGS`, `AUTHENTICATION`, `REQUEST_FAILED`,
 * `CONNECTION_LOST`), or the gateway's `TIMEOUT` / `OVERLOADED`; `type` is
 * chat.io's error type for `REQUEST_FAILED` (`validation`, `not_found`…).
 * As on the SDK's rejections, `reason` carries the text of an
 * `INVALID_ARGS` and `error` that of an `AUTHENTICATION`.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode | string;
  readonly type?: string;
  /** The HTTP status (0: the gateway could not be reached). */
  readonly status: number;
  /** Seconds to wait before trying again, when the gateway said (Retry-After). */
  readonly retryAfter?: number;
  readonly reason?: string;
  readonly error?: string;

  constructor(code: string, message: string, opts: { type?: string; status?: number; retryAfter?: number } = {}) {
    super(message);
    this.name = 'GatewayError';
    this.code = code;
    this.status = opts.status ?? 0;
    if (opts.type !== undefined) this.type = opts.type;
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
    if (code === 'INVALID_ARGS') this.reason = message;
    if (code === 'AUTHENTICATION') this.error = message;
  }
}

/** errorFrom makes the GatewayError of a gateway's error answer. */
export function errorFrom(status: number, body: unknown, retryAfter: string | null): GatewayError {
  const b = (body && typeof body === 'object' ? body : {}) as { code?: unknown; message?: unknown; type?: unknown };
  const code = typeof b.code === 'string' ? b.code : status === 401 ? 'AUTHENTICATION' : 'REQUEST_FAILED';
  const message = typeof b.message === 'string' ? b.message : `HTTP ${status}`;
  const opts: { type?: string; status: number; retryAfter?: number } = { status };
  if (typeof b.type === 'string') opts.type = b.type;
  const ra = Number(retryAfter);
  if (retryAfter !== null && Number.isFinite(ra) && ra >= 0) opts.retryAfter = ra;
  return new GatewayError(code, message, opts);
}
