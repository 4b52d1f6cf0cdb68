import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
  NotFoundException,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorAnswer } from './json-error.js';
import { UnavailableException } from './unavailable.exception.js';
import { HTTP_METHODS, pathOf } from './request-labels.js';

/**
 * Maps every error (Nest HttpExceptions, Fastify's own errors such as 413 or
 * 400, unknown failures) to the one JSON error shape, with the request id in
 * body and header. A 404 on a path that exists for other methods becomes
 * 405 + Allow.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpExceptionFilter.name);

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    let { status, message } = describe(exception);
    const code =
      exception instanceof HttpException ? exception.errorCode : undefined;
    if (status >= 500 && !(exception instanceof HttpException)) {
      this.logger.error({ err: exception }, 'unhandled error');
    }
    if (exception instanceof NotFoundException && !request.routeOptions.url) {
      const allowed = this.allowedMethods(request.url);
      if (allowed.length > 0) {
        status = HttpStatus.METHOD_NOT_ALLOWED;
        message = `Method ${request.method} not allowed on this path`;
        reply.header('allow', allowed.join(', '));
      } else {
        message = `Cannot ${request.method} ${pathOf(request.url).slice(0, 100)}`;
      }
    }
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    if (exception instanceof UnavailableException)
      reply.header('retry-after', String(exception.retryAfterSeconds));
    const { body, headers } = errorAnswer(status, message, request.id, code);
    void reply.code(status).headers(headers).send(body);
  }

  private allowedMethods(url: string): string[] {
    const instance =
      this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    const path = pathOf(url);
    return HTTP_METHODS.filter((method) =>
      instance.hasRoute({ method, url: path }),
    );
  }
}

function describe(exception: unknown): { status: number; message: string } {
  if (exception instanceof HttpException) {
    const response = exception.getResponse();
    const message =
      typeof response === 'string'
        ? response
        : typeof response === 'object' && 'message' in response
          ? String(response.message)
          : exception.message;
    return { status: exception.getStatus(), message };
  }
  // Fastify's own errors (body too large, bad content length, ...) carry statusCode.
  if (exception instanceof Error && 'statusCode' in exception) {
    const status = Number(exception.statusCode);
    if (status >= 400 && status < 500)
      return { status, message: exception.message };
  }
  return {
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    message: 'Internal server error',
  };
}
