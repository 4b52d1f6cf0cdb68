import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { intInRange, parseEnv } from './env.js';

export const MODELS_ENV_DEFAULTS = {
  ROUTES_FILE: '',
  STICKY_BY: 'none',
  MIRROR_MAX_INFLIGHT: '64',
  MIRROR_MAX_BYTES: String(32 * 1024 * 1024),
};

/** `none`, `api_key`, or the name of the header whose value identifies a client. */
const stickyBy = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'none, api_key or a header name');

export const modelsConfig = registerAs('models', () => {
  const env = parseEnv(
    {
      ROUTES_FILE: z.string().trim(),
      STICKY_BY: stickyBy,
      MIRROR_MAX_INFLIGHT: intInRange(0, 100_000),
      MIRROR_MAX_BYTES: intInRange(0, 1024 ** 4),
    },
    MODELS_ENV_DEFAULTS,
  );
  return {
    /** Unset: BACKEND_URL(S) is one implicit model, without model routing. */
    routesFile: env.ROUTES_FILE || undefined,
    stickyBy: env.STICKY_BY,
    mirrorMaxInflight: env.MIRROR_MAX_INFLIGHT,
    /** Request and answer bytes held by shadow copies at most; over it a copy is skipped. */
    mirrorMaxBytes: env.MIRROR_MAX_BYTES,
  };
});
