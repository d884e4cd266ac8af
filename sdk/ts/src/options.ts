// The SDK's run options and how they become exec params: sizes as '512M', files as a path → content map,
// callbacks for output, an AbortSignal that cancels the run.
import type { ExecRunParams, FileInput, Limits } from './api.gen';
import type { OutputCallbacks } from './execution';
import { parseDuration, parseSize } from './units';

export type ExecutionMode = 'ephemeral' | 'cached' | 'checkpointed' | 'persistent';

export interface RunOptions extends OutputCallbacks {
  /** `python` (= python:3.11), `python:3.9`, `python:3.13`, `busybox`. Default python. */
  environment?: string;
  mode?: ExecutionMode;
  /** checkpointed: the snapshot (id or unique label) to start from; the result has the new checkpointId. */
  checkpointId?: string;
  /** persistent: the running sandbox or instance to run in. */
  sandboxId?: string;
  /** cached: use a stored result (default), refresh it, or off. */
  cache?: 'use' | 'refresh' | 'off';
  /** Memory limit: '512M', '1G', or bytes. */
  memory?: string | number;
  cpus?: number;
  pids?: number;
  /** Disk limit of the sandbox's files (what it may add over its environment): '512M', '20G', or bytes.
   * Default 10G; writes past it fail inside with EDQUOT. */
  disk?: string | number;
  /** Wall-clock limit: ms or '30s'; the result says timedOut. */
  timeout?: number | string;
  env?: Record<string, string>;
  cwd?: string;
  /** Files put in the sandbox first: path → text or bytes. */
  files?: Record<string, string | Uint8Array> | FileInput[];
  stdin?: string;
  /** Files returned with the result. */
  collect?: string[];
  maxOutputBytes?: number;
  execId?: string;
  /** Aborting cancels the execution (its sandbox is killed) and rejects with CancelledError. */
  signal?: AbortSignal;
}

export function limitsOf(o: Pick<RunOptions, 'memory' | 'cpus' | 'pids' | 'disk'>): Limits | undefined {
  const l: Limits = {};
  if (o.memory !== undefined) l.memoryBytes = parseSize(o.memory);
  if (o.cpus !== undefined) l.cpus = o.cpus;
  if (o.pids !== undefined) l.pids = o.pids;
  if (o.disk !== undefined) l.diskBytes = parseSize(o.disk);
  return Object.keys(l).length ? l : undefined;
}

export function filesOf(files: RunOptions['files']): FileInput[] | undefined {
  if (files === undefined) return undefined;
  if (Array.isArray(files)) return files;
  return Object.entries(files).map(([path, c]) =>
    typeof c === 'string' ? { path, content: c } : { path, content: Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('base64'), encoding: 'base64' as const },
  );
}

/** exec/run (and exec/start) params for a command line or argv, or source code. */
export function execParams(what: { command: string | string[] } | { code: string }, o: RunOptions): ExecRunParams {
  const p: ExecRunParams = { ...what };
  const mode = o.mode ?? (o.checkpointId !== undefined ? 'checkpointed' : o.sandboxId !== undefined ? 'persistent' : undefined);
  if (mode) p.mode = mode;
  if (o.environment !== undefined && mode !== 'persistent') p.environment = o.environment;
  if (o.checkpointId !== undefined) p.checkpointId = o.checkpointId;
  if (o.sandboxId !== undefined) p.sandboxId = o.sandboxId;
  if (o.cache !== undefined) p.cache = o.cache;
  const limits = limitsOf(o);
  if (limits) p.limits = limits;
  if (o.timeout !== undefined) p.timeoutMs = parseDuration(o.timeout);
  if (o.env) p.env = o.env;
  if (o.cwd) p.cwd = o.cwd;
  const files = filesOf(o.files);
  if (files) p.files = files;
  if (o.stdin !== undefined) p.stdin = o.stdin;
  if (o.collect) p.collect = o.collect;
  if (o.maxOutputBytes !== undefined) p.maxOutputBytes = o.maxOutputBytes;
  if (o.execId) p.execId = o.execId;
  return p;
}
