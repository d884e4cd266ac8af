// The agent's link to forkspace-rt (newline-delimited JSON-RPC over its unix socket). The Rust side is
// agent-native/src/service.rs; `forkspace-rt methods` prints its table, and a test checks they agree.
import { z } from 'zod';
import { Empty } from './common';
import { EnvironmentInfo, EnvironmentManifest } from './environments';
import { notification, request } from './messages';

export const RtLimits = z.strictObject({
  memoryBytes: z.number().optional(),
  cpus: z.number().optional(),
  pids: z.number().optional(),
});

export const RtRunParams = z.strictObject({
  execId: z.string(),
  environment: z.string(),
  argv: z.array(z.string()),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  limits: RtLimits.optional(),
  /** base64 */
  stdin: z.string().optional(),
  files: z
    .array(z.strictObject({ path: z.string(), contentBase64: z.string(), mode: z.number().optional() }))
    .optional(),
  timeoutMs: z.number().optional(),
});
export type RtRunParams = z.infer<typeof RtRunParams>;

export const RtRunResult = z.object({
  sandboxId: z.string(),
  /** The environment's canonical name (aliases resolved). */
  environment: z.string(),
  exitCode: z.number(),
  signal: z.string().nullable(),
  oomKilled: z.boolean(),
  timedOut: z.boolean(),
  killed: z.boolean(),
  pidsLimitHit: z.boolean(),
  durationMs: z.number(),
  memoryPeakBytes: z.number().nullable(),
  cpuTimeMs: z.number().nullable(),
});
export type RtRunResult = z.infer<typeof RtRunResult>;

export const RtInfo = request('runtime/info', Empty, z.record(z.string(), z.unknown()), 'Runtime version, cgroup layout, CRIU, host.');
export const RtShutdown = request('runtime/shutdown', Empty, Empty, 'Kills running sandboxes and stops the runtime.');
export const RtEnvList = request('env/list', Empty, z.object({ environments: z.array(EnvironmentInfo) }), 'Known environments.');
export const RtEnvBuild = request(
  'env/build',
  z.strictObject({ name: z.string() }),
  z.object({ name: z.string(), manifest: EnvironmentManifest }),
  'Builds an environment once.',
);
export const RtSandboxRun = request('sandbox/run', RtRunParams, RtRunResult, 'Runs argv in a fresh sandbox, destroyed afterwards.');
export const RtSandboxList = request('sandbox/list', Empty, z.object({ sandboxes: z.array(z.record(z.string(), z.unknown())) }), 'Running sandboxes.');
export const RtExecKill = request('exec/kill', z.strictObject({ execId: z.string() }), z.object({ killed: z.boolean() }), 'SIGKILLs a running exec.');

export const RtExecStarted = notification('exec/started', z.object({ execId: z.string(), sandboxId: z.string(), pid: z.number() }), 'A run\'s first process exec\'d.');
export const RtExecOutput = notification(
  'exec/output',
  z.object({ execId: z.string(), stream: z.enum(['stdout', 'stderr']), seq: z.number(), dataBase64: z.string() }),
  'Raw output bytes, base64.',
);
export const RtEnvProgress = notification('env/progress', z.object({ name: z.string(), message: z.string() }), 'Environment build progress.');

export const RuntimeRequests = [RtInfo, RtShutdown, RtEnvList, RtEnvBuild, RtSandboxRun, RtSandboxList, RtExecKill] as const;
export const RuntimeNotifications = [RtExecStarted, RtExecOutput, RtEnvProgress] as const;
