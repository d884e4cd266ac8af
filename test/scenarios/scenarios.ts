// Runs test/scenarios/direct.json through a driver (one per client: TS SDK, CLI, ...): resolves `$name`
// references and `{run}` tokens, calls the driver's op, checks `expect`, binds `as`. The format is in
// README.md beside this file.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Step {
  op: Op;
  as?: string;
  expect?: Expect;
  [arg: string]: unknown;
}

export interface Expect {
  exitCode?: number;
  stdout?: string;
  stderr?: string;
  cached?: boolean;
  checkpoint?: boolean;
  content?: string;
  applied?: string[];
  changes?: { path: string; a: string; b: string }[];
  error?: { name: string; message: string };
}

export interface Scenario {
  name: string;
  steps: Step[];
}

export const OPS = ['run', 'sandbox', 'exec', 'snapshot', 'restore', 'branch', 'diff', 'merge', 'write', 'read', 'destroy', 'deleteSnapshot'] as const;
export type Op = (typeof OPS)[number];

/** What an op produced; a driver fills what its op has. */
export interface Outcome {
  exitCode?: number;
  stdout?: string;
  stderr?: string;
  cached?: boolean;
  checkpointId?: string;
  content?: string;
  applied?: string[];
  changes?: { path: string; a: string; b: string }[];
  /** What `as` binds: an id, or the ids of a branch. */
  bind?: string | string[];
}

/** A failed op: `name` is the protocol error name when the client shows it (the CLI does not). */
export class StepError extends Error {
  constructor(
    message: string,
    readonly errorName?: string,
  ) {
    super(message);
  }
}

export type Driver = { [O in Op]: (args: Record<string, unknown>) => Promise<Outcome> };

export function loadScenarios(): Scenario[] {
  const file = JSON.parse(fs.readFileSync(path.join(__dirname, 'direct.json'), 'utf8')) as { format: string; scenarios: Scenario[] };
  assert.equal(file.format, 'forkspace-scenarios/1');
  for (const s of file.scenarios) for (const step of s.steps) assert.ok((OPS as readonly string[]).includes(step.op), `${s.name}: unknown op ${step.op}`);
  return file.scenarios;
}

/** Runs one scenario's steps through `driver`; throws on the first step that does not meet its expect. */
export async function runScenario(scenario: Scenario, driver: Driver, token: string): Promise<void> {
  const bound = new Map<string, string | string[]>();
  const resolve = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const s = v.replaceAll('{run}', token);
      const m = /^\$([A-Za-z][\w-]*)(?:\.(\d+))?$/.exec(s);
      if (!m) return s;
      const b = bound.get(m[1]);
      assert.ok(b !== undefined, `${scenario.name}: $${m[1]} is not bound by an earlier step`);
      if (m[2] === undefined) return b;
      assert.ok(Array.isArray(b), `$${m[1]}.${m[2]}: $${m[1]} is not a list`);
      return b[Number(m[2])];
    }
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
    return v;
  };
  const made: string[] = [];
  try {
    await runSteps(scenario, driver, resolve, bound, made);
  } finally {
    // A scenario that failed half-way still leaves nothing running (destroying twice is harmless).
    for (const id of made) await driver.destroy({ sandbox: id }).catch(() => {});
  }
}

async function runSteps(
  scenario: Scenario,
  driver: Driver,
  resolve: (v: unknown) => unknown,
  bound: Map<string, string | string[]>,
  made: string[],
): Promise<void> {
  for (const [i, step] of scenario.steps.entries()) {
    const { op, as, expect, ...rawArgs } = step;
    const args = resolve(rawArgs) as Record<string, unknown>;
    const want = resolve(expect ?? {}) as Expect;
    const where = `${scenario.name}, step ${i + 1} (${op} ${JSON.stringify(args)})`;
    let out: Outcome;
    try {
      out = await driver[op](args);
    } catch (e) {
      if (!want.error) throw new Error(`${where} failed: ${(e as Error).message}`, { cause: e });
      assert.ok(e instanceof StepError, `${where}: ${(e as Error).stack}`);
      if (e.errorName !== undefined) assert.equal(e.errorName, want.error.name, `${where}: error ${e.errorName}: ${e.message}`);
      assert.ok(e.message.includes(want.error.message), `${where}: the message "${e.message}" lacks "${want.error.message}"`);
      continue;
    }
    assert.ok(!want.error, `${where}: succeeded, but should fail with ${want.error?.name}`);
    for (const k of ['exitCode', 'stdout', 'stderr', 'content'] as const) if (want[k] !== undefined) assert.equal(out[k], want[k], `${where}: ${k}`);
    if (want.cached !== undefined) assert.equal(out.cached ?? false, want.cached, `${where}: cached`);
    if (want.checkpoint) assert.match(out.checkpointId ?? '', /^snap-[0-9a-f]+$/, `${where}: no new checkpoint`);
    if (want.applied) assert.deepEqual([...(out.applied ?? [])].sort(), [...want.applied].sort(), `${where}: applied`);
    if (want.changes) {
      const key = (c: { path: string }) => c.path;
      assert.deepEqual(
        (out.changes ?? []).map(({ path: p, a, b }) => ({ path: p, a, b })).sort((x, y) => key(x).localeCompare(key(y))),
        [...want.changes].sort((x, y) => key(x).localeCompare(key(y))),
        `${where}: changes`,
      );
    }
    if (op === 'sandbox' || op === 'restore' || op === 'branch') made.push(...[out.bind ?? []].flat());
    if (as) {
      const b = out.bind ?? out.checkpointId;
      assert.ok(b !== undefined, `${where}: nothing to bind as ${as}`);
      bound.set(as, b);
    }
  }
}
