// UI checks through the workbench's DOM, on the packaged extension: the palette lists the commands, the
// branch tree shows labels and states, context menus fit the state of the node, and each view (plus a run
// terminal and a diff) is photographed into the artifacts. State is made through the agent, as a user's
// CLI or SDK would; the checks only look. Selectors are the workbench's (they can change between VS Code
// versions; both tested versions use these).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import {
  FilesWrite,
  InstanceStart,
  SandboxCreate,
  SandboxDestroy,
  SandboxList,
  SandboxPause,
  SnapshotBranch,
  SnapshotCreate,
  type RpcClient,
} from '../../agent/src/protocol';
import { ROOT, type Stack, canConnect, waitFor } from '../integration/stack';
import { workbenchUrl } from './browser';
import type { E2eResults } from './suite/index';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const nls: Record<string, string> = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.nls.json'), 'utf8'));
const title = (id: string) => {
  const c = (pkg.contributes.commands as { command: string; title: string }[]).find((x) => x.command === id);
  if (!c) throw new Error(`no command ${id}`);
  return nls[c.title.slice(1, -1)];
};

export interface UiContext {
  page: Page;
  serverUrl: string;
  folder: string;
  stack: Stack;
  artifacts: string;
  smoke: boolean;
  log(line: string): void;
}

interface Scene {
  client: RpcClient;
  sandbox: string;
  snapshot: string;
  branches: string[];
  paused: string;
}

const TREE_ROW = '.part.sidebar .monaco-list-row[role="treeitem"]';

