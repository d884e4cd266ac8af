import { strict as assert } from 'node:assert';
import { OutputCollector } from '../../agent/src/core/outputCollector';
import { invocationFor } from '../../agent/src/core/languages';

describe('output collection', () => {
  it('never splits a UTF-8 character across chunks and numbers chunks across streams', () => {
    const emitted: [string, string, number][] = [];
    const c = new OutputCollector(1024, (s, d, n) => emitted.push([s, d, n]));
    const euro = Buffer.from('€'); // three bytes
    c.push('stdout', euro.subarray(0, 1));
    c.push('stderr', Buffer.from('err'));
    c.push('stdout', euro.subarray(1));
    const r = c.finish();
    assert.equal(r.stdout, '€');
    assert.equal(r.stderr, 'err');
    assert.deepEqual(emitted, [['stderr', 'err', 1], ['stdout', '€', 2]]);
  });

  it('keeps at most the cap per stream and says so', () => {
    const c = new OutputCollector(10, () => {});
    c.push('stdout', Buffer.from('0123456789abcdef'));
    c.push('stdout', Buffer.from('more'));
    const r = c.finish();
    assert.equal(r.stdout, '0123456789');
    assert.equal(r.stdoutTruncated, true);
    assert.equal(r.stderrTruncated, false);
  });

  it('flushes an incomplete character at the end as a replacement character', () => {
    const c = new OutputCollector(100, () => {});
    c.push('stdout', Buffer.from([0xe2, 0x82]));
    assert.equal(c.finish().stdout, '\uFFFD');
  });
});

describe('languages', () => {
  it('runs Python code from a file and shell commands through sh', () => {
    const py = invocationFor('python:3.11', { code: 'print(1)' });
    assert.deepEqual(py.argv, ['python3', '/tmp/forkspace/main.py']);
    assert.equal(py.files[0].content.toString(), 'print(1)');
    assert.deepEqual(invocationFor('busybox', { code: 'echo hi' }).argv, ['/bin/sh', '/tmp/forkspace/main.sh']);
    assert.deepEqual(invocationFor('python', { command: 'ls -l' }).argv, ['/bin/sh', '-c', 'ls -l']);
    assert.deepEqual(invocationFor('python', { command: ['ls', '-l'] }).argv, ['ls', '-l']);
  });
});
