import { Inject, Injectable } from '@nestjs/common';
import {
  MODEL_HEADER,
  MODEL_VERSION_HEADER,
} from '../proxy/model-router.service.js';
import type { RequestBody } from '../common/request-body.js';
import { REQUEST_ID_HEADER } from '../common/request-id.js';
import type { ConfigType } from '@nestjs/config';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { presentedKey } from '../auth/api-key.js';
import '../common/request-context.js';
import {
  type GatewayRequestInfo,
  UNMATCHED_ROUTE,
} from '../common/request-context.js';
import { cacheConfig } from '../config/cache.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { RedisService } from '../redis/redis.service.js';
import {
  type CachedAnswer,
  type CacheStore,
  MemoryCacheStore,
  RedisCacheStore,
} from './cache.store.js';
import { canonicalJson } from './canonical-json.js';

export type CacheResult = 'hit' | 'miss' | 'bypass' | 'error';

/** Handed to the proxy for a request that missed: it passes the backend's answer before sending it. */
export interface CacheFill {
  store(
    status: number,
    headers: Record<string, string | string[]>,
    body: unknown,
  ): Promise<void>;
}

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

const MODEL_HEADERS = [MODEL_HEADER, MODEL_VERSION_HEADER];
/** PredictController's routes: those whose answers go through the cache. */
const CACHED_ROUTES = new Set([
  '/predict',
  '/batch_predict',
  '/models/:model/predict',
  '/models/:model/batch_predict',
]);
const X_CACHE: Record<CacheResult, string> = {
  hit: 'HIT',
  miss: 'MISS',
  error: 'MISS',
  bypass: 'BYPASS',
};
/** Never stored nor replayed from an entry: serve() sets them for the answer at hand. */
const SERVED = new Set(['content-length', 'age', 'x-cache', REQUEST_ID_HEADER]);
const EMPTY = Buffer.alloc(0);
/** The cache off: nothing allocated (through() is never called then). */
const NO_STORE: CacheStore = {
  get: () => undefined,
  set: () => Promise.resolve(),
};

/**
 * Inference response cache for POST /predict and /batch_predict (on when
 * CACHE_TTL_SECONDS > 0): in memory per pod, or in the shared Redis. Keys
 * are SHA-256 over route, query, canonical JSON body (else raw bytes), the
 * CACHE_KEY_HEADERS values and, with CACHE_SCOPE=key, the client's API key.
 * Identical misses in one pod make one backend call (single flight).
 */
@Injectable()
export class CacheService {
  readonly enabled: boolean;
  private readonly store: CacheStore;
  private readonly flights = new Map<string, Flight>();

