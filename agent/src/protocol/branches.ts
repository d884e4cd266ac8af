// Comparing and merging what branches did to their files, and the branch tree.
import { z } from 'zod';
import { Ref } from './common';
import { request } from './messages';
import { Sandbox } from './sandboxes';
import { Snapshot } from './snapshots';

export const Change = z.enum(['unchanged', 'added', 'modified', 'deleted']);

export const BranchDiff = request(
  'branch/diff',
  z.strictObject({ a: Ref, b: Ref }),
  z.object({
    a: z.string(),
    b: z.string(),
    /** Their nearest common snapshot (or the environment, when they share none). */
    base: z.string(),
    changes: z.array(z.object({ path: z.string(), a: Change, b: Change, conflict: z.boolean() })),
  }),
  'What two sandboxes (or snapshots) changed in their files since their common ancestor.',
  { http: 'GET /v1/diff' },
);

export const MergeStrategy = z.enum(['fail', 'ours', 'theirs']);

export const MergeResult = z.object({
  from: z.string(),
  into: z.string(),
  base: z.string(),
  strategy: MergeStrategy,
  applied: z.array(z.string()),
  conflicts: z.array(
    z.object({ path: z.string(), into: Change, from: Change, reason: z.string(), detail: z.string() }),
  ),
  aborted: z.boolean(),
  /** Files written without the setuid/setgid bit they had in `from`: a merge never makes setuid or
   * setgid files. */
  setIdStripped: z.array(z.string()).default([]),
});

export const BranchMerge = request(
  'branch/merge',
  z.strictObject({
    from: Ref,
    into: Ref,
    /** On conflicting changes: fail (apply nothing; the default), ours (keep `into`'s), theirs (take `from`'s). */
    strategy: MergeStrategy.default('fail'),
  }),
  MergeResult,
  'Three-way merges the file changes of `from` into the running sandbox `into`. Processes are not merged.',
  { http: 'POST /v1/sandboxes/{into}/merge' },
);

export const TreeNode: z.ZodType<TreeNode> = z.lazy(() =>
  z.object({
    kind: z.enum(['environment', 'sandbox', 'snapshot']),
    id: z.string(),
    sandbox: Sandbox.optional(),
    snapshot: Snapshot.optional(),
    children: z.array(TreeNode),
  }),
);
export interface TreeNode {
  kind: 'environment' | 'sandbox' | 'snapshot';
  id: string;
  sandbox?: Sandbox;
  snapshot?: Snapshot;
  children: TreeNode[];
}

export const TreeGet = request(
  'tree/get',
  z.strictObject({ includeDestroyed: z.boolean().optional() }),
  z.object({ roots: z.array(TreeNode) }),
  'The branch tree: environment → sandbox → snapshot → sandboxes made from it → ... (an API key: of its own sandboxes).',
  { http: 'GET /v1/tree' },
);
