import { BACKEND_ENV_DEFAULTS } from './backend.config.js';
import { BATCHING_ENV_DEFAULTS } from './batching.config.js';
import { CACHE_ENV_DEFAULTS } from './cache.config.js';
import { CAPTURE_ENV_DEFAULTS } from './capture.config.js';
import { JWT_ENV_DEFAULTS } from './jwt.config.js';
import { LOGGING_ENV_DEFAULTS } from './logging.config.js';
import { REDIS_ENV_DEFAULTS } from './redis.config.js';
import { MODELS_ENV_DEFAULTS } from './models.config.js';
import { SECURITY_ENV_DEFAULTS } from './security.config.js';
import { SERVER_ENV_DEFAULTS } from './server.config.js';
import { TRACING_ENV_DEFAULTS } from './tracing.config.js';

/** Every environment variable the gateway reads, with its default ('' = unset). */
export const ENV_DEFAULTS: Record<string, string> = {
  ...SERVER_ENV_DEFAULTS,
  ...LOGGING_ENV_DEFAULTS,
  ...BACKEND_ENV_DEFAULTS,
  ...SECURITY_ENV_DEFAULTS,
  ...JWT_ENV_DEFAULTS,
  ...REDIS_ENV_DEFAULTS,
  ...CACHE_ENV_DEFAULTS,
  ...TRACING_ENV_DEFAULTS,
  ...MODELS_ENV_DEFAULTS,
  ...BATCHING_ENV_DEFAULTS,
  ...CAPTURE_ENV_DEFAULTS,
};
