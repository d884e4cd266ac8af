// Bundles the three entry points: the VS Code extension, the agent daemon and the CLI. Each is one CJS
// file in dist/ with its dependencies inlined, so the VSIX and the agent need no node_modules.
// With --tests, also the extension's test bundles in out/: the unit tests with `vscode` aliased to a stub,
// and the suite that runs inside a real editor's extension host (mocha comes from node_modules there).
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
const tests = process.argv.includes('--tests');

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: production,
  sourcemap: !production,
  sourcesContent: false,
  logLevel: 'warning',
  legalComments: 'none',
};

// The CLI starts a fresh node for every command: a minified bundle parses in half the time.
const builds = [
  { ...common, entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, target: 'node22', entryPoints: ['agent/src/main.ts'], outfile: 'dist/agent.js' },
  { ...common, target: 'node22', minify: true, keepNames: true, entryPoints: ['agent/src/cli.ts'], outfile: 'dist/cli.js' },
];

const testFiles = (dir, pattern) => fs.readdirSync(dir).filter((f) => pattern.test(f)).map((f) => `${dir}/${f}`);
if (tests) {
  builds.push(
    {
      ...common,
      target: 'node20',
      entryPoints: testFiles('test/unit-extension', /\.test\.ts$/),
      outdir: 'out/unit-extension',
      alias: { vscode: './test/unit-extension/vscode-stub.ts' },
      external: ['mocha'],
    },
    // Node 20 runs the oldest supported VS Code's extension host.
    { ...common, target: 'node20', entryPoints: testFiles('test/e2e/suite', /^(index|.*\.test)\.ts$/), outdir: 'out/e2e/suite', external: ['vscode', 'mocha'] },
  );
}

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
