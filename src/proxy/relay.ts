import { Readable } from 'node:stream';
import { REQUEST_ID_HEADER } from '../common/request-id.js';
import type { BackendAnswer } from './backend-call.js';
import type { AttemptFailed } from './backend-errors.js';
import { endToEndHeaders } from './forward-headers.js';
import type { Exchange } from './exchange.js';

/** Sends the backend's answer: a Buffer at once, a stream as it comes. */
export async function relay(
  answer: BackendAnswer,
  exchange: Exchange,
  tryExpired = () => false,
): Promise<void> {
  const { reply, request, state, onAnswer } = exchange.client;
  if (answer.body instanceof Readable) {
    // Once streaming, a backend failure can only cut the client's answer:
    // count it as the 502/504 it is, not as a client abort (499).
    answer.body.once('error', () => {
      if (exchange.cut === 'client') return;
      state.cutStatus = exchange.cut === 'timeout' || tryExpired() ? 504 : 502;
    });
  }
  reply.code(answer.status);
  const headers = endToEndHeaders(answer.headers);
  if (onAnswer) await onAnswer(answer.status, headers, answer.body);
  for (const name in headers) reply.header(name, headers[name]);
  reply.header(REQUEST_ID_HEADER, request.id);
  state.relayed = true;
  await reply.send(answer.body);
}

/** Frees what a failed attempt still holds (a streamed answer not relayed). */
export function discard(failure: AttemptFailed | undefined): void {
  const body = failure?.answer?.body;
  if (body instanceof Readable) body.destroy();
}