  constructor(
    @Inject(cacheConfig.KEY)
    private readonly config: ConfigType<typeof cacheConfig>,
    private readonly redis: RedisService,
    private readonly metrics: MetricsService,
  ) {
    this.enabled = config.ttlSeconds > 0;
    const ttlMs = config.ttlSeconds * 1000;
    this.store = !this.enabled
      ? NO_STORE
      : redis.client
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
   * Answers memory-store hits from a Fastify preHandler hook, as soon as the
   * body is read (Nest's router and the controller cost ~4 us a hit). Only
   * when no access guard has to pass the request first (see createApp). A
   * miss, a Cache-Control directive or a flight in progress goes on to the
   * controller, with its key computed.
   */
  answerHitsEarly(fastify: FastifyInstance): void {
    const store = this.store;
    if (!(store instanceof MemoryCacheStore)) return;
    fastify.addHook('preHandler', (request, reply, done) => {
      const route = request.routeOptions.url;
      if (
        request.method !== 'POST' ||
        route === undefined ||
        !CACHED_ROUTES.has(route) ||
        request.headers['cache-control'] !== undefined
      )
        return done();
      const key = this.keyOf(request);
      (request.raw.gateway ??= {}).cacheKey = key;
      const found = this.flights.has(key) ? undefined : store.get(key);
      if (found === undefined) return done();
      this.serve(request, reply, route, found);
    });
  }

  /**
   * Answers from the cache, or calls `forward` (with a fill to hand the
   * backend's answer to) and shares its outcome with identical requests that
   * arrived meanwhile. Errors of the leading call are each waiter's error.
   */
  async through(
    request: FastifyRequest,
    reply: FastifyReply,
    forward: (fill?: CacheFill) => Promise<void>,
  ): Promise<void> {
    const endpoint = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const directive = requestDirective(request.headers['cache-control']);
    if (directive === 'no-store') {
      this.count(request, reply, endpoint, 'bypass');
      return forward();
    }
    const key = request.raw.gateway?.cacheKey ?? this.keyOf(request);
    let result: CacheResult = 'miss';
    if (directive !== 'no-cache') {
      const flight = this.flights.get(key);
      if (flight) return this.follow(flight, request, reply, endpoint, forward);
      try {
        const pending = this.store.get(key);
        const found = pending instanceof Promise ? await pending : pending;
        if (found) return this.serve(request, reply, endpoint, found);
      } catch (err) {
        result = 'error';
        this.redis.failed('cache_get', err);
      }
      const late = this.flights.get(key);
      if (late) return this.follow(late, request, reply, endpoint, forward);
    }
    return this.lead(key, request, reply, endpoint, result, forward);
  }

  private async lead(
    key: string,
    request: FastifyRequest,
    reply: FastifyReply,
    endpoint: string,
    result: CacheResult,
    forward: (fill?: CacheFill) => Promise<void>,
  ): Promise<void> {
    // A no-cache refresh next to a running flight does not replace it.
    const flight = this.flights.has(key) ? undefined : new Flight();
    if (flight) this.flights.set(key, flight);
    this.count(request, reply, endpoint, result);
    try {
      await forward({
        store: (status, headers, body) =>
          this.fill(key, flight, status, headers, body),
      });
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

  private async follow(
    flight: Flight,
    request: FastifyRequest,
    reply: FastifyReply,
    endpoint: string,
    forward: (fill?: CacheFill) => Promise<void>,
  ): Promise<void> {
    flight.waiters++;
    const outcome = await flight.done;
    if (outcome && 'answer' in outcome)
      return this.serve(request, reply, endpoint, outcome.answer);
    this.count(request, reply, endpoint, 'miss');
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
      await this.store.set(key, answer);
    } catch (err) {
      this.redis.failed('cache_set', err);
    }
    if (this.store.size !== undefined)
      this.metrics.cacheEntries.set(this.store.size);
  }

  /**
   * Sends a stored answer straight to Node, past Fastify's send and onSend
   * hooks (~4 us less a hit): the stored headers, those already set on the
   * reply (rate limit), a Content-Length, Age, X-Cache and the request's id.
   */
  private serve(
    request: FastifyRequest,
    reply: FastifyReply,
    endpoint: string,
    answer: CachedAnswer,
  ): void {
    const info = this.note(request, endpoint, 'hit');
    info.bytes = answer.body.length;
    const head: string[] = [];
    addHeaders(head, answer.headers);
    addHeaders(head, reply.getHeaders());
    const age = Math.max(0, Math.floor((Date.now() - answer.storedAt) / 1000));
    head.push(
      'content-length',
      String(info.bytes),
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
  }

  private count(
    request: FastifyRequest,
    reply: FastifyReply,
    endpoint: string,
    result: CacheResult,
  ): void {
    this.note(request, endpoint, result);
    reply.header('x-cache', X_CACHE[result]);
  }

  /** The result's metric and access-log field; serve() writes X-Cache itself. */
  private note(
    request: FastifyRequest,
    endpoint: string,
    result: CacheResult,
  ): GatewayRequestInfo {
    this.metrics.cacheRequests.labels(endpoint, result).inc();
    const info = (request.raw.gateway ??= {});
    info.cache = result;
    return info;
  }

  /** One-shot SHA-256 over one string (or buffer): ~7x cheaper than a Hash object per request. */
  private keyOf(request: FastifyRequest): string {
    // The path, not the route pattern: /models/a/predict and /models/b/predict
    // are two models. X-Model and X-Model-Version choose the model too.
    let input = `${request.url}\0`;
    for (const name of MODEL_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string') input += `${name}=${value}`;
      input += '\0';
    }
    // Keys on: the full key (never stored, only hashed) separates tenants.
    if (this.config.scope === 'key' && request.raw.gateway?.keyId)
      input += presentedKey(request.headers) ?? '';
    input += '\0';
    for (const name of this.config.keyHeaders) {
      const value = request.headers[name];
      input += `${name}=${Array.isArray(value) ? value.join(',') : (value ?? '')}\0`;
    }
    // A large body arrives as its chunks (see readRequestBody): joined here only.
    const raw = request.body as RequestBody | undefined;
    const body = Array.isArray(raw) ? Buffer.concat(raw) : (raw ?? EMPTY);
    const canonical =
      /json/i.test(request.headers['content-type'] ?? '') && isUtf8(body)
        ? canonicalJson(body.toString('utf8'))
        : undefined;
    return canonical === undefined
      ? hash('sha256', Buffer.concat([Buffer.from(`${input}r`), body]), 'hex')
      : hash('sha256', `${input}j${canonical}`, 'hex');
  }
}

function requestDirective(
  value: string | undefined,
): 'no-store' | 'no-cache' | undefined {
  if (!value) return undefined;
  const directives = value.toLowerCase();
  if (/(^|,)\s*no-store\s*(,|$)/.test(directives)) return 'no-store';
  if (/(^|,)\s*no-cache\s*(,|$)/.test(directives)) return 'no-cache';
  return undefined;
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

/** The backend allows sharing it, and nothing in it depends on what the key leaves out. */
function storable(headers: Record<string, string | string[]>): boolean {
  const control = String(headers['cache-control'] ?? '').toLowerCase();
  return (
    !/(^|,)\s*(no-store|private)\s*(,|=|$)/.test(control) &&
    headers['set-cookie'] === undefined &&
    headers['content-encoding'] === undefined &&
    String(headers.vary ?? '').trim() !== '*'
  );
}
