import { z } from 'zod';
import { Ref } from './common';
import { notification, request } from './messages';

export const EnvironmentManifest = z.object({
  name: z.string(),
  version: z.string(),
  source: z.string(),
  sizeBytes: z.number(),
  builtAtMs: z.number(),
  /** sha256 of the rootfs's content (cached results are keyed by it, not by the name). */
  digest: z.string().nullable().optional(),
});

export const EnvironmentInfo = z.object({
  name: z.string(),
  aliases: z.array(z.string()),
  description: z.string(),
  built: z.boolean(),
  manifest: EnvironmentManifest.optional(),
});
export type EnvironmentInfo = z.infer<typeof EnvironmentInfo>;

export const EnvList = request(
  'env/list',
  z.strictObject({}),
  z.object({ environments: z.array(EnvironmentInfo) }),
  'Lists the environments the runtime knows and whether each is built.',
  { http: 'GET /v1/environments' },
);

export const EnvBuild = request(
  'env/build',
  z.strictObject({ name: Ref }),
  z.object({ name: z.string(), manifest: EnvironmentManifest }),
  'Builds an environment (once; later calls return at once), streaming env/progress notifications.',
  { http: 'POST /v1/environments/{name}/build' },
);

export const EnvProgress = notification(
  'env/progress',
  z.object({ name: z.string(), message: z.string() }),
  'One line of progress from an environment build.',
);
