import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { httpUrl } from './backend.config.js';
import { configError, intInRange, parseEnv } from './env.js';

export const JWT_ENV_DEFAULTS = {
  JWT_JWKS_URL: '',
  JWT_PUBLIC_KEY_FILE: '',
  JWT_ISSUER: '',
  JWT_AUDIENCE: '',
  JWT_ALGORITHMS: 'RS256,ES256',
  JWT_CLOCK_TOLERANCE_S: '30',
  JWT_TENANT_CLAIM: 'sub',
  JWT_JWKS_COOLDOWN_MS: '30000',
  JWT_JWKS_REFRESH_MS: '600000',
};

/** Asymmetric JWS algorithms only: never `none`, never an HMAC (HS*) with a public key. */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

const list = (raw: string) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

export const jwtConfig = registerAs('jwt', () => {
  const env = parseEnv(
    {
      JWT_JWKS_URL: z.union([z.literal(''), httpUrl]),
      JWT_PUBLIC_KEY_FILE: z.string().trim(),
      JWT_ISSUER: z.string(),
      JWT_AUDIENCE: z.string(),
      JWT_ALGORITHMS: z.string(),
      JWT_CLOCK_TOLERANCE_S: intInRange(0, 3600),
      JWT_TENANT_CLAIM: z
        .string()
        .trim()
        .regex(/^[^\s,]{1,200}$/, 'a claim name (no spaces or commas)'),
      JWT_JWKS_COOLDOWN_MS: intInRange(0, 3_600_000),
      JWT_JWKS_REFRESH_MS: intInRange(1000, 86_400_000),
    },
    JWT_ENV_DEFAULTS,
  );
  if (env.JWT_JWKS_URL && env.JWT_PUBLIC_KEY_FILE)
    throw configError(
      { JWT_PUBLIC_KEY_FILE: env.JWT_PUBLIC_KEY_FILE },
      'unset when JWT_JWKS_URL is set (one key source)',
    );
  const enabled = Boolean(env.JWT_JWKS_URL || env.JWT_PUBLIC_KEY_FILE);
  const issuers = list(env.JWT_ISSUER);
  const audiences = list(env.JWT_AUDIENCE);
  for (const [name, values] of [
    ['JWT_ISSUER', issuers],
    ['JWT_AUDIENCE', audiences],
  ] as const)
    if (enabled && values.length === 0)
      throw configError(
        { [name]: undefined },
        'required with JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE (comma-separated values)',
      );
  const algorithms = list(env.JWT_ALGORITHMS);
  const allowed = new Set<string>(JWT_ALGORITHMS);
  if (algorithms.length === 0 || !algorithms.every((a) => allowed.has(a)))
    throw configError(
      { JWT_ALGORITHMS: env.JWT_ALGORITHMS },
      `comma-separated asymmetric algorithms among ${JWT_ALGORITHMS.join(', ')} (never none or HS*)`,
    );
  return {
    /** A JWKS endpoint (fetched, cached, refreshed) ... */
    jwksUrl: env.JWT_JWKS_URL || undefined,
    /** ... or a PEM public key or JWKS file, re-read when it changes. */
    publicKeyFile: env.JWT_PUBLIC_KEY_FILE || undefined,
    issuers,
    audiences,
    algorithms,
    clockToleranceSeconds: env.JWT_CLOCK_TOLERANCE_S,
    /** The claim naming the tenant (TENANTS_FILE) and the client (rate limit, cache scope). */
    tenantClaim: env.JWT_TENANT_CLAIM,
    /** An unknown `kid` refetches the JWKS at most this often. */
    jwksCooldownMs: env.JWT_JWKS_COOLDOWN_MS,
    /** The JWKS is refetched in the background this often. */
    jwksRefreshMs: env.JWT_JWKS_REFRESH_MS,
  };
});
