import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { intInRange, parseEnv } from './env.js';

export const SERVER_ENV_DEFAULTS = {
  GATEWAY_PORT: '8080',
  PORT: '',
  HOST: '0.0.0.0',
  ENVIRONMENT: 'production',
  MAX_BODY_BYTES: String(10 * 1024 * 1024),
  MAX_BUFFERED_BODY_BYTES: String(32 * 1024 * 1024),
  KEEP_ALIVE_TIMEOUT_MS: '65000',
  HEADERS_TIMEOUT_MS: '66000',
  REQUEST_TIMEOUT_MS: '120000',
  SHUTDOWN_DELAY_MS: '0',
  SHUTDOWN_TIMEOUT_MS: '30000',
};

const port = intInRange(0, 65535);
const ms = (max: number) => intInRange(0, max);

export const serverConfig = registerAs('server', () => {
  const env = parseEnv(
    {
      GATEWAY_PORT: port,
      HOST: z.string().trim().min(1, 'a host name or IP address'),
      ENVIRONMENT: z.string().trim().min(1, 'a non-empty name'),
      MAX_BODY_BYTES: intInRange(1, 1024 * 1024 * 1024),
      MAX_BUFFERED_BODY_BYTES: intInRange(1, 1024 ** 4),
      KEEP_ALIVE_TIMEOUT_MS: ms(3_600_000),
      HEADERS_TIMEOUT_MS: intInRange(1000, 3_600_000),
      REQUEST_TIMEOUT_MS: ms(3_600_000),
      SHUTDOWN_DELAY_MS: ms(600_000),
      SHUTDOWN_TIMEOUT_MS: ms(600_000),
    },
    SERVER_ENV_DEFAULTS,
  );
  // PORT is the conventional fallback (PaaS, `nest start`) when GATEWAY_PORT is unset.
  const listenPort =
    !process.env.GATEWAY_PORT && process.env.PORT
      ? parseEnv({ PORT: port }, {}).PORT
      : env.GATEWAY_PORT;
  return {
    port: listenPort,
    host: env.HOST,
    environment: env.ENVIRONMENT,
    maxBodyBytes: env.MAX_BODY_BYTES,
    /** Request body bytes held at once, all requests together (read, waiting, forwarded). */
    maxBufferedBodyBytes: env.MAX_BUFFERED_BODY_BYTES,
    keepAliveTimeoutMs: env.KEEP_ALIVE_TIMEOUT_MS,
    // Node wants headersTimeout above keepAliveTimeout and below requestTimeout.
    headersTimeoutMs: Math.max(
      env.HEADERS_TIMEOUT_MS,
      env.KEEP_ALIVE_TIMEOUT_MS + 1000,
    ),
    requestTimeoutMs:
      env.REQUEST_TIMEOUT_MS === 0
        ? 0
        : Math.max(env.REQUEST_TIMEOUT_MS, env.HEADERS_TIMEOUT_MS),
    shutdownDelayMs: env.SHUTDOWN_DELAY_MS,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
  };
});
