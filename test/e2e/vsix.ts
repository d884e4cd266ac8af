// Packages the extension with vsce (its `vscode:prepublish` makes the production bundles first) and checks
// what the VSIX holds: the manifest, the bundles, media and the runtime binary, nothing else (no sources,
// no source maps, no node_modules). README images are relative links to media/screenshots, which the VSIX
// ships, so they resolve in the installed extension as in the repository. Usage: node --import tsx test/e2e/vsix.ts OUT.vsix
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../integration/stack';

const ALLOWED = [
  /^extension\.vsixmanifest$/,
  /^\[Content_Types\]\.xml$/,
  /^extension\/(package\.json|package\.nls\.json|readme\.md|LICENSE\.txt|changelog\.md)$/,
  /^extension\/dist\/(extension|agent|cli)\.js$/,
  /^extension\/dist\/forkspace-rt$/,
  /^extension\/media\/[\w./-]+\.(svg|png|md)$/,
];
const REQUIRED = ['extension/dist/extension.js', 'extension/dist/agent.js', 'extension/dist/forkspace-rt', 'extension/package.json'];

const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'test-results', 'forkspace.vsix'));
fs.mkdirSync(path.dirname(out), { recursive: true });
const failures: string[] = [];
try {
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'vsce'), ['package', '--allow-missing-repository', '--no-dependencies', '--no-rewrite-relative-links', '-o', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const entries = execFileSync('unzip', ['-Z1', out], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const e of entries) if (!ALLOWED.some((r) => r.test(e))) failures.push(`the VSIX holds ${e}, which it must not ship`);
  for (const r of REQUIRED) if (!entries.includes(r)) failures.push(`the VSIX lacks ${r}`);
  const mode = execFileSync('unzip', ['-Z', out, 'extension/dist/forkspace-rt'], { encoding: 'utf8' });
  if (!/^-rwx/.test(mode)) failures.push(`extension/dist/forkspace-rt is not executable in the VSIX: ${mode.trim()}`);
  const size = fs.statSync(out).size;
  console.log(`${path.relative(process.cwd(), out)}: ${(size / 1024 / 1024).toFixed(2)} MiB, ${entries.length} entries`);
} catch (e) {
  failures.push(`packaging failed: ${(e as Error).message}`);
}
for (const f of failures) console.log(`  ✘ ${f}`);
console.log(`vsix: ${failures.length ? 0 : 1} passed, ${failures.length ? 1 : 0} failed`);
process.exit(failures.length ? 1 : 0);