export async function runUiChecks(ctx: UiContext): Promise<E2eResults> {
  const { page, log } = ctx;
  const results: E2eResults = { passed: 0, failed: 0, skipped: 0, failures: [] };
  const t0 = Date.now();
  const check = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
      results.passed++;
      log(`  ✔ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      results.failed++;
      results.failures.push({ title: name, error: (e as Error).stack ?? String(e) });
      log(`  ✘ ${name}`);
      await shot(ctx, `failed-${name.replace(/\W+/g, '-').slice(0, 60)}`).catch(() => {});
    }
  };
  page.on('pageerror', (e) => log(`  [pageerror] ${e.message}`));
  fs.writeFileSync(path.join(ctx.folder, 'demo.py'), 'import platform\nfor i in range(3):\n    print(f"hello from a sandbox on {platform.node()}: {i}")\n');

  let scene: Scene | undefined;
  await check('the workbench loads with the Forkspace activity bar entry', async () => {
    await page.goto(workbenchUrl(ctx.serverUrl, ctx.folder));
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await activityEntry(page).waitFor({ timeout: 60_000 });
  });
  await check('the packaged extension starts its agent; the status bar says connected', async () => {
    await waitFor(() => canConnect(ctx.stack.config.agentSocket), 60_000, 'the agent the VSIX starts');
    await page.locator('.statusbar-item', { hasText: /Forkspace: \d+/ }).first().waitFor({ timeout: 30_000 });
    scene = await makeScene(ctx.stack);
  });
  await check('the command palette lists every Forkspace command, and hides Remote-SSH without its extension', async () => {
    const hidden = new Set(['forkspace.ssh.openRemote', 'forkspace.view.refresh']);
    for (const c of pkg.contributes.commands as { command: string }[]) {
      if (hidden.has(c.command)) continue;
      const rows = await paletteRows(page, `Forkspace: ${title(c.command)}`);
      assert.ok(rows.includes(`Forkspace: ${title(c.command)}`), `the palette lacks "Forkspace: ${title(c.command)}" (it shows ${JSON.stringify(rows)})`);
    }
    const rows = await paletteRows(page, 'Forkspace: Open in Remote');
    assert.ok(!rows.some((r) => r.includes('Remote-SSH')), `Open in Remote-SSH is listed without Remote - SSH: ${rows}`);
  });
  await check('the branch tree shows the sandbox, its snapshot and 3 branches with their states', async () => {
    if (!scene) throw new Error('no scene (the agent did not start)');
    await openForkspace(page);
    const s = scene;
    await page.locator(TREE_ROW, { hasText: s.branches[2] }).first().waitFor({ timeout: 30_000 });
    const rows = await treeRows(page);
    const row = (id: string) => rows.find((r) => r.label.startsWith(id));
    assert.match(row(s.sandbox)?.description ?? '', /^running ·/, JSON.stringify(rows));
    assert.match(row(s.snapshot)?.label ?? '', /"demo"$/);
    assert.match(row(s.snapshot)?.description ?? '', /memory/);
    for (const b of s.branches) assert.match(row(b)?.description ?? '', /^running ·/, `branch ${b}: ${JSON.stringify(rows)}`);
    assert.match(row(s.paused)?.description ?? '', /^paused ·/);
    // branches sit one level deeper than the snapshot, which sits deeper than its sandbox
    assert.ok(row(s.branches[0])!.level > row(s.snapshot)!.level && row(s.snapshot)!.level > row(s.sandbox)!.level, JSON.stringify(rows));
    await shot(ctx, 'branches');
  });
  await check('a running sandbox\'s context menu offers Checkpoint and Pause, not Resume', async () => {
    const items = await contextMenu(page, scene!.branches[0]);
    for (const t of ['forkspace.sandbox.checkpoint', 'forkspace.sandbox.pause', 'forkspace.sandbox.stop', 'forkspace.terminal.open', 'forkspace.branch.diff', 'forkspace.sandbox.delete']) {
      assert.ok(items.includes(title(t)), `"${title(t)}" missing from ${JSON.stringify(items)}`);
    }
    assert.ok(!items.includes(title('forkspace.sandbox.resume')), `Resume offered on a running sandbox: ${items}`);
    await shot(ctx, 'context-menu-running');
    await page.keyboard.press('Escape');
  });
  await check('a paused sandbox\'s context menu offers Resume, not Pause or Checkpoint', async () => {
    const items = await contextMenu(page, scene!.paused);
    assert.ok(items.includes(title('forkspace.sandbox.resume')), `Resume missing from ${JSON.stringify(items)}`);
    for (const t of ['forkspace.sandbox.pause', 'forkspace.sandbox.checkpoint', 'forkspace.terminal.open']) assert.ok(!items.includes(title(t)), `"${title(t)}" offered on a paused sandbox: ${items}`);
    await page.keyboard.press('Escape');
  });
  await check('a snapshot\'s context menu offers Branch, Restore and Delete Snapshot', async () => {
    const items = await contextMenu(page, scene!.snapshot);
    for (const t of ['forkspace.snapshot.branch', 'forkspace.snapshot.restore', 'forkspace.snapshot.delete']) assert.ok(items.includes(title(t)), `"${title(t)}" missing from ${JSON.stringify(items)}`);
    assert.ok(!items.includes(title('forkspace.sandbox.pause')));
    await page.keyboard.press('Escape');
  });
  await check('the Instances and Tangle Jobs views render (instance with its TTL; the Tangle welcome)', async () => {
    await expandView(page, nls['forkspace.instances.name']);
    await page.locator(TREE_ROW, { hasText: 'left' }).first().waitFor({ timeout: 30_000 });
    await shot(ctx, 'instances');
    await expandView(page, nls['forkspace.tangleJobs.name']);
    await page.locator('.part.sidebar .welcome-view-content', { hasText: 'No Tangle jobs' }).first().waitFor({ timeout: 30_000 });
    await shot(ctx, 'tangle-jobs');
  });
  if (!ctx.smoke) {
    await check('Run Current File from the palette streams the output into a terminal', async () => {
      await openFile(page, 'demo.py');
      await palette(page, `Forkspace: ${title('forkspace.file.run')}`);
      const terminal = page.locator('.part.panel .xterm-rows', { hasText: 'exit code 0' });
      await terminal.first().waitFor({ timeout: 60_000 });
      const text = await terminal.first().innerText();
      assert.match(text, /hello from a sandbox on sbx-\w+: 2/);
      await shot(ctx, 'terminal');
    });
    await check('Diff Branches from the palette opens the diff editor on a changed file', async () => {
      const [a, b] = scene!.branches;
      await palette(page, `Forkspace: ${title('forkspace.branch.diff')}`);
      await pick(page, a);
      await pick(page, b); // one file differs: its diff opens without a third pick
      await page.locator('.monaco-diff-editor').first().waitFor({ timeout: 30_000 });
      await page.locator('.monaco-diff-editor .line-insert, .monaco-diff-editor .char-insert').first().waitFor({ timeout: 30_000 });
      await shot(ctx, 'diff');
    });
  }
  if (scene) await clearScene(scene);
  return results;
}

/** A sandbox with a file, its snapshot "demo", 3 branches (two of them changed), a paused sandbox, an instance. */
async function makeScene(stack: Stack): Promise<Scene> {
  const client = await stack.client();
  const { sandbox } = await client.request(SandboxCreate, { environment: 'python', detached: true });
  await client.request(FilesWrite, { sandboxId: sandbox.id, path: '/root/notes.txt', content: 'plan\n- measure\n- branch\n- merge\n' });
  const { snapshot } = await client.request(SnapshotCreate, { sandboxId: sandbox.id, label: 'demo' });
  const { branches } = await client.request(SnapshotBranch, { snapshotId: snapshot.id, count: 3, detached: true });
  const ids = branches.map((b) => b.sandboxId);
  await client.request(FilesWrite, { sandboxId: ids[0], path: '/root/notes.txt', content: 'plan\n- measure twice\n- branch\n- merge\n' });
  await client.request(FilesWrite, { sandboxId: ids[1], path: '/root/notes.txt', content: 'plan\n- measure\n- branch into 3\n- merge\n- ship\n' });
  const paused = (await client.request(SandboxCreate, { environment: 'busybox', detached: true })).sandbox.id;
  await client.request(SandboxPause, { sandboxId: paused });
  await client.request(InstanceStart, { environment: 'busybox', ttlMs: 3_600_000, idleTimeoutMs: 900_000, labels: { name: 'worker' } });
  return { client, sandbox: sandbox.id, snapshot: snapshot.id, branches: ids, paused };
}

async function clearScene(scene: Scene): Promise<void> {
  const { sandboxes } = await scene.client.request(SandboxList, {});
  for (const s of sandboxes) if (s.state !== 'destroyed') await scene.client.request(SandboxDestroy, { sandboxId: s.id }).catch(() => {});
}

function activityEntry(page: Page) {
  return page.locator('.activitybar .action-item a[aria-label^="Forkspace"], .activitybar .action-item[aria-label^="Forkspace"]').first();
}

async function openForkspace(page: Page): Promise<void> {
  const header = page.locator('.part.sidebar .pane-header', { hasText: nls['forkspace.branches.name'] }).first();
  if (!(await header.isVisible())) await activityEntry(page).click();
  await header.waitFor({ timeout: 15_000 });
  // Wide enough for the descriptions (state · age · size) to show whole: drag the sidebar's sash.
  const box = await page.locator('.part.sidebar').boundingBox();
  if (box && box.width < SIDEBAR_WIDTH) {
    await page.mouse.move(box.x + box.width + 1, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + SIDEBAR_WIDTH, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.mouse.move(box.x + SIDEBAR_WIDTH + 400, box.y + 20); // off the sash, so it is not highlighted
  }
}

const SIDEBAR_WIDTH = 560;

async function expandView(page: Page, name: string): Promise<void> {
  const header = page.locator('.part.sidebar .pane-header', { hasText: name }).first();
  if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
}

/** Labels, descriptions and depths of the rendered tree rows. */
async function treeRows(page: Page): Promise<{ label: string; description: string; level: number }[]> {
  return page.$$eval(TREE_ROW, (els) =>
    els.map((e) => ({
      label: (e.querySelector('.label-name')?.textContent ?? '').trim(),
      description: (e.querySelector('.label-description')?.textContent ?? '').trim(),
      level: Number(e.getAttribute('aria-level') ?? 0),
    })),
  );
}

async function contextMenu(page: Page, rowText: string): Promise<string[]> {
  await openForkspace(page);
  const row = page.locator(TREE_ROW, { hasText: rowText }).first();
  await row.click({ button: 'right' });
  const menu = page.locator('.context-view .monaco-menu .action-label');
  await menu.first().waitFor({ timeout: 10_000 });
  return (await menu.allInnerTexts()).map((t) => t.trim()).filter(Boolean);
}

/** The command palette's input, freshly opened (a closing widget is inert for a moment). */
async function paletteInput(page: Page) {
  const widget = page.locator('.quick-input-widget');
  if (await widget.isVisible()) {
    await page.keyboard.press('Escape');
    await widget.waitFor({ state: 'hidden' });
  }
  await page.keyboard.press('F1');
  const input = widget.locator('input');
  await input.waitFor({ state: 'visible' });
  return input;
}

/** The palette's rows for a query (then closes it). */
async function paletteRows(page: Page, query: string): Promise<string[]> {
  const input = await paletteInput(page);
  await input.fill(`>${query}`);
  const rows = page.locator('.quick-input-list .monaco-list-row .label-name');
  await rows.first().waitFor({ timeout: 10_000 }).catch(() => {});
  const texts = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
  await page.keyboard.press('Escape');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  return texts;
}

/** Runs a palette command by its full title. */
async function palette(page: Page, label: string): Promise<void> {
  const input = await paletteInput(page);
  await input.fill(`>${label}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first().click();
}

/** Picks the row containing `text` in an open QuickPick. */
async function pick(page: Page, text: string): Promise<void> {
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.click();
}

async function openFile(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().click();
  await page.locator('.tabs-container .tab', { hasText: name }).first().waitFor({ timeout: 15_000 });
}

async function shot(ctx: UiContext, name: string): Promise<void> {
  await ctx.page.screenshot({ path: path.join(ctx.artifacts, `${name}.png`) });
}
