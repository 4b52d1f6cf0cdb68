import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { EventEmitter } from 'node:events';
import { unwatchFile, watchFile } from 'node:fs';
import { ConfigValidationError } from '../config/env.js';
import { modelsConfig } from '../config/models.config.js';
import {
  readRoutesFile,
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
 * one line per problem), then polled like API_KEYS_FILE, so the symlink swap
 * of a Kubernetes ConfigMap is seen too. A bad new version is refused with a
 * log line and the last good one stays.
 */
@Injectable()
export class RoutesFileService implements OnModuleDestroy {
  readonly events = new EventEmitter<RoutesEvents>();
  private readonly logger = new Logger(RoutesFileService.name);
  private spec: RoutesSpec | undefined;

  constructor(
    @Inject(modelsConfig.KEY)
    private readonly config: ConfigType<typeof modelsConfig>,
  ) {
    const file = config.routesFile;
    if (file === undefined) return;
    try {
      this.spec = readRoutesFile(file);
    } catch (err) {
      if (err instanceof RoutesFileError)
        throw new ConfigValidationError(err.message);
      throw err;
    }
    watchFile(file, { interval: ROUTES_FILE_POLL_MS, persistent: false }, () =>
      this.reload(file),
    );
  }

  /** The routes in force; undefined without ROUTES_FILE. */
  current(): RoutesSpec | undefined {
    return this.spec;
  }

  onModuleDestroy(): void {
    if (this.config.routesFile !== undefined)
      unwatchFile(this.config.routesFile);
  }

  private reload(file: string): void {
    let spec: RoutesSpec;
    try {
      spec = readRoutesFile(file);
    } catch (err) {
      const errors =
        err instanceof RoutesFileError ? err.errors : [String(err)];
      this.logger.warn(
        { file, errors },
        `routes file refused, keeping the previous routes: ${errors[0]}`,
      );
      this.events.emit('refused', errors);
      return;
    }
    this.spec = spec;
    this.events.emit('change', spec);
  }
}
