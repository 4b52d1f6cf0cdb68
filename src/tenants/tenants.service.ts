import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Priority } from '../common/priority.js';
import { WatchedFile } from '../common/watched-file.js';
import { ConfigValidationError } from '../config/env.js';
import { securityConfig } from '../config/security.config.js';
import {
  DEFAULT_TENANT,
  parseTenants,
  TenantsFileError,
  type TenantsSpec,
} from './tenants-file.js';

/** How often TENANTS_FILE is checked for changes (a stat; read only when it changed). */
export const TENANTS_FILE_POLL_MS = 500;

/** A quota in items per second, and how many may come at once. */
export interface Quota {
  readonly rps: number;
  readonly burst: number;
}

/** A client's tenant: one named in the file, or `default`. */
export interface Tenant {
  readonly name: string;
  readonly listed: boolean;
  /** Undefined: no quota of its own. */
  readonly quota: Quota | undefined;
  readonly priority: Priority;
  /** What scopes its cache entries (CACHE_SCOPE=key): all its clients share them. */
  readonly scope: Buffer;
}

interface Limits {
  rps?: number;
  burst?: number;
  priority: Priority;
}

/**
 * TENANTS_FILE: who the clients are (by API key digest or by a JWT's
 * tenant claim), their quotas in items and their priority class. Read and
 * validated at boot (a bad file stops the process, one line per problem),
 * then kept current: a bad new version is refused with a log line and the
 * last good one stays.
 */
@Injectable()
export class TenantsService implements OnModuleDestroy {
  readonly enabled: boolean;
  /** `change`: a new version is in force (its API keys with it); `refused`: a bad one was not. */
  readonly events = new EventEmitter<{ change: []; refused: [string[]] }>();
  private readonly logger = new Logger(TenantsService.name);
  private readonly file: WatchedFile<TenantsSpec> | undefined;
  private fallback: Tenant = tenantOf(DEFAULT_TENANT, false, {
    priority: 'standard',
  });
  private byName = new Map<string, Tenant>();
  private byKey = new Map<string, Tenant>();
  private digests: Buffer[] = [];

  constructor(
    @Inject(securityConfig.KEY) config: ConfigType<typeof securityConfig>,
  ) {
    const path = config.tenantsFile;
    this.enabled = path !== undefined;
    if (path === undefined) return;
    try {
      this.file = new WatchedFile({
        path,
        parse: (text) => parseTenants(text, path),
        onChange: (spec) => this.use(spec, 'reloaded'),
        onRefused: (err) => {
          const { errors } = tenantsFileError(path, err);
          this.logger.warn(
            { file: path, errors },
            `tenants file refused, keeping the previous tenants: ${errors[0]}`,
          );
          this.events.emit('refused', errors);
        },
        pollMs: TENANTS_FILE_POLL_MS,
      });
    } catch (err) {
      throw new ConfigValidationError(tenantsFileError(path, err).message);
    }
    this.use(this.file.current, 'loaded');
  }

  /** What every client not listed gets. */
  get default(): Tenant {
    return this.fallback;
  }

  /** The tenant a JWT's tenant claim names; `default` when the file does not list it. */
  named(name: string): Tenant {
    return this.byName.get(name) ?? this.fallback;
  }

  /** The tenant whose `apiKeys` list this key (by its SHA-256); else `default`. */
  ofKey(digest: Buffer): Tenant {
    return this.byKey.get(digest.toString('hex')) ?? this.fallback;
  }

  /** The SHA-256 of every key the file lists: accepted as API keys. */
  keyDigests(): readonly Buffer[] {
    return this.digests;
  }

  onModuleDestroy(): void {
    this.file?.close();
  }

  private use(spec: TenantsSpec, verb: string): void {
    const byName = new Map<string, Tenant>();
    const byKey = new Map<string, Tenant>();
    for (const [name, listed] of Object.entries(spec.tenants)) {
      const tenant = tenantOf(name, true, listed);
      byName.set(name, tenant);
      for (const hex of listed.apiKeys) byKey.set(hex, tenant);
    }
    this.fallback = tenantOf(DEFAULT_TENANT, false, spec.default);
    this.byName = byName;
    this.byKey = byKey;
    this.digests = [...byKey.keys()].map((hex) => Buffer.from(hex, 'hex'));
    this.logger.log(
      { tenants: byName.size, api_keys: byKey.size },
      `tenants ${verb}`,
    );
    this.events.emit('change');
  }
}

function tenantOf(name: string, listed: boolean, limits: Limits): Tenant {
  const { rps, burst, priority } = limits;
  return {
    name,
    listed,
    quota:
      rps === undefined
        ? undefined
        : { rps, burst: burst ?? Math.max(1, Math.ceil(rps)) },
    priority,
    scope: createHash('sha256').update(`tenant\0${name}`).digest(),
  };
}

function tenantsFileError(file: string, err: unknown): TenantsFileError {
  if (err instanceof TenantsFileError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
  return new TenantsFileError(file, [`cannot be read (${code})`]);
}
