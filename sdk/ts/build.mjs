// Builds the package: dist/index.js (CommonJS) and dist/index.mjs (ESM) with esbuild, one file each with
// nothing external (the SDK has no dependencies), and dist/*.d.ts with tsc. The generated protocol file
// must be current first (src/api.gen.ts; `npm run generate`).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
const common = { entryPoints: [path.join(here, 'src', 'index.ts')], bundle: true, platform: 'node', target: 'node22', sourcemap: true, legalComments: 'none', logLevel: 'warning' };
await Promise.all([
  esbuild.build({ ...common, format: 'cjs', outfile: path.join(dist, 'index.js') }),
  esbuild.build({ ...common, format: 'esm', outfile: path.join(dist, 'index.mjs') }),
]);
const tsc = path.resolve(here, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(here, 'tsconfig.json')], { stdio: 'inherit' });
console.log(`built ${path.relative(process.cwd(), dist)}: ${fs.readdirSync(dist).join(', ')}`);
