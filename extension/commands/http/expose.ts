import * as vscode from 'vscode';
import { HttpExpose } from '../../../agent/src/protocol';
import { parseExposureName, parsePort } from '../args';
import { sandboxFor } from '../pick';
import type { Command } from '../services';

export const exposeHttp: Command = {
  id: 'forkspace.http.expose',
  async run(s, arg, givenPort?: unknown, givenName?: unknown) {
    const sandboxId = await sandboxFor(s, arg, ['running'], 'Sandbox serving HTTP');
    if (!sandboxId) return undefined;
    let port = typeof givenPort === 'number' ? givenPort : undefined;
    if (port === undefined) {
      const text = await vscode.window.showInputBox({ prompt: `HTTP port inside ${sandboxId}`, placeHolder: '8000', validateInput: (t) => (typeof parsePort(t) === 'string' ? (parsePort(t) as string) : undefined) });
      if (text === undefined) return undefined;
      port = parsePort(text) as number;
    }
    let name = typeof givenName === 'string' ? givenName : undefined;
    if (name === undefined) {
      const text = await vscode.window.showInputBox({
        prompt: 'Name in the URL (/v1/expose/NAME/)',
        value: `${sandboxId.slice(4, 10)}-${port}`,
        validateInput: (t) => {
          const r = parseExposureName(t);
          return typeof r === 'string' ? undefined : r.error;
        },
      });
      if (text === undefined) return undefined;
      name = text.trim();
    }
    const e = await s.agent.request(HttpExpose, { sandboxId, port, name });
    const url = await vscode.env.asExternalUri(vscode.Uri.parse(e.url));
    void vscode.window
      .showInformationMessage(`${sandboxId}:${port} is exposed at ${url.toString(true)} (requests need the agent's key as a Bearer token).`, 'Copy URL')
      .then((pick) => pick && vscode.env.clipboard.writeText(url.toString(true)));
    return { ...e, externalUrl: url.toString(true) };
  },
};
