// The runtime's method table and error codes (Rust) agree with the agent's protocol (TypeScript).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { ErrorCodes } from '../../agent/src/protocol';
import { RuntimeNotifications, RuntimeRequests } from '../../agent/src/protocol/runtime';
import { DIST } from './stack';

describe('runtime protocol contract', () => {
  const table = JSON.parse(execFileSync(path.join(DIST, 'forkspace-rt'), ['methods'], { encoding: 'utf8' })) as {
    methods: string[];
    notifications: string[];
    errorCodes: Record<string, number>;
  };

  it('lists the same methods and notifications on both sides', () => {
    assert.deepEqual([...table.methods].sort(), RuntimeRequests.map((r) => r.method).sort());
    assert.deepEqual([...table.notifications].sort(), RuntimeNotifications.map((n) => n.method).sort());
  });

  it('gives every runtime error code the same name and number as the protocol', () => {
    for (const [name, code] of Object.entries(table.errorCodes)) {
      assert.equal((ErrorCodes as Record<string, number>)[name], code, `runtime code ${name}`);
    }
  });
});
