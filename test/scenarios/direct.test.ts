// The scenario suite (direct.json) through the TypeScript SDK and through the CLI, against one agent and
// runtime. The Python SDK runs the same file with its own driver.
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
});
