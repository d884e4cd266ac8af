// The npm package: it builds (esbuild bundles, tsc declarations: a type error fails here), has no runtime
// dependencies, bundles no zod and nothing of the agent but the generated tables, and loads as CommonJS
// and as ESM.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const PKG = path.resolve(__dirname, '..', '..', 'sdk', 'ts');

describe('@forkspace/sdk package', function () {
  this.timeout(120_000);

  before(() => {
    execFileSync(process.execPath, [path.join(PKG, 'build.mjs')], { cwd: PKG, stdio: 'pipe' });
  });

  it('declares no runtime dependencies and ships dist with types', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
    assert.equal(pkg.name, '@forkspace/sdk');
    assert.deepEqual(pkg.dependencies ?? {}, {});
    assert.equal(pkg.peerDependencies, undefined);
    for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'client.d.ts', 'api.gen.d.ts']) assert.ok(fs.existsSync(path.join(PKG, 'dist', f)), `dist/${f}`);
    assert.equal(pkg.types, './dist/index.d.ts');
  });

  it('bundles no zod and imports nothing outside itself', () => {
    const js = fs.readFileSync(path.join(PKG, 'dist', 'index.js'), 'utf8');
    assert.ok(!/zod|ZodType|safeParse/.test(js), 'the bundle must not contain zod');
    assert.deepEqual([...js.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]).filter((m) => !m.startsWith('node:')), []);
    for (const f of fs.readdirSync(path.join(PKG, 'dist')).filter((x) => x.endsWith('.d.ts'))) {
      const d = fs.readFileSync(path.join(PKG, 'dist', f), 'utf8');
      assert.ok(!/from ['"](\.\.\/)+agent|from ['"]zod['"]/.test(d), `${f} refers outside the package`);
    }
  });

  it('loads as CommonJS and as ESM', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cjs = require(path.join(PKG, 'dist', 'index.js'));
    const esm = await import(pathToFileURL(path.join(PKG, 'dist', 'index.mjs')).href);
    for (const m of [cjs, esm]) {
      assert.equal(typeof m.FaaSPlatformClient, 'function');
      assert.equal(typeof m.UnifiedFaaSClient, 'function');
      assert.equal(m.ROUTES['exec/run'].path, '/v1/executions/run');
      const c = new m.FaaSPlatformClient({ apiKey: 'fsk_x', platformUrl: 'http://127.0.0.1:1/', executorUrl: 'http://127.0.0.1:2' });
      assert.equal(c.transport.platformUrl, 'http://127.0.0.1:1');
      assert.equal(c.transport.baseFor('exec/run'), 'http://127.0.0.1:2');
      assert.equal(c.transport.baseFor('sandbox/create'), 'http://127.0.0.1:1');
    }
  });
});
