import { Injectable, UnauthorizedException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestState } from '../common/request-state.js';
import { UnavailableException } from '../common/unavailable.exception.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { bearerCredential, looksLikeJwt } from './api-key.js';
import { ApiKeysService } from './api-keys.service.js';
import {
  JwtVerifier,
  KeysUnavailable,
  TokenRejected,
  type VerifiedToken,
} from './jwt-verifier.service.js';

const REALM = 'Bearer realm="api-gateway"';
/** Retry-After of a 503 while the JWKS endpoint has never answered. */
const KEYS_RETRY_AFTER_S = 1;

/**
 * Who the client is: a JWT bearer token (JWT_JWKS_URL or
 * JWT_PUBLIC_KEY_FILE) or an API key (API_KEYS, API_KEYS_FILE, TENANTS_FILE).
 * With both on, a bearer credential of three base64url parts is checked as
 * a JWT, anything else as an API key. Sets the request's client id, cache
 * scope, tenant and priority; refuses with 401 and an RFC 6750 challenge.
 */
@Injectable()
export class Authenticator {
  /** On when any credential source is set. */
  readonly enabled: boolean;
  private readonly required: string;

  constructor(
    private readonly keys: ApiKeysService,
    private readonly jwt: JwtVerifier,
    private readonly tenants: TenantsService,
  ) {
    this.enabled = keys.enabled || jwt.enabled;
    this.required = keys.enabled
      ? 'credentials are required (Authorization: Bearer <JWT or API key>, or X-API-Key)'
      : 'a bearer token is required (Authorization: Bearer <JWT>)';
  }

  /** Settles at once for an API key or a token verified before; else a promise. */
  authenticate(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
  ): void | Promise<void> {
    if (this.jwt.enabled) {
      const bearer = bearerCredential(request.headers);
      if (bearer !== undefined && looksLikeJwt(bearer)) {
        let verified: VerifiedToken | Promise<VerifiedToken>;
        try {
          verified = this.jwt.verify(bearer);
        } catch (err) {
          throw refusal(reply, err);
        }
        if (!(verified instanceof Promise)) return this.admit(state, verified);
        return verified.then(
          (token) => this.admit(state, token),
          (err: unknown) => {
            throw refusal(reply, err);
          },
        );
      }
      const other = bearer ?? request.headers['x-api-key'];
      if (other === undefined) {
        reply.header('www-authenticate', REALM);
        throw new UnauthorizedException(this.required);
      }
      if (!this.keys.enabled)
        throw refusal(reply, new TokenRejected('not a JWT'));
    }
    this.keys.authenticate(request, reply, state);
    if (this.tenants.enabled)
      this.assign(state, this.tenants.ofKey(state.keyDigest!));
  }

  private admit(state: RequestState, token: VerifiedToken): void {
    state.keyId = token.id;
    state.keyDigest = token.digest;
    if (this.tenants.enabled)
      this.assign(state, this.tenants.named(token.subject));
  }

  /** A listed tenant shares one cache scope; anyone else keeps their own. */
  private assign(state: RequestState, tenant: Tenant): void {
    state.tenant = tenant.name;
    state.priority = tenant.priority;
    if (tenant.listed) state.keyDigest = tenant.scope;
  }
}

/** 401 invalid_token (RFC 6750) or 503 for what verification threw. */
function refusal(reply: FastifyReply, err: unknown): Error {
  if (err instanceof KeysUnavailable)
    return new UnavailableException(err.message, KEYS_RETRY_AFTER_S);
  const description =
    err instanceof TokenRejected ? err.message : 'invalid token';
  reply.header(
    'www-authenticate',
    `${REALM}, error="invalid_token", error_description="${quotable(description)}"`,
  );
  return new UnauthorizedException(`invalid token: ${description}`);
}

/** RFC 6750's error_description: printable ASCII without `"` or `\`. */
function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
}
