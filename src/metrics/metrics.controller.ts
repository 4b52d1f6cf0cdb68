import { Controller, UseGuards, UseInterceptors } from '@nestjs/common';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import { RequestIdInterceptor } from '../common/request-id.interceptor.js';
import { MetricsAccessGuard } from './metrics-access.guard.js';

/** The Prometheus endpoint: outside API keys and rate limits, with its own access rule. */
@UseGuards(MetricsAccessGuard)
@UseInterceptors(RequestIdInterceptor)
@Controller()
export class MetricsController extends PrometheusController {}
