import { Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
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

  /** A named model (ROUTES_FILE); its backends still get /predict or /batch_predict. */
  @Post(['models/:model/predict', 'models/:model/batch_predict'])
  @HttpCode(200)
  forwardToModel(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Param('model') model: string,
  ): Promise<void> {
    return this.proxy.forward(request, reply, model);
  }
}
