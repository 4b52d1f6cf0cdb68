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
 * response. Errors get the header from the exception filter, so every
 * response carries it.
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
