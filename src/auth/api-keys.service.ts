import {
  Inject,
  Injectable,
  Logger,
  OnModuleDestroy,
  OnModuleInit,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { ConfigValidationError } from '../config/env.js';
import { securityConfig } from '../config/security.config.js';
import { keyDigest, keyId, matchKey } from './api-key.js';

interface KeyEntry {
  digest: Buffer;
  id: string;
}

/** How often API_KEYS_FILE is checked for changes (a stat, no read unless changed). */
export const KEYS_FILE_POLL_MS = 1000;

/**
 * The accepted API keys: API_KEYS plus API_KEYS_FILE (one per line, `#`
 * comments), the file re-read when it changes (polled, so a Kubernetes
 * Secret's symlink swap is seen too). Only digests and short ids are kept.
 */
@Injectable()
export class ApiKeysService implements OnModuleInit, OnModuleDestroy {
  /** Access control is on when either variable is set. */
  readonly enabled: boolean;
  private entries: KeyEntry[] = [];
  private readonly logger = new Logger(ApiKeysService.name);

  constructor(
    @Inject(securityConfig.KEY)
    private readonly config: ConfigType<typeof securityConfig>,
  ) {
    this.enabled =
      config.apiKeys.length > 0 || config.apiKeysFile !== undefined;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    const file = this.config.apiKeysFile;
    let fromFile: string[] = [];
    if (file !== undefined) {
      try {
        fromFile = readKeys(file);
      } catch {
        throw new ConfigValidationError(
          `Invalid configuration: API_KEYS_FILE=${JSON.stringify(file)}; allowed: a readable file with one key per line`,
        );
      }
      watchFile(file, { interval: KEYS_FILE_POLL_MS, persistent: false }, () =>
        this.reload(file),
      );
    }
    this.use(fromFile, 'loaded');
  }

  onModuleDestroy(): void {
    if (this.config.apiKeysFile !== undefined)
      unwatchFile(this.config.apiKeysFile);
  }

  /** The short id of the key when it is one of ours, in constant time. */
  identify(presented: string): string | undefined {
    return matchKey(presented, this.entries)?.id;
  }

  private reload(file: string): void {
    try {
      this.use(readKeys(file), 'reloaded');
    } catch (err) {
      // Keep the last good set: a file mid-rotation must not lock everyone out.
      this.logger.warn(
        { file, error: (err as NodeJS.ErrnoException).code ?? 'unreadable' },
        'API keys file unreadable, keeping the previous keys',
      );
    }
  }

  private use(fromFile: string[], verb: string): void {
    const keys = [...new Set([...this.config.apiKeys, ...fromFile])];
    this.entries = keys.map((key) => ({
      digest: keyDigest(key),
      id: keyId(key),
    }));
    this.logger.log(
      { keys: this.entries.length, key_ids: this.entries.map((e) => e.id) },
      `API keys ${verb}`,
    );
  }
}

function readKeys(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
