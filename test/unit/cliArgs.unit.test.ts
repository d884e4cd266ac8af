import { strict as assert } from 'node:assert';
import { formatBytes, parseArgs, parseDuration, parseSize, UsageError } from '../../agent/src/cli/args';

describe('CLI arguments', () => {
  const spec = { env: { value: true }, setenv: { value: true, repeat: true, alias: 'e' }, json: {} };

  it('stops at -- and at the first positional', () => {
    assert.deepEqual(parseArgs(['--env', 'busybox', '--', 'sh', '-c', 'echo --env'], spec), {
      flags: { env: 'busybox' },
      positionals: ['sh', '-c', 'echo --env'],
    });
    assert.deepEqual(parseArgs(['--env=python', 'python3', '-c', 'x'], spec).positionals, ['python3', '-c', 'x']);
  });

  it('collects repeated flags and aliases', () => {
    assert.deepEqual(parseArgs(['-e', 'A=1', '--setenv', 'B=2', 'true'], spec).flags, { setenv: ['A=1', 'B=2'] });
  });

  it('refuses unknown options, missing values and values on switches', () => {
    assert.throws(() => parseArgs(['--nope'], spec), UsageError);
    assert.throws(() => parseArgs(['--env'], spec), /needs a value/);
    assert.throws(() => parseArgs(['--json=yes'], spec), /takes no value/);
  });

  it('parses sizes in powers of 1024', () => {
    assert.equal(parseSize('64M'), 64 * 1024 ** 2);
    assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('256MiB'), 256 * 1024 ** 2);
    assert.equal(parseSize('4096'), 4096);
    assert.throws(() => parseSize('lots'), /not a size/);
    assert.equal(formatBytes(64 * 1024 ** 2), '64 MiB');
  });

  it('parses durations', () => {
    assert.equal(parseDuration('10s'), 10_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('3'), 3000);
    assert.throws(() => parseDuration('soon'), /not a duration/);
  });
});
