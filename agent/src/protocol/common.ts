// Shapes shared by several messages.
import { z } from 'zod';

/** Ids callers may choose (execIds): safe as file names and log keys. */
export const Id = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use 1-64 characters of A-Z a-z 0-9 . _ -');

export const Limits = z.strictObject({
  /** Memory limit in bytes; exceeding it OOM-kills the sandbox. Default 512 MiB. */
  memoryBytes: z.number().int().min(8 * 1024 * 1024, 'at least 8 MiB').optional(),
  /** CPU quota in cores (0.5 = half a core). Default: no quota. */
  cpus: z.number().positive().max(1024).optional(),
  /** Maximum number of processes and threads. Default 1024. */
  pids: z.number().int().min(1).max(4194304).optional(),
});
export type Limits = z.infer<typeof Limits>;

export const Empty = z.strictObject({});
export type Empty = z.infer<typeof Empty>;
