// A private agent + runtime with its Direct HTTP API, an API key made through the agent (as `forkspace
// keys create` does), and SDK clients on it.
import { KeyCreate } from '../../agent/src/protocol';
import { FaaSPlatformClient, type ClientOptions } from '../../sdk/ts/src';
import { useHttpStack, type HttpStack } from '../integration/httpStack';

export interface SdkStack extends HttpStack {
  apiKey(): string;
  /** A client on the stack with its API key (retries fast, so tests do not wait on backoff). */
  sdk(options?: ClientOptions): FaaSPlatformClient;
}

export function useSdkStack(env: NodeJS.ProcessEnv = {}): SdkStack {
  const h = useHttpStack(env);
  let key = '';
  before(async () => {
    key = (await h.client().request(KeyCreate, { name: 'sdk-tests' })).secret;
  });
  return {
    ...h,
    apiKey: () => key,
    sdk: (options = {}) => new FaaSPlatformClient({ apiKey: key, platformUrl: h.url(), retry: { baseDelayMs: 20, maxDelayMs: 200 }, ...options }),
  };
}
