// Error codes, in documented ranges, each with when it is sent. The runtime (agent-native/src/codes.rs)
// uses the same numbers for the codes it shares; a test compares the two tables.
//   -32768..-32000  JSON-RPC 2.0 reserved; -32800..-32899 protocol-level codes (as LSP does);
//   -33000..-33999  Forkspace domain codes.

export const ErrorCodes = {
  /** Invalid JSON was received. */
  ParseError: -32700,
  /** The message is not a valid JSON-RPC request object. */
  InvalidRequest: -32600,
  /** No such method; the protocol's method table lists them all. */
  MethodNotFound: -32601,
  /** Params have wrong types, unknown fields or values out of range; the message names the field. */
  InvalidParams: -32602,
  /** A bug or unexpected condition; the agent's log has details. */
  InternalError: -32603,
  /** The request was cancelled with `$/cancelRequest` before it finished. */
  RequestCancelled: -32800,
  /** A request other than `initialize` arrived before `initialize`. */
  ServerNotInitialized: -32801,
  /** The message exceeds the connection's size limit. */
  PayloadTooLarge: -32802,
  /** The server is shutting down (or this connection sent `shutdown`) and takes no new work. */
  ShuttingDown: -32803,
  /** The connection closed before the response arrived; the request may or may not have run. */
  ConnectionClosed: -32804,
  /** Direct HTTP API: no `Authorization: Bearer <key>`, or a key that is unknown or revoked (WebSockets of a
   * revoked key are closed with code 4401, KEY_REVOKED_CLOSE). */
  Unauthorized: -32805,
  /** Direct HTTP API: the key is valid but the route is the admin's (the agent's own token) only. */
  Forbidden: -32806,
  /** Direct HTTP API: this `Idempotency-Key` was used before for a different request. */
  IdempotencyKeyReused: -32807,
  /** Direct HTTP API: the path exists, the HTTP verb does not; `data.allow` lists the verbs it takes. */
  VerbNotAllowed: -32808,
  /** Direct HTTP API: a body that is not `application/json`. */
  UnsupportedMediaType: -32809,
  /** forkspace-rt is not running and could not be started; the message says why and what to do. */
  RuntimeUnavailable: -33000,
  /** A kernel step failed in the runtime; `data` names the step, path and errno. */
  RuntimeFailed: -33001,
  /** Unknown environment name; `data.known` lists the known ones. */
  EnvironmentUnknown: -33002,
  /** The environment exists but is not built; the agent builds it on first use. */
  EnvironmentNotBuilt: -33003,
  /** Building an environment failed; the message carries the build tool's last output. */
  EnvironmentBuildFailed: -33004,
  /** No execution with that id (or it ended too long ago to be kept); the runtime also sends it for
   * unknown terminal, port-forward and hold ids. */
  ExecNotFound: -33006,
  /** The command does not exist (or is not executable) inside the sandbox. */
  CommandNotFound: -33007,
  /** The execId is already used by a running execution. */
  ExecIdInUse: -33008,
  /** No sandbox with that id (for an API key: none of its own; another key's is answered the same). */
  SandboxNotFound: -33005,
  /** No snapshot with that id or label (for an API key: none of its own; another key's is answered the same). */
  SnapshotNotFound: -33009,
  /** The sandbox is in a state the request cannot act on; the message says which state it needs. */
  SandboxState: -33010,
  /** CRIU failed to dump or restore; the message carries its log's reasons. */
  CheckpointFailed: -33011,
  /** This host cannot provide the feature (CRIU missing, say); the message says what to install. */
  Unsupported: -33012,
  /** A merge with strategy `fail` found conflicts and applied nothing; `data` lists them with both sides. */
  MergeConflict: -33013,
  /** No file or directory at that path inside the sandbox or snapshot. */
  FileNotFound: -33014,
  /** A snapshot label names more than one snapshot; `data.candidates` lists them: give an id. */
  AmbiguousReference: -33015,
  /** No API key with that id (`forkspace keys list` shows them). */
  KeyNotFound: -33016,
} as const;

export type ErrorCodeName = keyof typeof ErrorCodes;
export type ErrorCode = (typeof ErrorCodes)[ErrorCodeName];

/** The HTTP status of each code in the Direct HTTP API: the one table (the SDKs map codes, not statuses). */
export const HTTP_STATUS: Record<ErrorCodeName, number> = {
  ParseError: 400,
  InvalidRequest: 400,
  MethodNotFound: 404,
  InvalidParams: 400,
  InternalError: 500,
  RequestCancelled: 409,
  ServerNotInitialized: 400,
  PayloadTooLarge: 413,
  ShuttingDown: 503,
  ConnectionClosed: 502,
  Unauthorized: 401,
  Forbidden: 403,
  IdempotencyKeyReused: 422,
  VerbNotAllowed: 405,
  UnsupportedMediaType: 415,
  RuntimeUnavailable: 503,
  RuntimeFailed: 500,
  EnvironmentUnknown: 400,
  EnvironmentNotBuilt: 409,
  EnvironmentBuildFailed: 500,
  ExecNotFound: 404,
  CommandNotFound: 422,
  ExecIdInUse: 409,
  SandboxNotFound: 404,
  SnapshotNotFound: 404,
  SandboxState: 409,
  CheckpointFailed: 500,
  Unsupported: 501,
  MergeConflict: 409,
  FileNotFound: 404,
  AmbiguousReference: 400,
  KeyNotFound: 404,
};

export function httpStatusOf(code: number): number {
  const name = errorCodeName(code);
  return name ? HTTP_STATUS[name] : 500;
}

export function errorCodeName(code: number): ErrorCodeName | undefined {
  return (Object.keys(ErrorCodes) as ErrorCodeName[]).find((k) => ErrorCodes[k] === code);
}

/** An error with a protocol code; thrown by handlers and raised to callers. */
export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = errorCodeName(code) ?? 'ProtocolError';
  }

  toJSON(): { code: number; message: string; data?: unknown } {
    return this.data === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, data: this.data };
  }
}
