// Every command of the extension, registered in one table. Each lives in its own file under
// commands/<noun>/<verb>.ts; its id (forkspace.<noun>.<verb>) matches package.json contributes.commands.
import * as vscode from 'vscode';
import { setKey } from './agent/setKey';
import { showStatus } from './agent/showStatus';
import { diff } from './branch/diff';
import { merge } from './branch/merge';
import { runCommand } from './command/run';
import { download } from './file/download';
import { runFile } from './file/run';
import { runCheckpointed } from './file/runCheckpointed';
import { upload } from './file/upload';
import { exposeHttp } from './http/expose';
import { forwardPort } from './port/forward';
import { checkpoint } from './sandbox/checkpoint';
import { deleteSandbox } from './sandbox/delete';
import { pause } from './sandbox/pause';
import { resume } from './sandbox/resume';
import { startSandbox } from './sandbox/start';
import { stop } from './sandbox/stop';
import { runSelection } from './selection/run';
import type { Command, Services } from './services';
import { branch } from './snapshot/branch';
import { deleteSnapshot } from './snapshot/delete';
import { restore } from './snapshot/restore';
import { copySshCommand } from './ssh/copyCommand';
import { openRemote } from './ssh/openRemote';
import { configureTangle } from './tangle/configure';
import { openTerminal } from './terminal/open';
import { refresh } from './view/refresh';

export const COMMANDS: readonly Command[] = [
  runFile,
  runSelection,
  runCommand,
  runCheckpointed,
  startSandbox,
  checkpoint,
  restore,
  branch,
  diff,
  merge,
  pause,
  resume,
  stop,
  deleteSandbox,
  deleteSnapshot,
  openTerminal,
  forwardPort,
  exposeHttp,
  copySshCommand,
  openRemote,
  upload,
  download,
  refresh,
  showStatus,
  setKey,
  configureTangle,
];

export function registerCommands(context: vscode.ExtensionContext, services: Services): void {
  for (const c of COMMANDS) {
    context.subscriptions.push(
      vscode.commands.registerCommand(c.id, async (...args: unknown[]) => {
        try {
          return await c.run(services, ...args);
        } catch (e) {
          const message = (e as Error).message;
          services.agent.output.appendLine(`${c.id}: ${message}`);
          services.lastError = message;
          void vscode.window.showErrorMessage(`Forkspace: ${message}`);
          return undefined;
        }
      }),
    );
  }
}
