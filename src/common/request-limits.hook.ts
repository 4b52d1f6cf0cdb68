import {
  BadRequestException,
  HttpException,
  Injectable,
  OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { SECURITY_HEADERS } from './security-headers.js';

/** Most header fields a request may carry (Apache's LimitRequestFields). */
export const MAX_HEADER_COUNT = 100;

/**
 * Per-request checks Node's parser does not make: too many header fields
 * (431) and an HTTP/1.1 request without Host (400, answered here instead of
 * by Node so it gets the JSON error and a request id). Also puts the security
 * headers on every answer the gateway makes itself; a relayed backend answer
 * (the proxy set `gateway.backend`) passes untouched.
 */
@Injectable()
export class RequestLimitsHook implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('preParsing', (request, _reply, payload, done) => {
      const raw = request.raw;
      if (raw.rawHeaders.length > MAX_HEADER_COUNT * 2) {
        done(
          new HttpException(`more than ${MAX_HEADER_COUNT} header fields`, 431),
        );
        return;
      }
      if (raw.headers.host === undefined && raw.httpVersionMinor === 1) {
        done(new BadRequestException('missing Host header'));
        return;
      }
      done(null, payload);
    });
    fastify.addHook('onSend', (request, reply, payload, done) => {
      if (request.raw.gateway?.backend === undefined) {
        reply.headers(SECURITY_HEADERS);
      }
      done(null, payload);
    });
  }
}
