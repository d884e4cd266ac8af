// The real-editor tests: the extension in code-server (real VS Code workbench, server and extension
// host) driven by Debian's Chromium, against the real agent and runtime on a private data dir.
//   1. extension-host suite: mocha inside the extension host of the development tree (test/e2e/suite),
//      running every command; the extension starts its own agent, as for a user.
//   2. UI checks: a fresh server with the packaged VSIX installed (so the VSIX's own agent and runtime
//      start), driven through the DOM: palette, tree labels and states, context menus, screenshots.
// Then the agent and runtime are stopped and nothing of them may remain (mounts, cgroups, processes).
// Usage: node --import tsx test/e2e/run.ts --version 4.139.1 --vsix forkspace.vsix [--smoke]
// Prints "e2e-<vscode>: N passed, N failed" and "ui-<vscode>: N passed, N failed"; artifacts (screenshots,
// logs) go to test-results/e2e/<code-server version>/.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, Stack, freePort } from '../integration/stack';
import { openBrowser, runExtensionTests, workbenchUrl } from './browser';
import { CodeServer, installed } from './codeServer';
import type { E2eResults } from './suite/index';
import { runUiChecks } from './ui';

const { values } = parseArgs({ options: { version: { type: 'string', default: '4.139.1' }, vsix: { type: 'string' }, smoke: { type: 'boolean', default: false } } });
const version = values.version!;
const smoke = values.smoke!;
const label = `${smoke ? 'smoke' : 'full'}-${version}`;
const artifacts = path.join(ROOT, 'test-results', 'e2e', version);
const testsPath = path.join(ROOT, 'out', 'e2e', 'suite', 'index.js');

function say(line: string): void {
  console.log(line);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    say(`(skipped: the editor tests start the real runtime, which needs root)\ne2e-${label}: 0 passed, 0 failed, 1 skipped`);
    return 0;
  }
  const install = installed(version);
  if ('missing' in install) throw new Error(install.missing);
  if (!fs.existsSync(testsPath)) throw new Error(`${testsPath} is missing: run node esbuild.mjs --tests`);
  const vsix = values.vsix && path.resolve(values.vsix);
  if (!vsix || !fs.existsSync(vsix)) throw new Error(`--vsix must name the packaged extension (npx @vscode/vsce package); got ${values.vsix}`);
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-e2e-'));
  const folder = path.join(work, 'workspace');
  fs.mkdirSync(folder);
  const results = path.join(work, 'results.json');
  const server = new CodeServer(install, path.join(work, 'cs'));
  // Each phase gets a private stack: data dir, sockets, logs, cgroup parent. The extension finds and
  // starts the agent from these variables; the runtime binary is found next to whichever agent bundle
  // runs (the development tree's, then the VSIX's), so it is not pinned.
  const envOf = async (stack: Stack): Promise<NodeJS.ProcessEnv> => {
    const wsPort = String(await freePort()); // the agent's WebSocket listener, for the forkspace.agent.url test
    const env: NodeJS.ProcessEnv = { ...stack.env, FORKSPACE_WS_PORT: wsPort, FORKSPACE_E2E_RESULTS: results, FORKSPACE_E2E_GREP: smoke ? '@smoke' : '' };
    delete env.FORKSPACE_RT_BIN;
    return env;
  };
  let failed = 0;
  try {
  await server.installExtension(vsix);

  // 1. The extension-host suite, on the development tree.
  failed += await phase('host', async (stack) => {
    await server.start(await envOf(stack));
    try {
      const a = await openBrowser(work);
      const exitCode = await runExtensionTests(a.page, workbenchUrl(server.url, folder, { devPath: ROOT, testsPath }), 15 * 60_000, (l) => say(`  [ext-host] ${l}`)).finally(() => a.close());
      const r: E2eResults = fs.existsSync(results)
        ? JSON.parse(fs.readFileSync(results, 'utf8'))
        : { passed: 0, failed: 1, skipped: 0, failures: [{ title: 'the suite', error: `did not report (exit ${exitCode})` }] };
      for (const f of r.failures) say(`  FAILED ${f.title}\n${f.error.replace(/^/gm, '    ')}`);
      if (exitCode !== 0 && r.failed === 0) r.failed = 1;
      say(`e2e-${label}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`);
      return r.failed;
    } finally {
      await server.stop();
      collectLogs(path.join(work, 'cs'), stack, path.join(artifacts, 'logs', 'host'));
    }
  });

  // 2. UI checks on the packaged extension, whose own agent and runtime start.
  failed += await phase('ui', async (stack) => {
    await server.start(await envOf(stack));
    try {
      const b = await openBrowser(work);
      const ui = await runUiChecks({ page: b.page, serverUrl: server.url, folder, stack, artifacts, smoke, log: say }).finally(() => b.close());
      for (const f of ui.failures) say(`  FAILED ${f.title}\n${f.error.replace(/^/gm, '    ')}`);
      say(`ui-${label}: ${ui.passed} passed, ${ui.failed} failed`);
      return ui.failed;
    } finally {
      await server.stop();
      collectLogs(path.join(work, 'cs'), stack, path.join(artifacts, 'logs', 'ui'));
    }
  });
  } finally {
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  say(`artifacts: ${path.relative(process.cwd(), artifacts)}`);
  return failed ? 1 : 0;
}

/** Runs `body` against a fresh private stack, then stops whatever agent and runtime the extension
 * started there; anything of theirs left on the host (mount, cgroup, process, loop device) is a failure. */
async function phase(name: string, body: (stack: Stack) => Promise<number>): Promise<number> {
  const stack = Stack.prepare();
  let failed = 0;
  try {
    failed += await body(stack);
  } catch (e) {
    say(`  the ${name} phase failed to run: ${(e as Error).stack ?? e}`);
    failed++;
  } finally {
    const left = await stack.stop();
    if (left.length) {
      say(`  the ${name} phase left things behind:\n${left.map((l) => `    ${l}`).join('\n')}`);
      failed++;
    }
  }
  return failed;
}

/** Logs worth reading when something failed: code-server's, the extension host's, the agent's and runtime's. */
function collectLogs(serverDir: string, stack: Stack, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  const copy = (from: string, name: string) => fs.existsSync(from) && fs.cpSync(from, path.join(to, name), { recursive: true });
  copy(path.join(serverDir, 'cs.log'), 'code-server.log');
  copy(path.join(serverDir, 'ud', 'logs'), 'vscode');
  copy(stack.config.logDir, 'forkspace');
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`editor tests failed to run: ${(e as Error).stack ?? e}`);
    console.log(`e2e-${label}: 0 passed, 1 failed`);
    process.exit(1);
  },
);
