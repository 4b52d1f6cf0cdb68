import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { UNMATCHED_ROUTE } from '../common/request-labels.js';
import type { CacheResult, RequestState } from '../common/request-state.js';
import { cacheConfig } from '../config/cache.config.js';
import { securityConfig } from '../config/security.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { RedisService } from '../redis/redis.service.js';
import { ageSeconds, SERVED_HEADERS, writeHit } from './cache-hit.js';
import { CacheKeys } from './cache-key.js';
import {
  freshnessMs,
  type RequestDirective,
  requestDirective,
} from './cache-policy.js';
import {
  type CachedAnswer,
  type CacheStore,
  MemoryCacheStore,
  RedisCacheStore,
} from './cache.store.js';
import { Flight } from './flight.js';
import { keepCopy } from './keep-copy.js';

/**
 * Takes the backend's answer to a request that missed, before it is sent: a
 * streamed answer comes back as the stream to relay, which keeps a copy.
 */
export type CacheFill = (
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer | Readable,
) => Promise<Readable | void>;

/** The rest of the prediction path, given a fill when the answer may be stored. */
type Forward<R> = (fill?: CacheFill) => Promise<R | undefined> | undefined;

const X_CACHE: Record<CacheResult, string> = {
  hit: 'HIT',
  miss: 'MISS',
  error: 'MISS',
  bypass: 'BYPASS',
};

/**
 * Inference response cache for POST /predict and /batch_predict (on when
 * CACHE_TTL_SECONDS > 0): in memory per pod, or in the shared Redis, keyed
 * by CacheKeys, fresh as long as RFC 9111 and CACHE_TTL_SECONDS allow.
 * Identical misses in one pod make one backend call (single flight). A
 * stage of the prediction path: `through` answers a hit, or calls the rest
 * of the path with a fill that stores its answer.
 */
@Injectable()
export class CacheService {
  readonly enabled: boolean;
  private readonly store: CacheStore | undefined;
  private readonly keys: CacheKeys;
  private readonly ttlMs: number;
  private readonly flights = new Map<string, Flight>();

  constructor(
    @Inject(cacheConfig.KEY)
    private readonly config: ConfigType<typeof cacheConfig>,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
    private readonly redis: RedisService,
    private readonly metrics: MetricsService,
  ) {
    this.enabled = config.ttlSeconds > 0;
    this.ttlMs = config.ttlSeconds * 1000;
    this.keys = new CacheKeys(
      config.keyHeaders,
      security.credentialHeaders,
      config.maxBodyBytes,
    );
    if (!this.enabled) return;
    this.store = redis.client
      ? new RedisCacheStore(redis.client, `${redis.keyPrefix}cache:`)
      : new MemoryCacheStore({
          maxEntries: config.maxEntries,
          maxBytes: config.maxBytes,
        });
  }

  /** Requests waiting for an identical request's backend call. */
  get waiting(): number {
    let waiters = 0;
    for (const flight of this.flights.values()) waiters += flight.waiters;
    return waiters;
  }

  /**
   * Answers from the cache, or calls `forward` (with a fill to hand the
   * backend's answer to) and shares its outcome with identical requests that
   * arrived meanwhile. Errors of the leading call are each waiter's error.
   * A hit of the memory store is answered without awaiting anything; the
   * outcome of a hit is the stored answer (`state.cache` is 'hit').
   */
  through<R>(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    forward: Forward<R>,
  ): Promise<R | CachedAnswer | undefined> | undefined {
    const endpoint = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const directive = requestDirective(request.headers);
    const key =
      directive?.kind === 'no-store'
        ? undefined
        : this.keys.of(
            request,
            this.config.scope === 'key' ? state.keyDigest : undefined,
            state.keyDigest !== undefined,
          );
    if (key === undefined) {
      this.count(state, reply, endpoint, 'bypass');
      return forward();
    }
    if (directive?.kind === 'no-cache')
      return this.lead(key, state, reply, endpoint, 'miss', forward);
    const flight = this.flights.get(key);
    if (flight)
      return this.follow(flight, request, reply, state, endpoint, forward);
    let found: CachedAnswer | undefined | Promise<CachedAnswer | undefined>;
    try {
      found = this.store!.get(key);
    } catch (err) {
      return this.failed(err, key, request, reply, state, endpoint, forward);
    }
    const answer = (stored: CachedAnswer | undefined) =>
      this.answer(
        stored,
        directive,
        key,
        request,
        reply,
        state,
        endpoint,
        forward,
      );
    if (!(found instanceof Promise)) return answer(found);
    return found.then(answer, (err: unknown) =>
      this.failed(err, key, request, reply, state, endpoint, forward),
    );
  }

