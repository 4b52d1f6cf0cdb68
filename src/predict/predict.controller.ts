import { Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PredictPipeline } from './predict.pipeline.js';
import type { Outcome } from './prediction.js';

/** The prediction routes: each request runs through PredictPipeline. */
@Controller()
export class PredictController {
  constructor(private readonly pipeline: PredictPipeline) {}

  @Post(['predict', 'batch_predict'])
  @HttpCode(200)
  forward(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Outcome {
    return this.pipeline.handle(request, reply);
  }

  /** A named model (ROUTES_FILE); its backends still get /predict or /batch_predict. */
  @Post(['models/:model/predict', 'models/:model/batch_predict'])
  @HttpCode(200)
  forwardToModel(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Param('model') model: string,
  ): Outcome {
    return this.pipeline.handle(request, reply, model);
  }
}
