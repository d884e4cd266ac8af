// The scenario suite (direct.json) through the TypeScript SDK, the CLI and the Python SDK, against one agent
// and runtime: the Python driver (sdk/python/tests/integration/test_scenarios.py) runs under pytest, given
// this stack through FORKSPACE_TEST_STACK.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../integration/stack';
import { useSdkStack } from '../sdk-ts/sdkStack';
import { cliDriver } from './cliDriver';
import { loadScenarios, runScenario } from './scenarios';
import { sdkDriver } from './sdkDriver';

describe('scenario suite (direct.json) against one real agent', function () {
  this.timeout(180_000);
  const s = useSdkStack();
  const scenarios = loadScenarios();

  describe('through the TypeScript SDK', () => {
    for (const scenario of scenarios) it(scenario.name, () => runScenario(scenario, sdkDriver(s.sdk()), 'ts'));
  });

  describe('through the CLI', () => {
    for (const scenario of scenarios) it(scenario.name, () => runScenario(scenario, cliDriver((args) => s.stack().cli(args)), 'cli'));
  });

  it(`through the Python SDK: all ${scenarios.length} scenarios`, async () => {
    const stack = s.stack();
    const given = { url: s.url(), key: s.apiKey(), adminToken: s.adminToken(), dataDir: stack.config.dataDir, logDir: stack.config.logDir };
    const { code, out } = await pytest(['tests/integration/test_scenarios.py'], { FORKSPACE_TEST_STACK: JSON.stringify(given) });
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`python-sdk: ${scenarios.length} passed, 0 failed`), out);
  });
});

/** The Python SDK's pytest (scripts/test-python-sdk.sh sets up its venv) on some of its tests. */
function pytest(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  const script = path.join(ROOT, 'scripts', 'test-python-sdk.sh');
  if (!fs.existsSync(script)) throw new Error(`${script} is missing`);
  return new Promise((resolve) => {
    const child = spawn('bash', [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}
