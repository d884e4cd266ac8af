// A minimal `vscode` for unit tests, aliased in at build time (esbuild --alias:vscode=...). Only what the
// extension's modules touch when commands run; dialogs answer from `answers`, which tests set.
/* eslint-disable @typescript-eslint/no-explicit-any */
export const answers: { quickPick?: (items: any[]) => any; inputBox?: string; warning?: string } = {};
export const shown: { info: string[]; error: string[]; warning: string[] } = { info: [], error: [], warning: [] };

export class Disposable {
  constructor(private readonly fn: () => void = () => {}) {}
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners: ((e: T) => void)[] = [];
  event = (l: (e: T) => void) => {
    this.listeners.push(l);
    return new Disposable(() => (this.listeners = this.listeners.filter((x) => x !== l)));
  };
  fire(e: T): void {
    this.listeners.forEach((l) => l(e));
  }
  dispose(): void {
    this.listeners = [];
  }
}

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}
export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string;
  contextValue?: string;
  iconPath?: unknown;
  constructor(
    public label: string,
    public collapsibleState: TreeItemCollapsibleState = TreeItemCollapsibleState.None,
  ) {}
}
export class ThemeIcon {
  constructor(
    public id: string,
    public color?: ThemeColor,
  ) {}
}
export class ThemeColor {
  constructor(public id: string) {}
}
export class Uri {
  constructor(
    public scheme: string,
    public path: string,
  ) {}
  static from(c: { scheme: string; path: string }): Uri {
    return new Uri(c.scheme, c.path);
  }
  static parse(s: string): Uri {
    return new Uri(s.split(':')[0], s.slice(s.indexOf(':') + 1));
  }
  static file(p: string): Uri {
    return new Uri('file', p);
  }
  toString(): string {
    return `${this.scheme}:${this.path}`;
  }
}
export enum ProgressLocation {
  Notification = 15,
}
export enum StatusBarAlignment {
  Left = 1,
}
export enum ConfigurationTarget {
  Global = 1,
}
export enum FileType {
  File = 1,
  Directory = 2,
  SymbolicLink = 64,
}
export enum FilePermission {
  Readonly = 1,
}
export class FileSystemError extends Error {
  static FileNotFound(u: unknown): FileSystemError {
    return new FileSystemError(`not found: ${String(u)}`);
  }
  static NoPermissions(u: unknown): FileSystemError {
    return new FileSystemError(`read-only: ${String(u)}`);
  }
}

const registered = new Map<string, (...a: any[]) => any>();
export const commands = {
  registerCommand(id: string, fn: (...a: any[]) => any): Disposable {
    registered.set(id, fn);
    return new Disposable(() => registered.delete(id));
  },
  async executeCommand(id: string, ...args: any[]): Promise<any> {
    return registered.get(id)?.(...args);
  },
  registered,
};

export const window = {
  async withProgress<T>(_o: unknown, task: (p: unknown, token: { onCancellationRequested: (f: () => void) => void }) => Promise<T>): Promise<T> {
    return task({}, { onCancellationRequested: () => {} });
  },
  async showQuickPick(items: any[]): Promise<any> {
    return answers.quickPick ? answers.quickPick(await items) : undefined;
  },
  async showInputBox(): Promise<string | undefined> {
    return answers.inputBox;
  },
  async showInformationMessage(m: string): Promise<undefined> {
    shown.info.push(m);
    return undefined;
  },
  async showErrorMessage(m: string): Promise<undefined> {
    shown.error.push(m);
    return undefined;
  },
  async showWarningMessage(m: string): Promise<string | undefined> {
    shown.warning.push(m);
    return answers.warning;
  },
  setStatusBarMessage(): Disposable {
    return new Disposable();
  },
};

export const workspace = {
  getConfiguration() {
    return { get: <T>(_k: string, d?: T) => d, update: async () => {} };
  },
  workspaceFolders: undefined,
};

export const env = { clipboard: { writeText: async () => {} }, asExternalUri: async (u: Uri) => u, openExternal: async () => true };
export const extensions = { getExtension: () => undefined };
export const version = '1.100.0';
