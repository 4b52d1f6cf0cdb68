import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { configError, intInRange, parseEnv } from './env.js';

export const BATCHING_ENV_DEFAULTS = {
  BATCH_MAX_SIZE: '0',
  BATCH_MAX_DELAY_MS: '0',
  BATCH_ITEM: '/request/text',
  BATCH_PATH: '/batch_predict',
  BATCH_ITEMS: '/request/texts',
  BATCH_RESULTS: '/results',
};

/** A JSON pointer (RFC 6901): empty, or `/` tokens with `~0`/`~1` escapes. */
export const jsonPointer = z
  .string()
  .trim()
  .regex(
    /^(\/([^~/]|~[01])*)*$/,
    'a JSON pointer (RFC 6901), e.g. /request/text',
  );

/** A backend path. */
export const backendPath = z
  .string()
  .trim()
  .regex(/^\/[^\s?#]*$/, 'a path starting with /');

export const batchingConfig = registerAs('batching', () => {
  const env = parseEnv(
    {
      BATCH_MAX_SIZE: intInRange(0, 100),
      BATCH_MAX_DELAY_MS: intInRange(0, 1000),
      BATCH_ITEM: jsonPointer,
      BATCH_PATH: backendPath,
      BATCH_ITEMS: jsonPointer,
      BATCH_RESULTS: jsonPointer,
    },
    BATCHING_ENV_DEFAULTS,
  );
  if (env.BATCH_MAX_SIZE === 1)
    throw configError(
      { BATCH_MAX_SIZE: env.BATCH_MAX_SIZE },
      '0 (off) or an integer from 2 to 100',
    );
  for (const name of ['BATCH_ITEM', 'BATCH_ITEMS'] as const)
    if (env[name] === '')
      throw configError(
        { [name]: env[name] },
        'a JSON pointer naming a member, e.g. /request/text',
      );
  return {
    /** Most items in one backend call; 0: batching off. */
    maxSize: env.BATCH_MAX_SIZE,
    /** How long the first item of a batch may wait for company. */
    maxDelayMs: env.BATCH_MAX_DELAY_MS,
    /** Where each backend's batch endpoint is, and where the items and results go. */
    endpoint: {
      item: env.BATCH_ITEM,
      path: env.BATCH_PATH,
      items: env.BATCH_ITEMS,
      results: env.BATCH_RESULTS,
    },
  };
});

/** A batch endpoint's shape: the env's, or a model version's from the routes file. */
export type BatchEndpoint = ReturnType<typeof batchingConfig>['endpoint'];
