// SSH access: everything an ssh client needs to log into a sandbox (a real sshd inside it).
import { z } from 'zod';
import { Ref } from './common';
import { request } from './messages';

export const SshTarget = z.object({
  sandboxId: z.string(),
  /** The Host alias of `forkspace ssh-config`: forkspace-<sandboxId>. */
  alias: z.string(),
  user: z.string(),
  host: z.string(),
  port: z.number(),
  /** The sandbox's private key (made by the agent; readable by the agent's user only). */
  identityFile: z.string(),
});

export const SshPrepare = request(
  'ssh/prepare',
  z.strictObject({ sandboxId: Ref }),
  SshTarget,
  'Starts sshd in a sandbox (waking a paused or stopped one), authorizes its key and forwards a host port to it.',
  { http: 'POST /v1/sandboxes/{sandboxId}/ssh' },
);
