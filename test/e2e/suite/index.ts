// Entry point that VS Code's extension host calls with the test runner's `extensionTestsPath`: runs
// every *.test.js beside it with mocha and writes the tally to $FORKSPACE_E2E_RESULTS for the runner
// (the browser that hosts the window only learns an exit code). FORKSPACE_E2E_GREP selects tests
// (the smoke run on the oldest VS Code runs those tagged @smoke).
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export interface E2eResults {
  passed: number;
  failed: number;
  skipped: number;
  failures: { title: string; error: string }[];
}

export function run(): Promise<void> {
  // The Base reporter prints nothing: the handlers below print one line per test (the workbench forwards
  // console.log unformatted, so the spec reporter's %s templates would arrive raw).
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 180_000, slow: 5_000, reporter: Mocha.reporters.Base });
  if (process.env.FORKSPACE_E2E_GREP) mocha.grep(process.env.FORKSPACE_E2E_GREP);
  for (const f of fs.readdirSync(__dirname).sort()) if (f.endsWith('.test.js')) mocha.addFile(path.join(__dirname, f));
  const results: E2eResults = { passed: 0, failed: 0, skipped: 0, failures: [] };
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const out = process.env.FORKSPACE_E2E_RESULTS;
      if (out) fs.writeFileSync(out, JSON.stringify(results, null, 2));
      if (failures) reject(new Error(`${failures} test(s) failed`));
      else resolve();
    });
    runner.on('pass', (t) => (results.passed++, console.log(`  ✔ ${t.fullTitle()} (${t.duration} ms)`)));
    runner.on('pending', () => results.skipped++);
    runner.on('fail', (t, err: Error) => {
      results.failed++;
      results.failures.push({ title: t.fullTitle(), error: err.stack ?? String(err) });
      console.log(`  ✘ ${t.fullTitle()}\n${err.stack ?? err}`);
    });
  });
}
