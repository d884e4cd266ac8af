// The resource limit flags (--memory, --cpus, --pids, --disk) shared by the commands that make sandboxes.
import { parseSize } from './args';

export function limitsFrom(flags: Record<string, unknown>) {
  const limits: { memoryBytes?: number; cpus?: number; pids?: number; diskBytes?: number } = {};
  if (typeof flags.memory === 'string') limits.memoryBytes = parseSize(flags.memory, '--memory');
  if (typeof flags.cpus === 'string') limits.cpus = Number(flags.cpus);
  if (typeof flags.pids === 'string') limits.pids = Number(flags.pids);
  if (typeof flags.disk === 'string') limits.diskBytes = parseSize(flags.disk, '--disk');
  return Object.keys(limits).length ? limits : undefined;
}

/** --disk for a sandbox made from a snapshot (its other limits come with its processes). */
export function restoreLimitsFrom(flags: Record<string, unknown>) {
  return typeof flags.disk === 'string' ? { diskBytes: parseSize(flags.disk, '--disk') } : undefined;
}
