import {
  Inject,
  Injectable,
  Logger,
  OnModuleDestroy,
  OnModuleInit,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { errors, jwtVerify, type JWTVerifyOptions } from 'jose';
import { LRUCache } from 'lru-cache';
import { hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { configError } from '../config/env.js';
import { jwtConfig } from '../config/jwt.config.js';
import { keyDigest } from './api-key.js';
import { FileKeys, type KeySource, RemoteKeys } from './jwt-keys.js';

/** Verified tokens remembered at most (each until its `exp`). */
export const TOKEN_MEMO_MAX = 10_000;

/** What a verified token says about its bearer. */
export interface VerifiedToken {
  /** The tenant claim's value (JWT_TENANT_CLAIM). */
  readonly subject: string;
  /** SHA-256 of the subject: the client's cache scope. */
  readonly digest: Buffer;
  /** `jwt:` and the digest's first 8 hex digits: the client in logs and rate limits. */
  readonly id: string;
}

/** A token that is not accepted: 401 with `error="invalid_token"` and this description. */
export class TokenRejected extends Error {}

/** No key was ever loaded (the JWKS endpoint has not answered yet): 503. */
export class KeysUnavailable extends Error {}

/**
 * JWT bearer tokens, checked with jose: signature (JWT_ALGORITHMS only,
 * keys from JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE), `exp` (required), `nbf`,
 * `iss`, `aud`, with JWT_CLOCK_TOLERANCE_S, and the tenant claim present.
 * A verified token is remembered by its SHA-256 until its `exp` (or until
 * the keys change), so a client re-sending its token costs one hash, not
 * an RSA verification.
 */
@Injectable()
export class JwtVerifier implements OnModuleInit, OnModuleDestroy {
  readonly enabled: boolean;
  /** `keyFileRefused`: a new JWT_PUBLIC_KEY_FILE could not be used; the last good keys stay. */
  readonly events = new EventEmitter<{ keyFileRefused: [] }>();
  private keys: KeySource | undefined;
  private readonly options: JWTVerifyOptions;
  private readonly memo = new LRUCache<string, VerifiedToken>({
    max: TOKEN_MEMO_MAX,
  });
  private readonly logger = new Logger(JwtVerifier.name);

  constructor(
    @Inject(jwtConfig.KEY)
    private readonly config: ConfigType<typeof jwtConfig>,
  ) {
    this.enabled =
      config.jwksUrl !== undefined || config.publicKeyFile !== undefined;
    this.options = {
      issuer: config.issuers,
      audience: config.audiences,
      algorithms: config.algorithms,
      clockTolerance: config.clockToleranceSeconds,
      requiredClaims: ['exp', config.tenantClaim],
    };
  }

  onModuleInit(): void {
    const { jwksUrl, publicKeyFile } = this.config;
    const forget = () => this.memo.clear();
    if (jwksUrl !== undefined) {
      this.keys = new RemoteKeys(
        jwksUrl,
        this.config.jwksCooldownMs,
        this.config.jwksRefreshMs,
        forget,
      );
    } else if (publicKeyFile !== undefined) {
      try {
        this.keys = new FileKeys(
          publicKeyFile,
          this.config.algorithms,
          forget,
          () => this.events.emit('keyFileRefused'),
        );
      } catch (err) {
        throw configError(
          { JWT_PUBLIC_KEY_FILE: publicKeyFile },
          `a readable PEM public key, certificate or JWKS file (${err instanceof Error ? err.message : 'unreadable'})`,
        );
      }
    }
    if (this.enabled)
      this.logger.log(
        {
          keys: jwksUrl ?? publicKeyFile,
          issuers: this.config.issuers,
          audiences: this.config.audiences,
          algorithms: this.config.algorithms,
        },
        'JWT bearer tokens on',
      );
  }

  onModuleDestroy(): void {
    this.keys?.close();
  }

  /** Fetches made to JWT_JWKS_URL so far (0 with a key file). */
  get jwksFetches(): number {
    return this.keys instanceof RemoteKeys ? this.keys.fetches : 0;
  }

  /**
   * The token's claims, at once when it was verified before; throws (or
   * rejects with) TokenRejected or KeysUnavailable.
   */
  verify(token: string): VerifiedToken | Promise<VerifiedToken> {
    const digest = hash('sha256', token, 'base64');
    return this.memo.get(digest) ?? this.check(token, digest);
  }

  private async check(token: string, digest: string): Promise<VerifiedToken> {
    const keys = this.keys!;
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys.getKey, this.options));
    } catch (err) {
      throw rejection(err, keys.ready);
    }
    const claim = payload[this.config.tenantClaim];
    if (typeof claim !== 'string' && typeof claim !== 'number')
      throw new TokenRejected(
        `the ${this.config.tenantClaim} claim is not a string`,
      );
    const subject = String(claim);
    const subjectDigest = keyDigest(`jwt\0${subject}`);
    const verified: VerifiedToken = {
      subject,
      digest: subjectDigest,
      id: `jwt:${subjectDigest.toString('hex', 0, 4)}`,
    };
    const ttl = payload.exp! * 1000 - Date.now();
    if (ttl > 0) this.memo.set(digest, verified, { ttl });
    return verified;
  }
}

/** What jose's error means for the client: 401 with a short description, or 503. */
function rejection(err: unknown, keysHeld: boolean): Error {
  if (err instanceof errors.JWTExpired)
    return new TokenRejected('the token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing')
      return new TokenRejected(`the token has no ${err.claim} claim`);
    if (err.claim === 'nbf')
      return new TokenRejected('the token is not valid yet');
    if (err.claim === 'iss') return new TokenRejected('unexpected issuer');
    if (err.claim === 'aud') return new TokenRejected('unexpected audience');
    return new TokenRejected(`invalid ${err.claim} claim`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new TokenRejected('algorithm not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return new TokenRejected('invalid signature');
  if (err instanceof errors.JWKSNoMatchingKey)
    return new TokenRejected('no key matches the token');
  if (
    err instanceof errors.JWSInvalid ||
    err instanceof errors.JWTInvalid ||
    err instanceof errors.JOSENotSupported
  )
    return new TokenRejected('malformed token');
  // The key set could not be fetched: with keys held, the token's `kid` is
  // none of them; without, nothing can be checked yet.
  if (!keysHeld)
    return new KeysUnavailable('the token signing keys are not available yet');
  return new TokenRejected('no key matches the token');
}
