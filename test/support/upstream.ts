import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type UpstreamHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
) => void | Promise<void>;

/** A real HTTP server on 127.0.0.1 (ephemeral port) standing in for a backend. */
export class Upstream {
  /** Requests other than health probes. */
  readonly received: ReceivedRequest[] = [];
  readonly probes: ReceivedRequest[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(public handler: UpstreamHandler = sentimentHandler) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const record = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body,
        };
        if (PROBE_PATHS.has(req.url ?? '')) this.probes.push(record);
        else this.received.push(record);
        void this.handler(req, res, body);
      });
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) =>
      this.server!.listen(port, '127.0.0.1', resolve),
    );
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening and cuts every open connection (a backend that died). */
  async stop(): Promise<void> {
    if (!this.server) return;
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const PROBE_PATHS = new Set(['/healthz', '/livez', '/readyz']);

/** Answers like the BentoML sentiment service: probes 200, predictions echo the text. */
export const sentimentHandler: UpstreamHandler = (req, res, body) => {
  if (PROBE_PATHS.has(req.url ?? '')) {
    json(res, 200, { status: 'ok' });
    return;
  }
  let text: unknown;
  try {
    text = (
      JSON.parse(body.toString() || '{}') as { request?: { text?: unknown } }
    ).request?.text;
  } catch {
    json(res, 400, { error: 'Invalid JSON', detail: [] });
    return;
  }
  json(res, 200, {
    text,
    sentiment: 'POSITIVE',
    confidence: 0.9998,
    request_id: req.headers['x-request-id'],
    timestamp: new Date().toISOString(),
  });
};

export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}
