import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requestState } from '../common/request-state.js';
import { ApiKeysService } from './api-keys.service.js';

/**
 * The API key check on the gateway's own routes that are not open to all
 * (`GET /`); the prediction path runs the same check as its first stage.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly keys: ApiKeysService) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.keys.enabled) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    this.keys.authenticate(
      request,
      http.getResponse<FastifyReply>(),
      requestState(request),
    );
    return true;
  }
}