  /** A stored answer fresh enough for the request is a hit; else the backend is asked. */
  private answer<R>(
    found: CachedAnswer | undefined,
    directive: RequestDirective | undefined,
    key: string,
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    endpoint: string,
    forward: Forward<R>,
  ): Promise<R | CachedAnswer | undefined> | undefined {
    if (
      found &&
      !(directive?.kind === 'max-age' && ageSeconds(found) > directive.seconds)
    ) {
      this.note(state, endpoint, 'hit');
      state.bytes = found.body.length;
      writeHit(request, reply, found);
      return Promise.resolve(found);
    }
    const late = this.flights.get(key);
    if (late)
      return this.follow(late, request, reply, state, endpoint, forward);
    return this.lead(key, state, reply, endpoint, 'miss', forward);
  }

  /** The store could not answer (Redis down or slow): a miss, counted as an error. */
  private failed<R>(
    err: unknown,
    key: string,
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    endpoint: string,
    forward: Forward<R>,
  ): Promise<R | CachedAnswer | undefined> {
    this.redis.failed('cache_get', err);
    const late = this.flights.get(key);
    if (late)
      return this.follow(late, request, reply, state, endpoint, forward);
    return this.lead(key, state, reply, endpoint, 'error', forward);
  }

  private async lead<R>(
    key: string,
    state: RequestState,
    reply: FastifyReply,
    endpoint: string,
    result: CacheResult,
    forward: Forward<R>,
  ): Promise<R | undefined> {
    // A no-cache refresh next to a running flight does not replace it.
    const flight = this.flights.has(key) ? undefined : new Flight();
    if (flight) this.flights.set(key, flight);
    this.count(state, reply, endpoint, result);
    try {
      return await forward((status, headers, body) =>
        this.fill(key, flight, status, headers, body),
      );
    } catch (err) {
      flight?.settle({ error: err });
      throw err;
    } finally {
      if (flight) {
        flight.settle(undefined);
        this.flights.delete(key);
      }
    }
  }

  private async follow<R>(
    flight: Flight,
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    endpoint: string,
    forward: Forward<R>,
  ): Promise<R | CachedAnswer | undefined> {
    flight.waiters++;
    const outcome = await flight.done;
    if (outcome && 'answer' in outcome) {
      this.note(state, endpoint, 'hit');
      state.bytes = outcome.answer.body.length;
      writeHit(request, reply, outcome.answer);
      return outcome.answer;
    }
    this.count(state, reply, endpoint, 'miss');
    if (outcome && 'error' in outcome) throw outcome.error;
    // The leader's answer was not cacheable (or its client left): ask on our own.
    return forward();
  }

  private async fill(
    key: string,
    flight: Flight | undefined,
    status: number,
    headers: Record<string, string | string[]>,
    body: Buffer | Readable,
  ): Promise<Readable | void> {
    const { maxBodyBytes } = this.config;
    if (status !== 200 || (Buffer.isBuffer(body) && body.length > maxBodyBytes))
      return;
    const ttlMs = freshnessMs(headers, this.ttlMs, this.keys.keyed);
    if (ttlMs <= 0) return;
    const kept: Record<string, string | string[]> = {};
    for (const name in headers)
      if (!SERVED_HEADERS.has(name)) kept[name] = headers[name];
    const keep = (whole: Buffer) =>
      this.keep(key, flight, { status, headers: kept, body: whole }, ttlMs);
    // Relayed as it arrives, stored when complete.
    if (!Buffer.isBuffer(body))
      return keepCopy(body, maxBodyBytes, (whole) => void keep(whole));
    await keep(body);
  }

  private async keep(
    key: string,
    flight: Flight | undefined,
    fields: Omit<CachedAnswer, 'storedAt'>,
    ttlMs: number,
  ): Promise<void> {
    const answer = { ...fields, storedAt: Date.now() };
    flight?.settle({ answer });
    try {
      await this.store!.set(key, answer, ttlMs);
    } catch (err) {
      this.redis.failed('cache_set', err);
    }
    if (this.store!.size !== undefined)
      this.metrics.cacheEntries.set(this.store!.size);
  }

  private count(
    state: RequestState,
    reply: FastifyReply,
    endpoint: string,
    result: CacheResult,
  ): void {
    this.note(state, endpoint, result);
    reply.header('x-cache', X_CACHE[result]);
  }

  /** The result's metric and access-log field; a hit writes X-Cache itself. */
  private note(state: RequestState, endpoint: string, result: CacheResult) {
    this.metrics.cacheRequests.labels(endpoint, result).inc();
    state.cache = result;
  }
}
