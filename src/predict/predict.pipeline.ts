import { Injectable, NotFoundException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Authenticator } from '../auth/authenticator.service.js';
import { BatchingService } from '../batching/batching.service.js';
import { CacheService } from '../cache/cache.service.js';
import { CaptureService } from '../capture/capture.service.js';
import { requestState } from '../common/request-state.js';
import { MirrorService } from '../models/mirror.service.js';
import { MODEL_HEADER } from '../models/model-headers.js';
import { ModelRouter } from '../models/model-router.service.js';
import { BackendPoolService } from '../proxy/backend-pool.service.js';
import type { ForwardRequest } from '../proxy/forwarding.js';
import { ProxyService } from '../proxy/proxy.service.js';
import { RateLimiterService } from '../rate-limit/rate-limiter.service.js';
import {
  compose,
  type Next,
  type Outcome,
  Prediction,
  type Stage,
} from './prediction.js';

/**
 * The prediction path (POST /predict, /batch_predict and their
 * /models/{model}/ forms), as one ordered list of stages composed at boot.
 * A feature that is off has no stage at all:
 *
 *   1. credentials  Authenticator.authenticate    (API_KEYS(_FILE), JWT_*, TENANTS_FILE): client, tenant, priority
 *   2. rate limit   RateLimiterService.check      (RATE_LIMIT_RPS, TENANTS_FILE quotas in items)
 *   3. capture      CaptureService.sample         (CAPTURE_SAMPLE_RATE): sees the answer, sends after close
 *   4. cache        CacheService.through          (CACHE_TTL_SECONDS): a hit ends here
 *   5. route        ModelRouter.choose            (ROUTES_FILE), else the BACKEND_URL(S) pool
 *   6. mirror       MirrorService.send            (a mirror in the routes file)
 *   7. batch        BatchingService.handle        (BATCH_MAX_SIZE): /predict items share a call
 *   8. forward      ProxyService.forward          admission, retries, deadline, relay
 */
@Injectable()
export class PredictPipeline {
  private readonly run: Next;

  constructor(
    auth: Authenticator,
    limiter: RateLimiterService,
    captures: CaptureService,
    cache: CacheService,
    router: ModelRouter,
    mirror: MirrorService,
    batching: BatchingService,
    proxy: ProxyService,
    pools: BackendPoolService,
  ) {
    // The gateway's own credentials are for the gateway: never passed on.
    const stripCredentials = auth.enabled;
    const outgoing = (p: Prediction): ForwardRequest =>
      (p.outgoing ??= proxy.outgoing(p.request, p.endpoint, stripCredentials));

    const authenticate: Stage = (p, next) => {
      const verifying = auth.authenticate(p.request, p.reply, p.state);
      return verifying ? verifying.then(() => next(p)) : next(p);
    };
    const rateLimit: Stage = async (p, next) => {
      await limiter.check(p.request, p.reply, p.state, p.endpoint);
      return next(p);
    };
    // Sampled up front; a sampled exchange is told the answer the client got
    // (a cache hit's too) and is built and sent once the response closes.
    const capture: Stage = (p, next) => {
      const exchange = captures.sample(p.request, p.state, p.endpoint);
      if (!exchange) return next(p);
      let outcome: Outcome;
      try {
        outcome = next(p);
      } catch (err) {
        exchange.answered(undefined);
        throw err;
      }
      exchange.answered(outcome);
      return outcome;
    };
    const lookUp: Stage = (p, next) =>
      cache.through(p.request, p.reply, p.state, (fill) => {
        p.onAnswer = fill;
        return next(p);
      });
    const route: Stage = (p, next) => {
      const header = p.request.headers[MODEL_HEADER];
      const version = router.choose(
        p.request,
        p.reply,
        p.state,
        p.model ?? (typeof header === 'string' ? header : undefined),
      );
      p.pool = version.pool;
      p.mirror = version.model.mirror;
      p.batchEndpoint = version.batching;
      return next(p);
    };
    const implicitPool: Stage = (p, next) => {
      if (p.model !== undefined) {
        throw new NotFoundException(
          `unknown model ${JSON.stringify(p.model.slice(0, 64))}`,
        );
      }
      p.pool = pools.implicit;
      return next(p);
    };
    // The copy goes once the primary attempt is under way.
    const shadow: Stage = (p, next) => {
      const request = outgoing(p);
      const answer = next(p);
      if (p.mirror)
        p.state.shadow = mirror.send(
          p.mirror,
          request,
          answer ?? Promise.resolve(undefined),
        );
      return answer;
    };
    const batch: Stage = (p, next) =>
      (p.endpoint === '/predict' &&
        batching.handle(p, p.pool!, p.batchEndpoint, stripCredentials, () =>
          next(p),
        )) ||
      next(p);
    const forward: Next = (p) => {
      if (!p.pool) throw new Error('no pool was chosen for the request');
      return proxy.forward(p, p.pool, outgoing(p));
    };

    const stages: Stage[] = [];
    if (auth.enabled) stages.push(authenticate);
    if (limiter.enabled) stages.push(rateLimit);
    if (captures.enabled) stages.push(capture);
    if (cache.enabled) stages.push(lookUp);
    stages.push(router.enabled ? route : implicitPool);
    if (router.enabled) stages.push(shadow);
    if (batching.enabled) stages.push(batch);
    this.run = compose(stages, forward);
  }

  /** Runs a request through the path; `model` when the path names one. */
  handle(
    request: FastifyRequest,
    reply: FastifyReply,
    model?: string,
  ): Outcome {
    const route = request.routeOptions.url ?? request.url;
    return this.run(
      new Prediction(
        request,
        reply,
        requestState(request),
        model,
        route.slice(route.lastIndexOf('/')),
      ),
    );
  }
}
