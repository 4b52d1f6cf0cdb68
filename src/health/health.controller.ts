import {
  Controller,
  Get,
  HttpStatus,
  Inject,
  Res,
  UseInterceptors,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import {
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorFunction,
  HealthIndicatorService,
} from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { BackendHealthIndicator } from '../proxy/backend.indicator.js';
import { RequestIdInterceptor } from '../common/request-id.interceptor.js';
import { backendConfig } from '../config/backend.config.js';
import { RedisHealthIndicator } from '../redis/redis.indicator.js';
import { ShutdownService } from './shutdown.service.js';

// Probes stay open whatever the access settings: no access guard here.
@UseInterceptors(RequestIdInterceptor)
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly backends: BackendHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly shutdown: ShutdownService,
    private readonly redis: RedisHealthIndicator,
    @Inject(backendConfig.KEY)
    private readonly config: ConfigType<typeof backendConfig>,
  ) {}

  /**
   * The Go gateway's /health shape, backed by the pool's real state. Redis,
   * when configured, is reported in `details` only: the gateway serves
   * without it, so it never turns /health red.
   */
  @Get()
  async check(@Res({ passthrough: true }) reply: FastifyReply) {
    const reports = await this.backends.reports();
    const [result, redis] = await Promise.all([
      this.run(() =>
        this.health.check([() => this.backends.isHealthy('backends', reports)]),
      ),
      this.redis.configured ? this.redis.isHealthy('redis') : undefined,
    ]);
    const up = result.status === 'ok';
    const serving = reports.filter((b) => !b.mirror);
    const primary = serving.find((b) => b.state === 'healthy') ?? serving[0];
    reply.code(up ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: result.status,
      service: 'api-gateway',
      backend: up ? 'ok' : primary?.last_status ? 'unhealthy' : 'unreachable',
      backend_status: primary?.last_status ?? null,
      ...(up
        ? {}
        : { backend_error: primary?.last_error ?? 'no backend is healthy' }),
      backends: reports,
      info: result.info,
      error: result.error,
      details: redis ? { ...result.details, ...redis } : result.details,
    };
  }

  /** Liveness: the process answers. Never depends on backends, stays 200 while draining. */
  @Get('live')
  live() {
    return { status: 'ok' };
  }

  /** Readiness: 503 from the first moment of shutdown (and, if configured, without backends). */
  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply) {
    const checks: HealthIndicatorFunction[] = [
      () => {
        const indicator = this.indicators.check('app');
        return this.shutdown.isDraining
          ? indicator.down({ reason: 'shutting down' })
          : indicator.up();
      },
    ];
    if (this.config.readinessRequiresBackend) {
      checks.push(() => this.backends.isHealthy('backends'));
    }
    const result = await this.run(() => this.health.check(checks));
    if (result.status !== 'ok') reply.code(HttpStatus.SERVICE_UNAVAILABLE);
    return result;
  }

  /** Terminus throws its 503 result: take it back as a value. */
  private async run(
    check: () => Promise<HealthCheckResult>,
  ): Promise<HealthCheckResult> {
    try {
      return await check();
    } catch (err) {
      const response = (err as { getResponse?: () => unknown }).getResponse?.();
      if (response && typeof response === 'object' && 'status' in response) {
        return response as HealthCheckResult;
      }
      throw err;
    }
  }
}
