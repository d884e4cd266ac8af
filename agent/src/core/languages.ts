// How `code` runs in each environment: Python environments run it as a script file (so tracebacks show
// real line numbers), busybox runs it with sh. `command` strings always go through /bin/sh -c.

export const DEFAULT_ENVIRONMENT = 'python';
const CODE_DIR = '/tmp/forkspace';

export interface Invocation {
  argv: string[];
  files: { path: string; content: Buffer; mode?: number }[];
}

export function isPythonEnvironment(environment: string): boolean {
  return environment === 'python' || environment.startsWith('python:');
}

export function invocationFor(environment: string, input: { code?: string; command?: string | string[] }): Invocation {
  if (input.command !== undefined) {
    return { argv: typeof input.command === 'string' ? ['/bin/sh', '-c', input.command] : input.command, files: [] };
  }
  const code = Buffer.from(input.code ?? '', 'utf8');
  if (isPythonEnvironment(environment)) {
    return { argv: ['python3', `${CODE_DIR}/main.py`], files: [{ path: `${CODE_DIR}/main.py`, content: code }] };
  }
  return { argv: ['/bin/sh', `${CODE_DIR}/main.sh`], files: [{ path: `${CODE_DIR}/main.sh`, content: code }] };
}
