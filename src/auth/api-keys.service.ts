import {
  Inject,
  Injectable,
  Logger,
  OnModuleDestroy,
  OnModuleInit,
  UnauthorizedException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestState } from '../common/request-state.js';
import { WatchedFile } from '../common/watched-file.js';
import { configError } from '../config/env.js';
import { securityConfig } from '../config/security.config.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { keyDigest, matchKey, presentedKey } from './api-key.js';

interface KeyEntry {
  digest: Buffer;
  id: string;
}

/** How often API_KEYS_FILE is checked for changes (a stat, no read unless changed). */
export const KEYS_FILE_POLL_MS = 1000;

const REALM = 'Bearer realm="api-gateway"';

/**
 * The accepted API keys: API_KEYS plus API_KEYS_FILE (one per line, `#`
 * comments) plus the keys TENANTS_FILE lists (by digest), the files kept
 * current. Only digests and short ids are kept. `authenticate` is the key
 * check of the prediction path and of the gateway's own non-public routes.
 */
@Injectable()
export class ApiKeysService implements OnModuleInit, OnModuleDestroy {
  /** Access control is on when either variable is set. */
  readonly enabled: boolean;
  private entries: KeyEntry[] = [];
  private file: WatchedFile<string[]> | undefined;
  private readonly logger = new Logger(ApiKeysService.name);

  constructor(
    @Inject(securityConfig.KEY)
    private readonly config: ConfigType<typeof securityConfig>,
    private readonly tenants: TenantsService,
  ) {
    this.enabled =
      config.apiKeys.length > 0 ||
      config.apiKeysFile !== undefined ||
      tenants.enabled;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    const path = this.config.apiKeysFile;
    if (path !== undefined) {
      try {
        this.file = new WatchedFile({
          path,
          parse: keysOf,
          onChange: (keys) => this.use(keys, 'reloaded'),
          // Keep the last good set: a file mid-rotation must not lock everyone out.
          onRefused: (err) =>
            this.logger.warn(
              {
                file: path,
                error: (err as NodeJS.ErrnoException).code ?? 'unreadable',
              },
              'API keys file unreadable, keeping the previous keys',
            ),
          pollMs: KEYS_FILE_POLL_MS,
        });
      } catch {
        throw configError(
          { API_KEYS_FILE: path },
          'a readable file with one key per line',
        );
      }
    }
    this.use(this.file?.current ?? [], 'loaded');
    this.tenants.events.on('change', () =>
      this.use(this.file?.current ?? [], 'reloaded'),
    );
  }

  onModuleDestroy(): void {
    this.file?.close();
  }

  /**
   * A known key (`Authorization: Bearer` or `X-API-Key`), else 401 with
   * `WWW-Authenticate`; the key's short id and digest go on the request's
   * state (access log, rate limit, cache scope).
   */
  authenticate(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
  ): void {
    const presented = presentedKey(request.headers);
    const digest = presented === undefined ? undefined : keyDigest(presented);
    const entry = digest && matchKey(digest, this.entries);
    if (entry) {
      state.keyId = entry.id;
      state.keyDigest = digest;
      return;
    }
    if (presented === undefined) {
      reply.header('www-authenticate', REALM);
      throw new UnauthorizedException(
        'an API key is required (Authorization: Bearer <key> or X-API-Key)',
      );
    }
    reply.header('www-authenticate', `${REALM}, error="invalid_token"`);
    throw new UnauthorizedException('invalid API key');
  }

  private use(fromFile: string[], verb: string): void {
    const byDigest = new Map<string, KeyEntry>();
    const add = (digest: Buffer) => {
      const hex = digest.toString('hex');
      byDigest.set(hex, { digest, id: hex.slice(0, 8) });
    };
    for (const key of [...this.config.apiKeys, ...fromFile])
      add(keyDigest(key));
    for (const digest of this.tenants.keyDigests()) add(digest);
    this.entries = [...byDigest.values()];
    this.logger.log(
      { keys: this.entries.length, key_ids: this.entries.map((e) => e.id) },
      `API keys ${verb}`,
    );
  }
}

function keysOf(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
