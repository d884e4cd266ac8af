// The SDK's view of the protocol stays the protocol: the generated file is current, every error code maps
// to a typed error through the one table, and the unified client chooses its flow by the seed's rule,
// never falling back from Tangle to direct in silence.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { ErrorCodes, HTTP_STATUS as AGENT_HTTP_STATUS } from '../../agent/src/protocol';
import { ROUTES as AGENT_ROUTES } from '../../agent/src/protocol/routes';
import { operationName } from '../../agent/src/protocol/openapi';
import {
  AmbiguousReferenceError,
  AuthenticationError,
  ERROR_CLASSES,
  ERROR_CODES,
  errorFromWire,
  ForkspaceError,
  HTTP_STATUS,
  MergeConflictError,
  ROUTES,
  SandboxNotFoundError,
  TangleNotConfiguredError,
  UnavailableError,
  UnifiedFaaSClient,
} from '../../sdk/ts/src';
import { errorFromResponse } from '../../sdk/ts/src/errors';
import { generate, GENERATED_FILE } from '../../sdk/ts/scripts/generate';

describe('SDK protocol table and errors', () => {
  it('has a current generated protocol file (else run `npm run generate` in sdk/ts)', () => {
    assert.equal(fs.readFileSync(GENERATED_FILE, 'utf8'), generate(), 'sdk/ts/src/api.gen.ts is stale: run `npm run generate` in sdk/ts');
  });

  it('knows every route and code of the agent', () => {
    for (const r of AGENT_ROUTES.filter((x) => x.target.kind === 'request')) {
      const name = operationName(r) as keyof typeof ROUTES;
      assert.deepEqual({ ...ROUTES[name] }, { verb: r.verb, path: r.path, pathParams: [...r.pathParams], admin: r.admin }, name);
    }
    assert.deepEqual({ ...ERROR_CODES }, { ...ErrorCodes });
    assert.deepEqual({ ...HTTP_STATUS }, { ...AGENT_HTTP_STATUS });
  });

  it('maps every protocol code to its typed error through one table', () => {
    for (const [name, code] of Object.entries(ERROR_CODES)) {
      const e = errorFromWire({ code, message: `m ${name}` }, { status: 400 });
      assert.ok(e instanceof ERROR_CLASSES[name as keyof typeof ERROR_CLASSES], name);
      assert.ok(e instanceof ForkspaceError);
      assert.equal(e.codeName, name);
      assert.equal(e.message, `m ${name}`);
    }
    assert.ok(errorFromWire({ code: ErrorCodes.SandboxNotFound, message: 'x' }) instanceof SandboxNotFoundError);
    const m = errorFromWire({ code: ErrorCodes.MergeConflict, message: 'x', data: { conflicts: [{ path: '/f', reason: 'both changed', detail: '<<<' }] } });
    assert.ok(m instanceof MergeConflictError && m.conflicts[0].path === '/f');
    const a = errorFromWire({ code: ErrorCodes.AmbiguousReference, message: 'x', data: { candidates: [{ id: 'snap-1', sandboxId: 's', createdAtMs: 1 }] } });
    assert.ok(a instanceof AmbiguousReferenceError && a.candidates[0].id === 'snap-1');
    assert.ok(errorFromWire({ code: ErrorCodes.RuntimeUnavailable, message: 'x' }).transient);
    assert.ok(!errorFromWire({ code: ErrorCodes.InvalidParams, message: 'x' }).transient);
  });

  it('maps answers that are not the agent\'s JSON by status (a proxy\'s 502 page is transient)', () => {
    assert.ok(errorFromResponse(502, '<html>bad gateway</html>') instanceof UnavailableError);
    assert.ok(errorFromResponse(401, 'nope') instanceof AuthenticationError);
  });

  it('chooses Tangle by the seed\'s rule and raises TangleNotConfiguredError instead of falling back', async () => {
    const direct = new UnifiedFaaSClient({ mode: 'direct', apiKey: 'fsk_x', platformUrl: 'http://127.0.0.1:9' });
    assert.equal(direct.shouldUseTangle({}), false);
    for (const o of [{ verifiable: true }, { decentralized: true }, { economicIncentives: true }]) {
      assert.equal(direct.shouldUseTangle(o), true);
      await assert.rejects(direct.execute('python train.py', o), (e: Error) => e instanceof TangleNotConfiguredError && /Tangle is not configured/.test(e.message) && new RegExp(Object.keys(o)[0]).test(e.message));
    }
    const tangle = new UnifiedFaaSClient({ mode: 'tangle', apiKey: 'fsk_x' });
    assert.equal(tangle.directClient, undefined);
    await assert.rejects(tangle.execute('python train.py'), (e: Error) => e instanceof TangleNotConfiguredError && /mode is "tangle"/.test(e.message));
    const saved = process.env.FORKSPACE_API_KEY;
    delete process.env.FORKSPACE_API_KEY;
    try {
      const auto = new UnifiedFaaSClient({ mode: 'auto' });
      assert.equal(auto.directClient, undefined);
      await assert.rejects(auto.execute('true'), (e: Error) => e instanceof TangleNotConfiguredError && /no direct client/.test(e.message));
    } finally {
      if (saved !== undefined) process.env.FORKSPACE_API_KEY = saved;
    }
    const plugged = new UnifiedFaaSClient({ mode: 'auto', apiKey: 'fsk_x', tangle: { execute: async (code) => ({ stdout: `tangle ran ${code}` }) as never } });
    assert.equal((await plugged.execute('x', { verifiable: true })).stdout, 'tangle ran x');
  });
});
