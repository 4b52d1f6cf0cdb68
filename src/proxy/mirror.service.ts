import { Inject, Injectable } from '@nestjs/common';
import { dispatchBody, type RequestBody } from '../common/request-body.js';
import type { ConfigType } from '@nestjs/config';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { backendConfig } from '../config/backend.config.js';
import { modelsConfig } from '../config/models.config.js';
import { serverConfig } from '../config/server.config.js';
import { sameAnswer } from './answer-compare.js';
import { type BackendAnswer, BackendCall } from './backend-call.js';
import type { MirrorRoute } from './model-router.service.js';

/** The client's request as it went to the primary version. */
export interface MirroredRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: RequestBody | undefined;
}

interface ShadowAnswer {
  status: number;
  body: Buffer | undefined;
}

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
    @Inject(backendConfig.KEY)
    private readonly backend: ConfigType<typeof backendConfig>,
    @Inject(serverConfig.KEY)
    private readonly server: ConfigType<typeof serverConfig>,
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
    request: MirroredRequest,
    primary: Promise<BackendAnswer | undefined>,
  ): void {
    if (Math.random() * 100 >= mirror.percent) return;
    if (this.inflight >= this.models.mirrorMaxInflight) {
      mirror.series.mirrorSkipped.inc();
      return;
    }
    this.inflight++;
    void this.shadow(mirror, request)
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

  /** One try on the mirror's pool; undefined on a transport failure, timeout or 5xx. */
  private async shadow(
    mirror: MirrorRoute,
    request: MirroredRequest,
  ): Promise<ShadowAnswer | undefined> {
    const { pool } = mirror;
    const backend = pool.pick();
    if (!backend) return undefined;
    const headers = { ...request.headers };
    if (!mirror.forwardCredentials) {
      delete headers.authorization;
      delete headers['x-api-key'];
    }
    pool.started(backend);
    let call: BackendCall | undefined;
    const timer = setTimeout(
      () => call?.abort(new Error('timeout')),
      this.backend.timeoutMs,
    );
    let ok = false;
    try {
      const answer = await new Promise<BackendAnswer>((resolve, reject) => {
        call = new BackendCall(this.server.maxBodyBytes, resolve, reject);
        backend.client.pool.dispatch(
          {
            path: backend.client.prefix + request.pathAndQuery,
            method: request.method,
            headers,
            body: dispatchBody(request.body),
          },
          call,
        );
      });
      const body =
        answer.body instanceof Readable
          ? await readUpTo(answer.body, this.server.maxBodyBytes)
          : answer.body;
      ok = answer.status < 500;
      return ok ? { status: answer.status, body } : undefined;
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
      pool.finished(backend, ok ? 'success' : 'failure');
    }
  }
}

/** The whole stream when it fits in `limit` bytes, else undefined (not compared). */
async function readUpTo(
  stream: Readable,
  limit: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
