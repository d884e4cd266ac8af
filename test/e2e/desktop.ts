// The same extension-host suite (test/e2e/suite) in a desktop VS Code (Electron), through
// @vscode/test-electron, for machines that can download one (`npm run test:desktop`; on a headless Linux
// wrap it in `xvfb-run -a`). The machines this project is built on cannot reach
// update.code.visualstudio.com, so CI runs the suite in code-server instead (test/e2e/run.ts).
// Usage: node --import tsx test/e2e/desktop.ts [--version stable|1.100.3]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';
import { ROOT, Stack } from '../integration/stack';
import type { E2eResults } from './suite/index';

const { values } = parseArgs({ options: { version: { type: 'string', default: 'stable' } } });

async function main(): Promise<number> {
  let vscodeExecutablePath: string;
  try {
    vscodeExecutablePath = await downloadAndUnzipVSCode({ version: values.version, cachePath: path.join(os.homedir(), '.cache', 'forkspace-vscode-test') });
  } catch (e) {
    console.error(
      `Cannot download VS Code ${values.version}: ${(e as Error).message}\n` +
        'This machine cannot reach update.code.visualstudio.com; run the suite in code-server instead: npm run test:editor',
    );
    console.log('desktop: 0 passed, 1 failed');
    return 1;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-desktop-'));
  const results = path.join(work, 'results.json');
  const stack = Stack.prepare();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(stack.env)) if (k.startsWith('FORKSPACE_') && k !== 'FORKSPACE_RT_BIN' && v !== undefined) env[k] = v;
  env.FORKSPACE_E2E_RESULTS = results;
  let code = 1;
  try {
    code = await runTests({
      vscodeExecutablePath,
      extensionDevelopmentPath: ROOT,
      extensionTestsPath: path.join(ROOT, 'out', 'e2e', 'suite', 'index.js'),
      launchArgs: [fs.mkdtempSync(path.join(work, 'workspace-')), '--disable-extensions', '--disable-workspace-trust'],
      extensionTestsEnv: env,
    }).catch(() => 1);
  } finally {
    const left = await stack.stop();
    if (left.length) console.log(`the suite left things behind:\n${left.join('\n')}`);
    const r: E2eResults | undefined = fs.existsSync(results) ? JSON.parse(fs.readFileSync(results, 'utf8')) : undefined;
    console.log(`desktop: ${r?.passed ?? 0} passed, ${r?.failed ?? (code ? 1 : 0)} failed`);
    fs.rmSync(work, { recursive: true, force: true });
  }
  return code;
}

main().then((c) => process.exit(c));
