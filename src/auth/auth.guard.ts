import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requestState } from '../common/request-state.js';
import { Authenticator } from './authenticator.service.js';

/**
 * The credentials check on the gateway's own routes that are not open to
 * all (`GET /`); the prediction path runs the same check as its first stage.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(private readonly auth: Authenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.auth.enabled) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    await this.auth.authenticate(
      request,
      http.getResponse<FastifyReply>(),
      requestState(request),
    );
    return true;
  }
}
