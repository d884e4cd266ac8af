// Two connected in-memory transports (the agent's protocol over PassThrough streams, no sockets).
import { Duplex, PassThrough } from 'node:stream';
import { NdjsonTransport } from '../../agent/src/protocol';

export function streamPair(): [Duplex, Duplex] {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const a = Duplex.from({ readable: bToA, writable: aToB });
  const b = Duplex.from({ readable: aToB, writable: bToA });
  return [a, b];
}

export function transportPair(maxMessageBytes?: number): [NdjsonTransport, NdjsonTransport, Duplex] {
  const [a, b] = streamPair();
  return [new NdjsonTransport(a, maxMessageBytes), new NdjsonTransport(b, maxMessageBytes), a];
}
