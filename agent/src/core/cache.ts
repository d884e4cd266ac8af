// The cached execution mode: a result is stored under a content hash of everything that determines it
// (the environment's content digest, not its name; the command; its environment variables, working
// directory, stdin, files and limits; which files it returns) and returned without running when asked
// again. Results of runs cut short (timeout, OOM, cancelled) are not stored: they depend on the machine.
// Each key has its own results (the key is part of the hash): one key's output is never served to another.
import { createHash } from 'node:crypto';
import { ErrorCodes, ProtocolError, type ExecResult } from '../protocol';
import { RtCacheGet, RtCachePut } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { scopeOf, type Access } from './access';
import type { EnvironmentService } from './environments';
import { newExecId, type ExecObserver, type ExecService, type ParsedExecRun } from './exec';
import { DEFAULT_ENVIRONMENT, invocationFor } from './languages';

export class CacheService {
  constructor(
    private readonly runtime: RuntimeClient,
    private readonly environments: EnvironmentService,
    private readonly exec: ExecService,
  ) {}

  async run(p: ParsedExecRun, observer: ExecObserver, signal: AbortSignal | undefined, access: Access): Promise<ExecResult> {
    const policy = p.cache ?? 'use';
    if (policy === 'off') return { ...(await this.exec.run(p, observer, signal)), cached: false };
    const key = cacheKey(p, await this.digestOf(p.environment ?? DEFAULT_ENVIRONMENT, observer), scopeOf(access));
    if (policy === 'use') {
      const { result } = await this.runtime.request(RtCacheGet, { key });
      if (result) return this.replay(JSON.parse(result) as ExecResult, p, observer);
    }
    const fresh = await this.exec.run(p, observer, signal);
    if (!fresh.timedOut && !fresh.oomKilled) {
      await this.runtime.request(RtCachePut, { key, result: JSON.stringify(fresh) });
    }
    return { ...fresh, cached: false };
  }

  /** A stored result, streamed to the caller as if it ran (same chunks: all stdout, then all stderr). */
  private replay(stored: ExecResult, p: ParsedExecRun, observer: ExecObserver): ExecResult {
    const execId = p.execId ?? newExecId();
    let seq = 0;
    if (stored.stdout) observer.output?.({ execId, stream: 'stdout', data: stored.stdout, seq: ++seq });
    if (stored.stderr) observer.output?.({ execId, stream: 'stderr', data: stored.stderr, seq: ++seq });
    return { ...stored, execId, cached: true };
  }

  /** The environment's content digest, building it first if it never was. */
  private async digestOf(environment: string, observer: ExecObserver): Promise<string> {
    const find = async () => (await this.environments.list()).find((e) => e.name === environment || e.aliases.includes(environment));
    let env = await find();
    if (!env) throw new ProtocolError(ErrorCodes.EnvironmentUnknown, `unknown environment "${environment}"`);
    if (!env.built) {
      await this.environments.build(environment, (m) => observer.progress?.(m, environment));
      env = await find();
    }
    const digest = env?.manifest?.digest;
    if (!digest) {
      throw new ProtocolError(ErrorCodes.EnvironmentNotBuilt, `environment ${environment} has no content digest yet (the runtime computes it at start); retry in a moment`);
    }
    return digest;
  }
}

/** The hash that keys a cached result. Fields are listed explicitly so a new parameter cannot silently be left out. */
export function cacheKey(p: ParsedExecRun, environmentDigest: string, scope: string): string {
  const environment = p.environment ?? DEFAULT_ENVIRONMENT;
  const invocation = invocationFor(environment, p);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const canonical = {
    v: 2,
    /** Whose result it is (core/access.ts scopeOf): results are never shared between keys. */
    scope,
    environmentDigest,
    argv: invocation.argv,
    generated: invocation.files.map((f) => ({ path: f.path, sha256: sha(f.content) })),
    files: (p.files ?? [])
      .map((f) => ({ path: f.path, mode: f.mode ?? null, sha256: sha(Buffer.from(f.content, f.encoding === 'base64' ? 'base64' : 'utf8')) }))
      .sort((a, b) => a.path.localeCompare(b.path)),
    env: Object.entries(p.env ?? {}).sort(([a], [b]) => a.localeCompare(b)),
    cwd: p.cwd ?? null,
    stdin: p.stdin === undefined ? null : sha(Buffer.from(p.stdin, 'utf8')),
    limits: {
      memoryBytes: p.limits?.memoryBytes ?? null,
      cpus: p.limits?.cpus ?? null,
      pids: p.limits?.pids ?? null,
      // Only when given, so keys of results stored before disk limits existed still match.
      ...(p.limits?.diskBytes === undefined ? {} : { diskBytes: p.limits.diskBytes }),
    },
    timeoutMs: p.timeoutMs ?? null,
    collect: p.collect ?? [],
    maxOutputBytes: p.maxOutputBytes ?? null,
  };
  return sha(Buffer.from(JSON.stringify(canonical)));
}
