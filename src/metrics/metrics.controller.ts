import { Controller, UseGuards } from '@nestjs/common';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import { Public } from '../auth/public.decorator.js';
import { MetricsAccessGuard } from './metrics-access.guard.js';

/** The Prometheus endpoint: outside API keys and rate limits, with its own access rule. */
@Public()
@UseGuards(MetricsAccessGuard)
@Controller()
export class MetricsController extends PrometheusController {}
