import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { register } from 'prom-client';
import { errorAnswer } from '../common/json-error.js';
import { SECURITY_HEADERS } from '../common/security-headers.js';
import { securityConfig } from '../config/security.config.js';
import { serverConfig } from '../config/server.config.js';
import { METRICS_CHALLENGE, MetricsAccess } from './metrics-access.js';

/**
 * With METRICS_PORT set, `/metrics` is served on that port only (same HOST),
 * so the public port can be exposed while the metrics port stays inside the
 * cluster. METRICS_API_KEY still applies there.
 */
@Injectable()
export class MetricsServer
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private server?: Server;
  private readonly logger = new Logger(MetricsServer.name);
  private readonly access: MetricsAccess;

  constructor(
    @Inject(securityConfig.KEY)
    private readonly security: ConfigType<typeof securityConfig>,
    @Inject(serverConfig.KEY)
    private readonly serverOptions: ConfigType<typeof serverConfig>,
  ) {
    this.access = new MetricsAccess(security.metricsApiKey);
  }

  async onApplicationBootstrap(): Promise<void> {
    const port = this.security.metricsPort;
    if (port === undefined) return;
    const server = createServer((req, res) => void this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.listen(port, this.serverOptions.host);
    await once(server, 'listening');
    this.server = server;
    this.logger.log(
      { host: this.serverOptions.host, port },
      `metrics listening on ${this.serverOptions.host}:${port}`,
    );
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics')
      return error(res, 404, `Cannot ${req.method} ${path.slice(0, 100)}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return error(res, 405, `Method ${req.method} not allowed on this path`);
    }
    if (!this.access.allows(req.headers)) {
      res.setHeader('www-authenticate', METRICS_CHALLENGE);
      return error(res, 401, 'a metrics key is required');
    }
    const body = await register.metrics();
    res.writeHead(200, {
      'content-type': register.contentType,
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function error(res: ServerResponse, status: number, message: string): void {
  const { body, headers } = errorAnswer(status, message, randomUUID());
  res.writeHead(status, headers);
  res.end(body);
}
