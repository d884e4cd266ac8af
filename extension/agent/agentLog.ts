// The local agent's and runtime's logs in the Forkspace output channel: their last lines when the extension
// connects, then whatever they write (inotify through fs.watch; nothing is read while nothing is
// written). A file that shrinks (a new agent truncating or rotating it) is read again from its start.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { agentLogDir } from './agentLocation';

const FILES = [
  ['forkspace-agent.log', 'agent'],
  ['forkspace-rt.log', 'runtime'],
] as const;
/** Lines kept for `recent()` (what the tests read; the channel keeps its own). */
const KEEP = 500;
/** How much of a log's end to show on connecting: the last start-up or so. */
const BACKLOG_BYTES = 4096;

export class AgentLog implements vscode.Disposable {
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly offsets = new Map<string, number>();
  private readonly kept: string[] = [];
  private dir: string | undefined;

  constructor(private readonly output: vscode.OutputChannel) {}

  /** Follows the logs in the agent's log directory (the one the agent started by us writes to). */
  follow(env: NodeJS.ProcessEnv = process.env): void {
    const dir = agentLogDir(env);
    if (dir === this.dir) return;
    this.stop();
    this.dir = dir;
    if (!fs.existsSync(dir)) return;
    for (const [file, source] of FILES) {
      const p = path.join(dir, file);
      const size = sizeOf(p);
      this.offsets.set(p, Math.max(0, size - BACKLOG_BYTES));
      this.read(p, source, size > BACKLOG_BYTES);
      try {
        this.watchers.push(fs.watch(dir, (_event, name) => name === file && this.read(p, source)));
      } catch {
        // not allowed to watch (another user's logs): the channel keeps the extension's own lines
      }
    }
  }

  /** The last lines followed, newest last. */
  recent(): readonly string[] {
    return this.kept;
  }

  /** Appends the whole lines written since the last read (`skipFirst`: the first one is cut by the backlog). */
  private read(p: string, source: string, skipFirst = false): void {
    const size = sizeOf(p);
    let from = this.offsets.get(p) ?? 0;
    if (size < from) from = 0;
    if (size === from) return;
    let text: string;
    try {
      const fd = fs.openSync(p, 'r');
      try {
        const buf = Buffer.alloc(size - from);
        fs.readSync(fd, buf, 0, buf.length, from);
        text = buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return;
    }
    // Only whole lines: a partial one is read again with its end.
    const end = text.lastIndexOf('\n');
    if (end < 0) return;
    this.offsets.set(p, from + Buffer.byteLength(text.slice(0, end + 1)));
    const lines = text.slice(0, end).split('\n');
    if (skipFirst) lines.shift();
    for (const line of lines) {
      const entry = `[${source}] ${line}`;
      this.output.appendLine(entry);
      this.kept.push(entry);
    }
    if (this.kept.length > KEEP) this.kept.splice(0, this.kept.length - KEEP);
  }

  private stop(): void {
    this.watchers.splice(0).forEach((w) => w.close());
    this.offsets.clear();
  }

  dispose(): void {
    this.stop();
  }
}

function sizeOf(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}
