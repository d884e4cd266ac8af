// A private agent + forkspace-rt pair for the Python SDK's integration tests (sdk/python/tests): starts a
// Stack (test/integration/stack.ts) with its Direct HTTP API on a free port, makes an API key with
// `forkspace keys create`, prints one JSON line {url, key, adminToken, dataDir} on stdout, and stops the
// stack when stdin closes (or on SIGTERM/SIGINT). Exits 1 if the stack left anything behind.
//   node --import tsx test/python/stack.ts
import * as fs from 'node:fs';
import { freePort, Stack } from '../integration/stack';

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('the Python SDK integration tests need root (namespaces, mounts, cgroups), like the other integration tests');
    return 2;
  }
  const port = await freePort();
  const stack = await Stack.start({ env: { FORKSPACE_HTTP_PORT: String(port), ...extraEnv() } });
  let stopping: Promise<number> | undefined;
  const stop = () =>
    (stopping ??= stack.stop().then(
      (left) => {
        if (left.length) console.error(`the stack left things behind:\n${left.join('\n')}`);
        return left.length ? 1 : 0;
      },
      (e: Error) => (console.error(`stopping the stack failed: ${e.stack ?? e}`), 1),
    ));
  process.on('SIGTERM', () => void stop().then((c) => process.exit(c)));
  process.on('SIGINT', () => void stop().then((c) => process.exit(c)));
  try {
    const made = await stack.cli(['keys', 'create', '--name', 'python-sdk-tests']);
    if (made.code !== 0) throw new Error(`forkspace keys create failed (${made.code}): ${made.stderr}`);
    const info = {
      url: `http://127.0.0.1:${port}`,
      key: made.stdout.trim(),
      adminToken: fs.readFileSync(stack.config.tokenFile, 'utf8').trim(),
      dataDir: stack.config.dataDir,
      logDir: stack.config.logDir,
    };
    process.stdout.write(JSON.stringify(info) + '\n');
  } catch (e) {
    console.error((e as Error).message);
    await stop();
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
  });
  return stop();
}

/** FORKSPACE_* settings a test run passes through (e.g. FORKSPACE_ORPHAN_GRACE_MS). */
function extraEnv(): NodeJS.ProcessEnv {
  const raw = process.env.FORKSPACE_PY_STACK_ENV;
  return raw ? (JSON.parse(raw) as NodeJS.ProcessEnv) : {};
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(e.stack ?? String(e));
    process.exit(1);
  },
);
