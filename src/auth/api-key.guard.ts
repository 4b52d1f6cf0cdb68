import {
  CanActivate,
  ExecutionContext,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import '../common/request-context.js';
import { presentedKey } from './api-key.js';
import { ApiKeysService } from './api-keys.service.js';
import { IS_PUBLIC } from './public.decorator.js';

const REALM = 'Bearer realm="api-gateway"';

/**
 * With API keys on, every route but `@Public()` ones needs a known key
 * (`Authorization: Bearer` or `X-API-Key`); the key's short id goes on the
 * request for the access log and the rate limiter. Installed only when on
 * (see accessGuards).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly keys: ApiKeysService,
    private readonly reflector: Reflector,
  ) {}

  /** API keys are configured (API_KEYS or API_KEYS_FILE). */
  get enabled(): boolean {
    return this.keys.enabled;
  }

  canActivate(context: ExecutionContext): boolean {
    const isPublic = this.reflector.getAllAndOverride<boolean | undefined>(
      IS_PUBLIC,
      [context.getHandler(), context.getClass()],
    );
    if (isPublic) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const presented = presentedKey(request.headers);
    const id =
      presented === undefined ? undefined : this.keys.identify(presented);
    if (id === undefined) {
      const reply = http.getResponse<FastifyReply>();
      if (presented === undefined) {
        reply.header('www-authenticate', REALM);
        throw new UnauthorizedException(
          'an API key is required (Authorization: Bearer <key> or X-API-Key)',
        );
      }
      reply.header('www-authenticate', `${REALM}, error="invalid_token"`);
      throw new UnauthorizedException('invalid API key');
    }
    (request.raw.gateway ??= {}).keyId = id;
    return true;
  }
}
