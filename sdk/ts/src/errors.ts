// The SDK's errors: one class per kind of failure, each carrying the protocol's code, its name, the HTTP
// status and the agent's message (which says what to do). Wire codes map to classes through ONE table,
// ERROR_CLASSES, typed so a new protocol code without a class is a compile error.
import { ERROR_CODES, type ErrorCodeName } from './api.gen';

export interface ErrorDetails {
  /** The protocol's error code (see ERROR_CODES), or 0 for failures on this side of the wire. */
  code?: number;
  /** The HTTP status, when an answer arrived. */
  status?: number;
  /** What the agent attached: validation issues, merge conflicts, label candidates, known names... */
  data?: unknown;
  /** The method that failed, e.g. `sandbox/create`. */
  method?: string;
  cause?: unknown;
}

export class ForkspaceError extends Error {
  readonly code: number;
  readonly codeName: ErrorCodeName | undefined;
  readonly status: number | undefined;
  readonly data: unknown;
  readonly method: string | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = details.code ?? 0;
    this.codeName = (Object.keys(ERROR_CODES) as ErrorCodeName[]).find((k) => ERROR_CODES[k] === this.code);
    this.status = details.status;
    this.data = details.data;
    this.method = details.method;
  }

  /** Worth retrying as is: the agent or the network was briefly unavailable. */
  get transient(): boolean {
    return false;
  }
}

/** The request itself is wrong: malformed, unknown fields, wrong types, values out of range. */
export class InvalidArgumentError extends ForkspaceError {}
/** A snapshot label that names more than one snapshot; `candidates` lists their ids. */
export class AmbiguousReferenceError extends InvalidArgumentError {
  get candidates(): { id: string; sandboxId: string; createdAtMs: number }[] {
    return ((this.data as { candidates?: never[] } | undefined)?.candidates ?? []) as { id: string; sandboxId: string; createdAtMs: number }[];
  }
}
/** The body is larger than the agent takes; send files in chunks. */
export class PayloadTooLargeError extends InvalidArgumentError {}
/** No key, a wrong key, or a revoked one. */
export class AuthenticationError extends ForkspaceError {}
/** The key is valid, the route is the admin's only. */
export class PermissionDeniedError extends ForkspaceError {}
export class NotFoundError extends ForkspaceError {}
export class SandboxNotFoundError extends NotFoundError {}
export class SnapshotNotFoundError extends NotFoundError {}
export class ExecutionNotFoundError extends NotFoundError {}
export class FileNotFoundError extends NotFoundError {}
/** The request conflicts with the state of things: a sandbox in the wrong state, an id in use, a reused
 * idempotency key. */
export class ConflictError extends ForkspaceError {}
export class SandboxStateError extends ConflictError {}
/** A merge with strategy `fail` found conflicts and applied nothing; `conflicts` has both sides. */
export class MergeConflictError extends ConflictError {
  get conflicts(): { path: string; reason: string; detail: string }[] {
    return ((this.data as { conflicts?: never[] } | undefined)?.conflicts ?? []) as { path: string; reason: string; detail: string }[];
  }
}
export class CancelledError extends ForkspaceError {}
/** Unknown environment, not built, or its build failed. */
export class EnvironmentError extends ForkspaceError {}
/** The command does not exist (or is not executable) in the sandbox. */
export class CommandNotFoundError extends ForkspaceError {}
/** CRIU could not dump or restore. */
export class CheckpointError extends ForkspaceError {}
/** This host cannot do it (CRIU missing, say). */
export class UnsupportedError extends ForkspaceError {}
/** The agent or its runtime is briefly unavailable (HTTP 503): retried with backoff. */
export class UnavailableError extends ForkspaceError {
  override get transient(): boolean {
    return true;
  }
}
/** The connection failed or was reset before an answer arrived. */
export class ConnectionError extends ForkspaceError {
  /** Connection refused or reset: retried with backoff (the request carries an idempotency key). */
  override get transient(): boolean {
    return true;
  }
}
/** No answer within requestTimeoutMs (or the wait you asked for). */
export class TimeoutError extends ForkspaceError {}
export class InternalError extends ForkspaceError {}
/** The Tangle flow was asked for (mode 'tangle', or 'auto' with verifiable/decentralized/economic options). */
export class TangleNotConfiguredError extends ForkspaceError {}

type ErrorClass = new (message: string, details?: ErrorDetails) => ForkspaceError;

/** Protocol code → class: the one table. */
export const ERROR_CLASSES: { readonly [N in ErrorCodeName]: ErrorClass } = {
  ParseError: InvalidArgumentError,
  InvalidRequest: InvalidArgumentError,
  MethodNotFound: NotFoundError,
  InvalidParams: InvalidArgumentError,
  InternalError: InternalError,
  RequestCancelled: CancelledError,
  ServerNotInitialized: InternalError,
  PayloadTooLarge: PayloadTooLargeError,
  ShuttingDown: UnavailableError,
  ConnectionClosed: ConnectionError,
  Unauthorized: AuthenticationError,
  Forbidden: PermissionDeniedError,
  IdempotencyKeyReused: ConflictError,
  VerbNotAllowed: NotFoundError,
  UnsupportedMediaType: InvalidArgumentError,
  RuntimeUnavailable: UnavailableError,
  RuntimeFailed: InternalError,
  EnvironmentUnknown: EnvironmentError,
  EnvironmentNotBuilt: EnvironmentError,
  EnvironmentBuildFailed: EnvironmentError,
  ExecNotFound: ExecutionNotFoundError,
  CommandNotFound: CommandNotFoundError,
  ExecIdInUse: ConflictError,
  SandboxNotFound: SandboxNotFoundError,
  SnapshotNotFound: SnapshotNotFoundError,
  SandboxState: SandboxStateError,
  CheckpointFailed: CheckpointError,
  Unsupported: UnsupportedError,
  MergeConflict: MergeConflictError,
  FileNotFound: FileNotFoundError,
  AmbiguousReference: AmbiguousReferenceError,
  KeyNotFound: NotFoundError,
};

/** The error for a protocol error object (`{code, message, data}`), by the table. */
export function errorFromWire(e: { code: number; message: string; data?: unknown }, details: ErrorDetails = {}): ForkspaceError {
  const name = (Object.keys(ERROR_CODES) as ErrorCodeName[]).find((k) => ERROR_CODES[k] === e.code);
  const Class = name ? ERROR_CLASSES[name] : ForkspaceError;
  return new Class(e.message, { ...details, code: e.code, data: e.data });
}

/** The error for an HTTP answer that is not 2xx; bodies that are not the agent's JSON errors still map by status. */
export function errorFromResponse(status: number, body: string, method?: string): ForkspaceError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; data?: unknown } };
    const e = parsed.error;
    if (e && typeof e.code === 'number' && typeof e.message === 'string') return errorFromWire({ code: e.code, message: e.message, data: e.data }, { status, method });
  } catch {
    // not JSON: a proxy's or another server's page
  }
  const text = body.trim().slice(0, 200);
  const message = `HTTP ${status}${method ? ` from ${method}` : ''}${text ? `: ${text}` : ''}`;
  if (status === 503 || status === 502 || status === 504) return new UnavailableError(message, { status, method });
  if (status === 401) return new AuthenticationError(message, { status, method });
  if (status === 403) return new PermissionDeniedError(message, { status, method });
  if (status === 404) return new NotFoundError(message, { status, method });
  if (status === 413) return new PayloadTooLargeError(message, { status, method });
  if (status >= 400 && status < 500) return new InvalidArgumentError(message, { status, method });
  return new InternalError(message, { status, method });
}
