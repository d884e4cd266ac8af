// Interactive terminals: a shell (or any program) on a pty inside a running sandbox. Output arrives as
// terminal/output notifications to the connection that opened it; closing that connection closes it.
import { z } from 'zod';
import { AbsolutePath, Arg, EnvVars, Id, Ref } from './common';
import { notification, request, stream } from './messages';

const Size = { cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) };

export const TerminalOpen = request(
  'terminal/open',
  z.strictObject({
    sandboxId: Ref,
    terminalId: Id.optional(),
    /** Default: the environment's login shell. */
    command: z.array(Arg).min(1).optional(),
    env: EnvVars.optional(),
    cwd: AbsolutePath.optional(),
    ...Size,
  }),
  z.object({ terminalId: z.string(), sandboxId: z.string() }),
  'Opens a terminal (pty) in a running sandbox.',
  { http: 'POST /v1/sandboxes/{sandboxId}/terminals' },
);

export const TerminalInput = request(
  'terminal/input',
  z.strictObject({ terminalId: Ref, data: z.string() }),
  z.object({ written: z.number() }),
  'Types into a terminal (UTF-8; control characters as they are, e.g. "\\u0003" for Ctrl-C).',
  { http: 'POST /v1/terminals/{terminalId}/input' },
);

export const TerminalResize = request(
  'terminal/resize',
  z.strictObject({ terminalId: Ref, ...Size }),
  z.object({ cols: z.number(), rows: z.number() }),
  'Resizes a terminal (the program gets SIGWINCH).',
  { http: 'POST /v1/terminals/{terminalId}/resize' },
);

export const TerminalClose = request(
  'terminal/close',
  z.strictObject({ terminalId: Ref }),
  z.object({ closed: z.boolean() }),
  'Ends a terminal\'s program.',
  { http: 'DELETE /v1/terminals/{terminalId}' },
);

export const TerminalOutput = notification(
  'terminal/output',
  z.object({ terminalId: z.string(), data: z.string(), seq: z.number().int().positive() }),
  'What the terminal printed (escape sequences included).',
);

export const TerminalExit = notification(
  'terminal/exit',
  z.object({ terminalId: z.string(), exitCode: z.number().nullable() }),
  'The terminal\'s program ended.',
);

export const TerminalStreamFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('output'), terminalId: z.string(), data: z.string(), seq: z.number().int().positive() }),
  /** Output `from`..`to` is no longer kept (the buffer holds the last 1 MiB). */
  z.object({ type: z.literal('gap'), terminalId: z.string(), from: z.number().int(), to: z.number().int() }),
  /** The last frame: the program ended. */
  z.object({ type: z.literal('exit'), terminalId: z.string(), exitCode: z.number().nullable() }),
]);
export type TerminalStreamFrame = z.infer<typeof TerminalStreamFrame>;

/** What a client may send on a terminal stream (text frames): keystrokes and window sizes. */
export const TerminalClientFrame = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('input'), data: z.string() }),
  z.strictObject({ type: z.literal('resize'), ...Size }),
]);
export type TerminalClientFrame = z.infer<typeof TerminalClientFrame>;

export const TerminalStream = stream(
  'terminal/stream',
  'GET /v1/terminals/{terminalId}/stream',
  z.strictObject({ after: z.number().int().min(0).optional() }),
  TerminalStreamFrame,
  'WebSocket: a terminal\'s output as JSON text frames (resume with ?after=<last seq>); send {"type":"input","data"} or {"type":"resize","cols","rows"} frames.',
);
