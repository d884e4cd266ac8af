// Interactive terminals: a shell (or any program) on a pty inside a running sandbox. Output arrives as
// terminal/output notifications to the connection that opened it; closing that connection closes it.
import { z } from 'zod';
import { Id } from './common';
import { notification, request } from './messages';

const Size = { cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) };

export const TerminalOpen = request(
  'terminal/open',
  z.strictObject({
    sandboxId: z.string().min(1),
    terminalId: Id.optional(),
    /** Default: the environment's login shell. */
    command: z.array(z.string()).min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().startsWith('/', 'must be an absolute path').optional(),
    ...Size,
  }),
  z.object({ terminalId: z.string(), sandboxId: z.string() }),
  'Opens a terminal (pty) in a running sandbox.',
);

export const TerminalInput = request(
  'terminal/input',
  z.strictObject({ terminalId: z.string().min(1), data: z.string() }),
  z.object({ written: z.number() }),
  'Types into a terminal (UTF-8; control characters as they are, e.g. "\\u0003" for Ctrl-C).',
);

export const TerminalResize = request(
  'terminal/resize',
  z.strictObject({ terminalId: z.string().min(1), ...Size }),
  z.object({ cols: z.number(), rows: z.number() }),
  'Resizes a terminal (the program gets SIGWINCH).',
);

export const TerminalClose = request(
  'terminal/close',
  z.strictObject({ terminalId: z.string().min(1) }),
  z.object({ closed: z.boolean() }),
  'Ends a terminal\'s program.',
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
