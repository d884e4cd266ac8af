// Runtime events every client may want (sandbox consoles, state changes, snapshots), relayed to every
// initialized connection, with console bytes decoded per sandbox and stream.
import { TextDecoder } from 'node:util';
import { SandboxChanged, SandboxExpired, SandboxOutput, SnapshotChanged } from '../protocol';
import { RtSandboxChanged, RtSandboxExpired, RtSandboxOutput, RtSnapshotChanged } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import type { RpcServer } from './rpcServer';

export function forwardRuntimeEvents(runtime: RuntimeClient, rpc: RpcServer): void {
  const decoders = new Map<string, TextDecoder>();
  runtime.onRuntimeNotification(RtSandboxOutput, (p) => {
    const key = `${p.sandboxId}/${p.stream}`;
    let d = decoders.get(key);
    if (!d) decoders.set(key, (d = new TextDecoder('utf-8')));
    const data = d.decode(Buffer.from(p.dataBase64, 'base64'), { stream: true });
    if (data) rpc.broadcast(SandboxOutput, { sandboxId: p.sandboxId, stream: p.stream, data, seq: p.seq });
  });
  runtime.onRuntimeNotification(RtSandboxChanged, (p) => {
    if (p.state !== 'running' && p.state !== 'paused') {
      decoders.delete(`${p.sandboxId}/stdout`);
      decoders.delete(`${p.sandboxId}/stderr`);
    }
    rpc.broadcast(SandboxChanged, { sandboxId: p.sandboxId, state: p.state as never });
  });
  runtime.onRuntimeNotification(RtSandboxExpired, (p) => rpc.broadcast(SandboxExpired, p));
  runtime.onRuntimeNotification(RtSnapshotChanged, (p) => rpc.broadcast(SnapshotChanged, { snapshotId: p.snapshotId, state: p.state as never }));
}
