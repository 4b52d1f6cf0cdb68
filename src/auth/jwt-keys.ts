import { Logger } from '@nestjs/common';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  type RemoteJWKSet,
} from 'jose';
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { fetch } from 'undici';
import { WatchedFile } from '../common/watched-file.js';

/** How long one JWKS fetch may take. */
const JWKS_TIMEOUT_MS = 5000;
/** While no key is held, a fetch is tried at most this often (first use, then per request). */
const NO_KEYS_RETRY_MS = 1000;
/** How often JWT_PUBLIC_KEY_FILE is checked for changes. */
export const KEY_FILE_POLL_MS = 1000;

/** Where verification finds a token's key, kept current. */
export interface KeySource {
  /** jose's key lookup (by `kid` and `alg`). */
  readonly getKey: JWTVerifyGetKey;
  /** False while no key was ever loaded (the JWKS endpoint never answered). */
  readonly ready: boolean;
  close(): void;
}

/** Refused by the fetch gate: a fetch was tried less than a cooldown ago. */
class CoolingDown extends Error {}

/**
 * JWT_JWKS_URL through jose's remote key set: fetched at boot, kept in
 * memory with no expiry (so keys already held keep working while the
 * endpoint is down) and refetched in the background every refresh period.
 * jose refetches on an unknown `kid` once its cooldown since the last good
 * fetch has passed; the gate below also holds back fetches after a failed
 * one, so forged tokens cannot make a storm of fetches against an endpoint
 * that is down. `onChange` is called when a fetch brought a different set.
 */
export class RemoteKeys implements KeySource {
  private readonly set: RemoteJWKSet;
  private readonly timer: NodeJS.Timeout;
  private readonly logger = new Logger('JwtVerifier');
  private lastAttempt = -Infinity;
  private held = '';
  /** Fetches made (tried), for tests and the log. */
  fetches = 0;

  constructor(
    private readonly url: string,
    private readonly cooldownMs: number,
    refreshMs: number,
    private readonly onChange: () => void,
  ) {
    const gated: FetchImplementation = (target, init) =>
      this.fetch(target, init);
    this.set = createRemoteJWKSet(new URL(url), {
      cooldownDuration: cooldownMs,
      cacheMaxAge: Infinity,
      timeoutDuration: JWKS_TIMEOUT_MS,
      [customFetch]: gated,
    });
    this.timer = setInterval(() => void this.refresh(), refreshMs);
    this.timer.unref();
    void this.refresh();
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await this.set(header, token);
    } finally {
      this.noticeChange();
    }
  };

  get ready(): boolean {
    return this.held !== '';
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** A background fetch: always allowed; a failure keeps the keys held. */
  private async refresh(): Promise<void> {
    this.lastAttempt = -Infinity;
    try {
      await this.set.reload();
    } catch (err) {
      this.logger.warn(
        { jwks_url: this.url, error: describe(err), keys_held: this.ready },
        this.ready
          ? 'JWKS fetch failed, keeping the keys held'
          : 'JWKS fetch failed, no key held yet',
      );
    }
    this.noticeChange();
  }

  private fetch(
    target: string,
    init: Parameters<FetchImplementation>[1],
  ): Promise<Response> {
    const now = performance.now();
    const gap = this.ready ? this.cooldownMs : NO_KEYS_RETRY_MS;
    if (now - this.lastAttempt < gap)
      return Promise.reject(new CoolingDown('JWKS fetch cooling down'));
    this.lastAttempt = now;
    this.fetches++;
    // undici's fetch (Node 20's global one is an older undici): jose reads
    // the answer through the standard Response interface it implements.
    const answer = fetch(target, {
      method: init.method,
      redirect: init.redirect,
      signal: init.signal,
      headers: Object.fromEntries(init.headers),
    });
    return answer as unknown as Promise<Response>;
  }

  private noticeChange(): void {
    const jwks = this.set.jwks();
    if (jwks === undefined) return;
    const text = JSON.stringify(jwks);
    if (text === this.held) return;
    const first = this.held === '';
    this.held = text;
    this.logger.log(
      { jwks_url: this.url, keys: jwks.keys.length, kids: kidsOf(jwks) },
      first ? 'JWKS loaded' : 'JWKS changed',
    );
    if (!first) this.onChange();
  }
}

/**
 * JWT_PUBLIC_KEY_FILE: a PEM public key (or certificate), a JWKS, or one
 * JWK, read at boot (unusable: the process stops) and re-read when it
 * changes (unusable then: the last good keys stay).
 */
export class FileKeys implements KeySource {
  readonly ready = true;
  private readonly file: WatchedFile<JWTVerifyGetKey>;
  private readonly logger = new Logger('JwtVerifier');

  constructor(
    path: string,
    algorithms: readonly string[],
    onChange: () => void,
    onRefused: () => void,
  ) {
    this.file = new WatchedFile({
      path,
      parse: (text) => keysOf(text, algorithms),
      onChange: () => {
        this.logger.log({ file: path }, 'JWT public key file reloaded');
        onChange();
      },
      onRefused: (err) => {
        this.logger.warn(
          { file: path, error: describe(err) },
          'JWT public key file refused, keeping the previous keys',
        );
        onRefused();
      },
      pollMs: KEY_FILE_POLL_MS,
    });
  }

  readonly getKey: JWTVerifyGetKey = (header, token) =>
    this.file.current(header, token);

  close(): void {
    this.file.close();
  }
}

/** A key file's text as a key lookup; throws with a short reason when it cannot be used. */
export function keysOf(
  text: string,
  algorithms: readonly string[],
): JWTVerifyGetKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const json = JSON.parse(trimmed) as Partial<JSONWebKeySet>;
    const set = Array.isArray(json.keys)
      ? (json as JSONWebKeySet)
      : ({ keys: [json] } as JSONWebKeySet);
    if (set.keys.some((key) => 'd' in key || key.kty === 'oct'))
      throw new Error('a public key set (no private or symmetric keys)');
    return createLocalJWKSet(set);
  }
  if (/PRIVATE KEY-----/.test(trimmed))
    throw new Error('a public key, not a private key');
  const key = /BEGIN CERTIFICATE/.test(trimmed)
    ? new X509Certificate(trimmed).publicKey
    : createPublicKey(trimmed);
  const fits = algorithmsFor(key).filter((alg) => algorithms.includes(alg));
  if (fits.length === 0)
    throw new Error(
      `a key for one of JWT_ALGORITHMS (${algorithms.join(',')}); this one is ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  return (header) => {
    if (!fits.includes(header.alg ?? ''))
      throw new errors.JOSEAlgNotAllowed(
        '"alg" (Algorithm) Header Parameter value not allowed',
      );
    return key;
  };
}

function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      return curve === 'secp521r1' ? ['ES512'] : [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

function kidsOf(jwks: JSONWebKeySet): string[] {
  return jwks.keys.map((key) => key.kid ?? '(none)').slice(0, 20);
}

function describe(err: unknown): string {
  if (err instanceof errors.JWKSTimeout) return 'timeout';
  const cause = (err as { cause?: { code?: string } }).cause?.code;
  return cause ?? (err instanceof Error ? err.message : 'failed');
}
