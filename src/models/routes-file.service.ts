import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { EventEmitter } from 'node:events';
import { WatchedFile } from '../common/watched-file.js';
import { ConfigValidationError } from '../config/env.js';
import { modelsConfig } from '../config/models.config.js';
import {
  parseRoutes,
  RoutesFileError,
  type RoutesSpec,
} from './routes-file.js';

/** How often ROUTES_FILE is checked for changes (a stat; read only when it changed). */
export const ROUTES_FILE_POLL_MS = 500;

interface RoutesEvents {
  /** A new valid file: listeners apply it. */
  change: [spec: RoutesSpec];
  /** A new file that cannot be used: the last good one stays. */
  refused: [errors: string[]];
}

/**
 * ROUTES_FILE: read and validated at boot (a bad file stops the process with
 * one line per problem), then kept current (WatchedFile). A bad new version
 * is refused with a log line and the last good one stays.
 */
@Injectable()
export class RoutesFileService implements OnModuleDestroy {
  readonly events = new EventEmitter<RoutesEvents>();
  private readonly logger = new Logger(RoutesFileService.name);
  private readonly file: WatchedFile<RoutesSpec> | undefined;

  constructor(
    @Inject(modelsConfig.KEY) config: ConfigType<typeof modelsConfig>,
  ) {
    const path = config.routesFile;
    if (path === undefined) return;
    try {
      this.file = new WatchedFile({
        path,
        parse: (text) => parseRoutes(text, path),
        onChange: (spec) => this.events.emit('change', spec),
        onRefused: (err) => this.refused(routesFileError(path, err)),
        pollMs: ROUTES_FILE_POLL_MS,
      });
    } catch (err) {
      throw new ConfigValidationError(routesFileError(path, err).message);
    }
  }

  /** The routes in force; undefined without ROUTES_FILE. */
  current(): RoutesSpec | undefined {
    return this.file?.current;
  }

  onModuleDestroy(): void {
    this.file?.close();
  }

  private refused(err: RoutesFileError): void {
    this.logger.warn(
      { file: err.file, errors: err.errors },
      `routes file refused, keeping the previous routes: ${err.errors[0]}`,
    );
    this.events.emit('refused', err.errors);
  }
}

function routesFileError(file: string, err: unknown): RoutesFileError {
  if (err instanceof RoutesFileError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
  return new RoutesFileError(file, [`cannot be read (${code})`]);
}
