// Which environment runs a file or selection of a given language, and how. Pure: unit-tested without VS Code.

export interface Runnable {
  environment: string;
  /** Source in the environment's language (Python for python*, sh for busybox)... */
  code?: string;
  /** ...or an argv. */
  command?: string[];
}

/** VS Code language ids the extension can run. */
const LANGUAGES: Record<string, 'python' | 'shell'> = {
  python: 'python',
  shellscript: 'shell',
};

export function supportedLanguages(): string[] {
  return Object.keys(LANGUAGES);
}

/**
 * What runs `source` written in `languageId`, given the `defaultEnvironment` setting: Python runs in the
 * default environment when it is a Python one (else `python`); shell runs in busybox, or with /bin/sh in
 * the default environment when that is a Python one (so it sees the same files and tools).
 */
export function runnableFor(languageId: string, source: string, defaultEnvironment: string): Runnable | { error: string } {
  const family = LANGUAGES[languageId];
  if (!family) {
    return {
      error: `Forkspace cannot run ${languageId} files; it runs ${supportedLanguages().join(' and ')}. Use "Run Command in Sandbox…" for anything else.`,
    };
  }
  const pythonDefault = defaultEnvironment.startsWith('python');
  if (family === 'python') return { environment: pythonDefault ? defaultEnvironment : 'python', code: source };
  return pythonDefault ? { environment: defaultEnvironment, command: ['/bin/sh', '-c', source] } : { environment: 'busybox', code: source };
}
