import { z } from 'zod';
import { Text } from './common';
import { notification, request } from './messages';

/** Bumped on incompatible changes; `initialize` refuses a different major. */
export const PROTOCOL_VERSION = '0.1';

export const Initialize = request(
  'initialize',
  z.strictObject({
    protocolVersion: Text,
    clientName: Text.optional(),
    clientVersion: Text.optional(),
  }),
  z.object({
    protocolVersion: z.string(),
    serverName: z.string(),
    serverVersion: z.string(),
    capabilities: z.object({
      executionModes: z.array(z.string()),
      streaming: z.boolean(),
      cancellation: z.boolean(),
    }),
  }),
  'Starts a session; must be the first request on a connection.',
);

export const Shutdown = request(
  'shutdown',
  z.strictObject({}),
  z.object({}),
  'Ends the session: running requests of this connection are cancelled and no new ones are taken.',
);

export const Exit = notification('exit', z.strictObject({}), 'Closes the connection after shutdown.', 'clientToServer');

export const CancelRequest = notification(
  '$/cancelRequest',
  z.strictObject({ id: z.union([z.string(), z.number()]) }),
  'Cancels a running request; it is answered with RequestCancelled.',
  'clientToServer',
);

export const RuntimeStatus = z.object({
  connected: z.boolean(),
  error: z.string().optional(),
  info: z.record(z.string(), z.unknown()).optional(),
});

export const AgentStatus = request(
  'agent/status',
  z.strictObject({}),
  z.object({
    pid: z.number(),
    version: z.string(),
    node: z.string(),
    uptimeMs: z.number(),
    connections: z.number(),
    runningExecutions: z.number(),
    runtime: RuntimeStatus,
  }),
  'Reports the agent\'s and the runtime\'s state.',
  { http: 'GET /v1/agent/status' },
);

export const AgentStop = request(
  'agent/stop',
  z.strictObject({ stopRuntime: z.boolean().optional() }),
  z.object({}),
  'Stops the agent (and forkspace-rt too with stopRuntime), after answering.',
  { http: 'POST /v1/agent/stop', admin: true },
);
