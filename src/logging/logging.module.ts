import { Module } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { loggingConfig } from '../config/logging.config.js';
import { AccessLogHook } from './access-log.hook.js';
import { stdoutDestination } from './log-destination.js';

let lastMs = 0;
let lastTime = '';

/** pino's isoTime, formatted once per millisecond (every line of a busy millisecond reuses it). */
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export const REDACTED_HEADERS = ['authorization', 'cookie', 'x-api-key'];

@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [loggingConfig.KEY],
      useFactory: (config: ConfigType<typeof loggingConfig>) => ({
        // No pino-http middleware on any route: a child logger per request
        // cost more than the rest of the log line. Nest's own logs go through
        // the root logger; the access line is AccessLogHook's.
        forRoutes: [],
        pinoHttp: [
          {
            level: config.level,
            base: { service: 'api-gateway' },
            timestamp: isoTime,
            formatters: { level: (label: string) => ({ level: label }) },
            redact: {
              paths: REDACTED_HEADERS.flatMap((h) => [
                `req.headers["${h}"]`,
                `headers["${h}"]`,
              ]),
              censor: '[REDACTED]',
            },
            customAttributeKeys: { reqId: 'request_id' },
            quietReqLogger: true,
            quietResLogger: true,
            autoLogging: false,
          },
          stdoutDestination(),
        ],
      }),
    }),
  ],
  providers: [AccessLogHook],
})
export class LoggingModule {}
