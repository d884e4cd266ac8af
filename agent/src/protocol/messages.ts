// Message types are values: each carries its method name, direction and the zod schemas of its params
// and result, so a method string is written exactly once and handlers and callers are typed by it.
import type { z } from 'zod';

export type Direction = 'clientToServer' | 'serverToClient';

/** `P` is what a handler receives (defaults applied), `PIn` what a caller may send. */
export interface RequestType<P, R, PIn = P> {
  readonly kind: 'request';
  readonly method: string;
  readonly direction: Direction;
  readonly params: z.ZodType<P, PIn>;
  readonly result: z.ZodType<R>;
  /** One line for docs and the generated API description. */
  readonly description: string;
}

export interface NotificationType<P> {
  readonly kind: 'notification';
  readonly method: string;
  readonly direction: Direction;
  readonly params: z.ZodType<P>;
  readonly description: string;
}

export function request<P, R, PIn = P>(
  method: string,
  params: z.ZodType<P, PIn>,
  result: z.ZodType<R>,
  description: string,
  direction: Direction = 'clientToServer',
): RequestType<P, R, PIn> {
  return { kind: 'request', method, direction, params, result, description };
}

export function notification<P>(
  method: string,
  params: z.ZodType<P>,
  description: string,
  direction: Direction = 'serverToClient',
): NotificationType<P> {
  return { kind: 'notification', method, direction, params, description };
}

/** What a caller sends. */
export type ParamsOf<T> = T extends RequestType<unknown, unknown, infer PIn> ? PIn : T extends NotificationType<infer P> ? P : never;
export type ResultOf<T> = T extends RequestType<unknown, infer R, unknown> ? R : never;
