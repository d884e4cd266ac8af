// Debian's Chromium, driven by playwright-core over CDP, as the window of a code-server workbench. The
// extension host runs on the server; a browser is still needed to "be the window" that spawns it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps dialling Google's hosts, which this machine refuses.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function openBrowser(dir: string): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/install-editor.sh`);
  const profile = fs.mkdtempSync(path.join(dir, 'chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ARGS,
    env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, '.config'), TMPDIR: dir },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The workbench on `folder`; with `tests`, the window runs them in the extension host of `devPath`. */
export function workbenchUrl(serverUrl: string, folder: string, tests?: { devPath: string; testsPath: string }): string {
  const authority = new URL(serverUrl).host; // code-server's remote authority is its host:port
  const remote = (p: string) => `vscode-remote://${authority}${p}`;
  let url = `${serverUrl}/?folder=${encodeURIComponent(folder)}`;
  if (tests) {
    const payload = [
      ['extensionDevelopmentPath', remote(tests.devPath)],
      ['extensionTestsPath', remote(tests.testsPath)],
    ];
    url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  }
  return url;
}

/**
 * Opens the workbench with a test payload and waits for the extension host to run the tests: the
 * workbench calls window.codeAutomationExit(code) when they end (the hook @vscode/test-web uses), and
 * forwards the host's console through codeAutomationLog.
 */
export async function runExtensionTests(page: Page, url: string, timeoutMs: number, log: (line: string) => void): Promise<number | 'timeout'> {
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  await page.exposeFunction('codeAutomationLog', (_type: string, args: unknown[]) => log((args ?? []).map(String).join(' ')));
  await page.exposeFunction('codeAutomationExit', (code: number) => resolveExit(code));
  page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
  await page.goto(url);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  const code = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  return code;
}
