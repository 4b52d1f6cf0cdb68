import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { modelsConfig } from '../config/models.config.js';
import type { BackendAnswer } from '../proxy/backend-call.js';
import type { ForwardRequest } from '../proxy/forwarding.js';
import { ProxyService } from '../proxy/proxy.service.js';
import { sameAnswer } from './answer-compare.js';
import type { MirrorRoute } from './model-router.service.js';

/**
 * Shadow traffic: a sampled copy of a request goes to the model's mirror
 * beside the primary, fire and forget. Its answer is read, compared with the
 * client's, counted and dropped; nothing it does reaches the client. At most
 * MIRROR_MAX_INFLIGHT copies run at once: the rest are skipped (counted).
 */
@Injectable()
export class MirrorService {
  private inflight = 0;

  constructor(
    @Inject(modelsConfig.KEY)
    private readonly models: ConfigType<typeof modelsConfig>,
    private readonly proxy: ProxyService,
  ) {}

  /** Copies in flight now. */
  get active(): number {
    return this.inflight;
  }

  /**
   * Sends the copy when this request is sampled; `primary` settles with the
   * answer the client got (undefined when it got none from a backend).
   */
  send(
    mirror: MirrorRoute,
    request: ForwardRequest,
    primary: Promise<BackendAnswer | undefined>,
  ): void {
    if (Math.random() * 100 >= mirror.percent) return;
    if (this.inflight >= this.models.mirrorMaxInflight) {
      mirror.series.mirrorSkipped.inc();
      return;
    }
    this.inflight++;
    void this.proxy
      .callOnce(mirror.pool, shadowRequest(request, mirror))
      .then(async (shadow) => {
        if (!shadow) {
          mirror.series.mirrorError.inc();
          return;
        }
        mirror.series.mirrorOk.inc();
        const answer = await primary.catch(() => undefined);
        if (
          answer &&
          Buffer.isBuffer(answer.body) &&
          shadow.body &&
          !sameAnswer(
            { status: answer.status, body: answer.body },
            { status: shadow.status, body: shadow.body },
            mirror.compare,
          )
        ) {
          mirror.series.mismatch.inc();
        }
      })
      .finally(() => this.inflight--);
  }
}

/** The copy: the client's credentials kept from the shadow unless the route says otherwise. */
function shadowRequest(
  request: ForwardRequest,
  mirror: MirrorRoute,
): ForwardRequest {
  const headers = { ...request.headers };
  if (!mirror.forwardCredentials) {
    delete headers.authorization;
    delete headers['x-api-key'];
  }
  return { ...request, headers };
}
