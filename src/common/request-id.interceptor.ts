import {
  CallHandler,
  ExecutionContext,
  Injectable,
  NestInterceptor,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { REQUEST_ID_HEADER } from './request-id.js';

/**
 * Echoes the request id (chosen by `genReqId` when the request arrived) on the
 * answers of the gateway's own controllers (health, metrics, index). The
 * proxy route sets it itself as it relays (a global interceptor cost that
 * route ~100 us of CPU per request), and errors get it from the exception
 * filter, so every response carries it.
 */
@Injectable()
export class RequestIdInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    http.getResponse<FastifyReply>().header(REQUEST_ID_HEADER, request.id);
    return next.handle();
  }
}
