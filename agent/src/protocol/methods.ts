// The agent's method table: every request and notification of the public protocol, in one list.
import { AgentStatus, AgentStop, CancelRequest, Exit, Initialize, Shutdown } from './lifecycle';
import { EnvBuild, EnvList, EnvProgress } from './environments';
import { ExecOutput, ExecRun, ExecStarted } from './exec';

export const AgentRequests = [Initialize, Shutdown, AgentStatus, AgentStop, EnvList, EnvBuild, ExecRun] as const;
export const AgentNotifications = [Exit, CancelRequest, ExecStarted, ExecOutput, EnvProgress] as const;
