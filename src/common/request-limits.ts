import { BadRequestException, HttpException, HttpStatus } from '@nestjs/common';
import type { onSendHookHandler, preParsingHookHandler } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { requestState } from './request-state.js';
import { SECURITY_HEADERS } from './security-headers.js';

/** Most header fields a request may carry (Apache's LimitRequestFields). */
export const MAX_HEADER_COUNT = 100;

/**
 * RFC 9112 §3.2 / RFC 3986 §3.2.2: a reg-name or an IP literal, an optional
 * port. Duplicate Host lines arrive joined by ", " (the server's
 * `joinDuplicateHeaders`), which this refuses too.
 */
const VALID_HOST =
  /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/;

const FINAL_CHUNKED = /(?:^|,)[ \t]*chunked$/i;

/**
 * Fastify preParsing hook: per-request checks Node's parser does not make:
 * too many header fields (431); an HTTP/1.1 request without Host, or any
 * request with several Host lines or an invalid one (400, RFC 9112 §3.2);
 * HTTP/0.9 (400); a transfer coding before chunked, which the gateway would
 * forward still encoded (501, RFC 9112 §6.1), or a Transfer-Encoding not
 * ending in chunked (400). Answered here, not by Node, so they get the JSON
 * error and a request id. The body is not read: the connection closes
 * instead of Node reading (and discarding) a body of any size.
 */
export const checkRequestHead: preParsingHookHandler = (
  request,
  reply,
  payload,
  done,
) => {
  const refused = refusal(request.raw);
  if (refused === null) {
    done(null, payload);
    return;
  }
  reply.header('connection', 'close');
  done(refused);
};

/**
 * Fastify onSend hook: the security headers on every answer the gateway
 * makes itself. A relayed backend answer passes untouched, and a cache hit
 * is written past Fastify's send, so no onSend hook sees it.
 */
export const addSecurityHeaders: onSendHookHandler = (
  request,
  reply,
  payload,
  done,
) => {
  if (!requestState(request).relayed) reply.headers(SECURITY_HEADERS);
  done(null, payload);
};

function refusal(raw: IncomingMessage): HttpException | null {
  if (raw.rawHeaders.length > MAX_HEADER_COUNT * 2) {
    return new HttpException(
      `more than ${MAX_HEADER_COUNT} header fields`,
      431,
    );
  }
  const host = raw.headers.host;
  if (host === undefined ? raw.httpVersionMinor === 1 : !VALID_HOST.test(host))
    return new BadRequestException(
      host === undefined ? 'missing Host header' : 'invalid Host header',
    );
  if (raw.httpVersionMajor === 0)
    return new BadRequestException('HTTP/0.9 is not supported');
  const coding = raw.headers['transfer-encoding'];
  if (coding !== undefined && coding.toLowerCase() !== 'chunked') {
    // Chunked not last: no reliable length (400); another coding before it
    // would reach the backend still encoded (501).
    return FINAL_CHUNKED.test(coding)
      ? new HttpException(
          'Transfer-Encoding other than chunked is not supported',
          HttpStatus.NOT_IMPLEMENTED,
        )
      : new BadRequestException('invalid Transfer-Encoding');
  }
  return null;
}
