// UnifiedFaaSClient: one execute() over both flows, with the seed's rule: verifiable, decentralized or
// economicIncentives (or no direct client) → Tangle; otherwise the Direct HTTP API. The Tangle flow is
// not part of this package yet: choosing it raises TangleNotConfiguredError, never a silent fallback to
// the direct flow. A Tangle client plugs in through `tangle` (anything with execute()).
import type { ExecResult } from './api.gen';
import { FaaSPlatformClient } from './client';
import { TangleNotConfiguredError } from './errors';
import type { ConnectionOptions } from './http';
import type { RunOptions } from './options';

export interface ExecutionOptions extends RunOptions {
  /** The result must be verifiable on chain. */
  verifiable?: boolean;
  /** Run by Tangle operators rather than a known agent. */
  decentralized?: boolean;
  /** Paid operators bid for the job. */
  economicIncentives?: boolean;
}

/** What the Tangle issue will provide (TangleFaaSClient): submit a job and wait for its result. */
export interface TangleExecutor {
  execute(code: string, options: ExecutionOptions): Promise<ExecResult>;
}

export interface UnifiedOptions extends ConnectionOptions {
  mode: 'direct' | 'tangle' | 'auto';
  /** A Substrate keypair for signing Tangle jobs (used by the Tangle client). */
  keypair?: unknown;
  tangle?: TangleExecutor;
}

export class UnifiedFaaSClient {
  readonly directClient: FaaSPlatformClient | undefined;
  readonly tangleClient: TangleExecutor | undefined;

  constructor(readonly config: UnifiedOptions) {
    const hasKey = config.apiKey !== undefined || (typeof process !== 'undefined' && !!process.env.FORKSPACE_API_KEY);
    if (config.mode === 'direct' || (config.mode === 'auto' && hasKey)) this.directClient = new FaaSPlatformClient(config);
    if (config.mode === 'tangle' || config.mode === 'auto') this.tangleClient = config.tangle;
  }

  /** Runs `code` (a command line, as in the seed) by the flow the options call for. */
  async execute(code: string, options: ExecutionOptions = {}): Promise<ExecResult> {
    if (this.shouldUseTangle(options)) return this.executeTangle(code, options);
    return (this.directClient as FaaSPlatformClient).run(code, options);
  }

  /** The seed's rule. */
  shouldUseTangle(options: ExecutionOptions): boolean {
    return !!(options.verifiable || options.decentralized || options.economicIncentives || !this.directClient);
  }

  private executeTangle(code: string, options: ExecutionOptions): Promise<ExecResult> {
    if (this.tangleClient) return this.tangleClient.execute(code, options);
    const why = !this.directClient
      ? this.config.mode === 'tangle'
        ? 'mode is "tangle"'
        : 'no direct client (pass apiKey or set FORKSPACE_API_KEY for the Direct HTTP API)'
      : `the options ask for ${['verifiable', 'decentralized', 'economicIncentives'].filter((k) => options[k as keyof ExecutionOptions]).join(', ')}`;
    throw new TangleNotConfiguredError(
      `Tangle is not configured: this execution needs the Tangle flow (${why}), and no Tangle client is set; pass { tangle } or use mode "direct" without verifiable/decentralized/economicIncentives`,
    );
  }
}
