// The extension's settings (package.json contributes.configuration), read in one place.
import * as vscode from 'vscode';
import type { Limits } from '../agent/src/protocol';

function section() {
  return vscode.workspace.getConfiguration('forkspace');
}

export function defaultEnvironment(): string {
  return section().get<string>('defaultEnvironment') || 'python';
}

/** Limits for runs and new sandboxes; unset ones are the runtime's defaults. */
export function defaultLimits(): Limits | undefined {
  const memoryMb = section().get<number>('limits.memoryMB') ?? 0;
  const cpus = section().get<number>('limits.cpus') ?? 0;
  const limits: Limits = {};
  if (memoryMb > 0) limits.memoryBytes = Math.round(memoryMb * 1024 * 1024);
  if (cpus > 0) limits.cpus = cpus;
  return Object.keys(limits).length ? limits : undefined;
}

export function defaultTimeoutMs(): number | undefined {
  const s = section().get<number>('limits.timeoutSeconds') ?? 0;
  return s > 0 ? Math.round(s * 1000) : undefined;
}
