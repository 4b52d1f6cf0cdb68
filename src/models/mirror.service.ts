import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { bodyLength } from '../common/request-body.js';
import type { ShadowCopy, ShadowResult } from '../common/request-state.js';
import { modelsConfig } from '../config/models.config.js';
import { securityConfig } from '../config/security.config.js';
import type { BackendAnswer } from '../proxy/backend-call.js';
import type { ForwardRequest } from '../proxy/forwarding.js';
import { ProxyService } from '../proxy/proxy.service.js';
import { sameAnswer } from './answer-compare.js';
import type { MirrorRoute } from './model-router.service.js';

/**
 * Shadow traffic: a sampled copy of a request goes to the model's mirror
 * beside the primary, fire and forget. Its answer is read, compared with the
 * client's, counted and dropped; nothing it does reaches the client. At most
 * MIRROR_MAX_INFLIGHT copies run at once, holding at most MIRROR_MAX_BYTES
 * of request bodies (a mirror that stops reading pins them): the rest are
 * skipped (counted). Credentials (CREDENTIAL_HEADERS) are kept from the
 * copy unless the mirror forwards them.
 */
@Injectable()
export class MirrorService {
  private inflight = 0;
  private heldBytes = 0;
  private readonly credentialHeaders: readonly string[];

  constructor(
    @Inject(modelsConfig.KEY)
    private readonly models: ConfigType<typeof modelsConfig>,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
    private readonly proxy: ProxyService,
  ) {
    // The gateway's own API key headers are stripped before any backend anyway.
    this.credentialHeaders = [
      ...new Set([...security.credentialHeaders, 'authorization', 'x-api-key']),
    ];
  }

  /** Copies in flight now. */
  get active(): number {
    return this.inflight;
  }

  /**
   * Sends the copy when this request is sampled; `primary` settles with the
   * answer the client got (undefined when it got none from a backend).
   * Returns the copy, whose result settles with the comparison, when one
   * was sent.
   */
  send(
    mirror: MirrorRoute,
    request: ForwardRequest,
    primary: Promise<BackendAnswer | undefined>,
  ): ShadowCopy | undefined {
    if (Math.random() * 100 >= mirror.percent) return undefined;
    const bytes = bodyLength(request.body);
    if (
      this.inflight >= this.models.mirrorMaxInflight ||
      this.heldBytes + bytes > this.models.mirrorMaxBytes
    ) {
      mirror.series.mirrorSkipped.inc();
      return undefined;
    }
    this.inflight++;
    this.heldBytes += bytes;
    const result = this.proxy
      .callOnce(mirror.pool, this.shadowRequest(request, mirror))
      .then(async (shadow): Promise<ShadowResult> => {
        if (!shadow) {
          mirror.series.mirrorError.inc();
          return 'error';
        }
        mirror.series.mirrorOk.inc();
        const answer = await primary.catch(() => undefined);
        if (!answer || !Buffer.isBuffer(answer.body) || !shadow.body)
          return 'uncompared';
        if (
          sameAnswer(
            { status: answer.status, body: answer.body },
            { status: shadow.status, body: shadow.body },
            mirror.compare,
          )
        )
          return 'match';
        mirror.series.mismatch.inc();
        return 'mismatch';
      })
      .finally(() => {
        this.inflight--;
        this.heldBytes -= bytes;
      });
    return { version: mirror.name, result };
  }

  /** Bytes of request bodies the copies in flight hold. */
  get held(): number {
    return this.heldBytes;
  }

  /** The copy: the client's credentials kept from the shadow unless the route says otherwise. */
  private shadowRequest(
    request: ForwardRequest,
    mirror: MirrorRoute,
  ): ForwardRequest {
    const headers = { ...request.headers };
    if (!mirror.forwardCredentials)
      for (const name of this.credentialHeaders) delete headers[name];
    return { ...request, headers };
  }
}
