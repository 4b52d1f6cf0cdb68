import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from '../common/request-id.js';
import { UNMATCHED_ROUTE } from '../common/request-labels.js';
import type { CacheResult, RequestState } from '../common/request-state.js';
import { cacheConfig } from '../config/cache.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { RedisService } from '../redis/redis.service.js';
import { cacheKey } from './cache-key.js';
import { requestDirective, storable } from './cache-policy.js';
import {
  type CachedAnswer,
  type CacheStore,
  MemoryCacheStore,
  RedisCacheStore,
} from './cache.store.js';

/** Takes the backend's answer to a request that missed, before it is sent. */
export type CacheFill = (
  status: number,
  headers: Record<string, string | string[]>,
  body: unknown,
) => Promise<void>;

type Outcome = { answer: CachedAnswer } | { error: unknown } | undefined;

/** One backend call in progress for a key, awaited by identical requests. */
class Flight {
  readonly done: Promise<Outcome>;
  waiters = 0;
  private resolve!: (outcome: Outcome) => void;
  private settled = false;

  constructor() {
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(outcome);
  }
}

const X_CACHE: Record<CacheResult, string> = {
  hit: 'HIT',
  miss: 'MISS',
  error: 'MISS',
  bypass: 'BYPASS',
};
/** Never stored nor replayed from an entry: serve() sets them for the answer at hand. */
const SERVED = new Set(['content-length', 'age', 'x-cache', REQUEST_ID_HEADER]);

/**
 * Inference response cache for POST /predict and /batch_predict (on when
 * CACHE_TTL_SECONDS > 0): in memory per pod, or in the shared Redis, keyed
 * by `cacheKey`. Identical misses in one pod make one backend call (single
 * flight). A stage of the prediction path: `through` answers a hit, or
 * calls the rest of the path with a fill that stores its answer.
 */
@Injectable()
export class CacheService {
  readonly enabled: boolean;
  private readonly store: CacheStore | undefined;
  private readonly flights = new Map<string, Flight>();

  constructor(
    @Inject(cacheConfig.KEY)
    private readonly config: ConfigType<typeof cacheConfig>,
    private readonly redis: RedisService,
    private readonly metrics: MetricsService,
  ) {
    this.enabled = config.ttlSeconds > 0;
    const ttlMs = config.ttlSeconds * 1000;
    if (!this.enabled) return;
    this.store = redis.client
      ? new RedisCacheStore(redis.client, `${redis.keyPrefix}cache:`, ttlMs)
      : new MemoryCacheStore({
          maxEntries: config.maxEntries,
          maxBytes: config.maxBytes,
          ttlMs,
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
   * A hit of the memory store is answered without awaiting anything.
   */
  through<R>(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    forward: (fill?: CacheFill) => Promise<R | undefined> | undefined,
  ): Promise<R | undefined> | undefined {
    const endpoint = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const directive = requestDirective(request.headers['cache-control']);
    if (directive === 'no-store') {
      this.count(state, reply, endpoint, 'bypass');
      return forward();
    }
    const key = cacheKey(
      request,
      this.config.keyHeaders,
      this.config.scope === 'key' ? state.keyDigest : undefined,
    );
    if (directive === 'no-cache')
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
    if (!(found instanceof Promise)) {
      if (found) return this.serve(request, reply, state, endpoint, found);
      return this.lead(key, state, reply, endpoint, 'miss', forward);
    }
    return found.then(
      (answer) => {
        if (answer) return this.serve(request, reply, state, endpoint, answer);
        const late = this.flights.get(key);
        if (late)
          return this.follow(late, request, reply, state, endpoint, forward);
        return this.lead(key, state, reply, endpoint, 'miss', forward);
      },
      (err: unknown) =>
        this.failed(err, key, request, reply, state, endpoint, forward),
    );
  }

  /** The store could not answer (Redis down or slow): a miss, counted as an error. */
  private failed<R>(
    err: unknown,
    key: string,
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    endpoint: string,
    forward: (fill?: CacheFill) => Promise<R | undefined> | undefined,
  ): Promise<R | undefined> {
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
    forward: (fill?: CacheFill) => Promise<R | undefined> | undefined,
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
    forward: (fill?: CacheFill) => Promise<R | undefined> | undefined,
  ): Promise<R | undefined> {
    flight.waiters++;
    const outcome = await flight.done;
    if (outcome && 'answer' in outcome)
      return this.serve(request, reply, state, endpoint, outcome.answer);
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
    body: unknown,
  ): Promise<void> {
    if (
      status !== 200 ||
      !Buffer.isBuffer(body) ||
      body.length > this.config.maxBodyBytes ||
      !storable(headers)
    )
      return;
    const kept: Record<string, string | string[]> = {};
    for (const name in headers)
      if (!SERVED.has(name)) kept[name] = headers[name];
    const answer = { status, headers: kept, body, storedAt: Date.now() };
    flight?.settle({ answer });
    try {
      await this.store!.set(key, answer);
    } catch (err) {
      this.redis.failed('cache_set', err);
    }
    if (this.store!.size !== undefined)
      this.metrics.cacheEntries.set(this.store!.size);
  }

  /**
   * Sends a stored answer straight to Node, past Fastify's send and onSend
   * hooks (~4 us less a hit): the stored headers, those already set on the
   * reply (rate limit), a Content-Length, Age, X-Cache and the request's id.
   */
  private serve(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    endpoint: string,
    answer: CachedAnswer,
  ): undefined {
    this.note(state, endpoint, 'hit');
    state.bytes = answer.body.length;
    const head: string[] = [];
    addHeaders(head, answer.headers);
    addHeaders(head, reply.getHeaders());
    const age = Math.max(0, Math.floor((Date.now() - answer.storedAt) / 1000));
    head.push(
      'content-length',
      String(state.bytes),
      'age',
      String(age),
      'x-cache',
      X_CACHE.hit,
      REQUEST_ID_HEADER,
      request.id,
    );
    reply.hijack();
    reply.raw.writeHead(answer.status, head);
    reply.raw.end(answer.body);
    return undefined;
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

  /** The result's metric and access-log field; serve() writes X-Cache itself. */
  private note(state: RequestState, endpoint: string, result: CacheResult) {
    this.metrics.cacheRequests.labels(endpoint, result).inc();
    state.cache = result;
  }
}

/** Appends headers as name, value pairs (Node's raw form), but those serve() sets itself. */
function addHeaders(
  head: string[],
  headers: Record<string, string | string[] | number | undefined>,
): void {
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || SERVED.has(name)) continue;
    if (Array.isArray(value)) for (const one of value) head.push(name, one);
    else head.push(name, String(value));
  }
}
