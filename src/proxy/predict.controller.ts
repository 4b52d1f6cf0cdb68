import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyService } from './proxy.service.js';

@Controller()
export class PredictController {
  constructor(private readonly proxy: ProxyService) {}

  @Post(['predict', 'batch_predict'])
  @HttpCode(200)
  forward(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    return this.proxy.forward(request, reply);
  }
}
