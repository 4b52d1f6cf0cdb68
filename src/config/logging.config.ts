import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { parseEnv } from './env.js';

export const LOGGING_ENV_DEFAULTS = { LOG_LEVEL: 'info' };

export const loggingConfig = registerAs('logging', () => {
  const env = parseEnv(
    {
      LOG_LEVEL: z
        .string()
        .trim()
        .toLowerCase()
        .pipe(
          z.enum([
            'trace',
            'debug',
            'info',
            'warn',
            'error',
            'fatal',
            'silent',
          ]),
        ),
    },
    LOGGING_ENV_DEFAULTS,
  );
  return { level: env.LOG_LEVEL };
});
