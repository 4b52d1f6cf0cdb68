import { Module } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { destination, stdTimeFunctions } from 'pino';
import { loggingConfig } from '../config/logging.config.js';
import { AccessLog } from './access-log.js';

export const REDACTED_HEADERS = ['authorization', 'cookie', 'x-api-key'];

@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [loggingConfig.KEY],
      useFactory: (config: ConfigType<typeof loggingConfig>) => ({
        // No pino-http middleware on any route: a child logger per request
        // cost more than the rest of the log line. Nest's own logs go through
        // the root logger; the access line is AccessLog's.
        forRoutes: [],
        pinoHttp: [
          {
            level: config.level,
            base: { service: 'api-gateway' },
            timestamp: stdTimeFunctions.isoTime,
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
          // Buffered asynchronous stdout: a write() per line cost more CPU
          // than the rest of the proxy path. Lines go out in 4 KiB batches,
          // or 200 ms after they were logged at the latest; pino flushes what
          // is left when the process exits.
          destination({
            dest: 1,
            sync: false,
            minLength: 4096,
            periodicFlush: 200,
            maxLength: 16 * 1024 * 1024,
          }),
        ],
      }),
    }),
  ],
  providers: [AccessLog],
  exports: [AccessLog],
})
export class LoggingModule {}
