import { EventEmitter } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { whenEmitted } from './wait.js';

/** One CloudEvent as it arrived in binary content mode: `ce-*` headers and the body. */
export interface ReceivedEvent {
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The `ce-` attributes without their prefix (ce-type -> type). */
  ce: Record<string, string>;
}

/**
 * How the receiver answers: `accept` (204), `status` (that status to every
 * event), `fail-first` (503 to the first `count` events, then 204), `hang`
 * (reads the event, never answers), `close` (204, then closes the
 * connection: a receiver without keep-alive).
 */
export type ReceiverMode =
  | { kind: 'accept' }
  | { kind: 'status'; status: number }
  | { kind: 'fail-first'; count: number }
  | { kind: 'hang' }
  | { kind: 'close' };

/** A CloudEvents HTTP receiver on 127.0.0.1 (ephemeral port) that records every event. */
export class CloudEventsReceiver {
  /** Events answered 2xx (what a real receiver would have kept). */
  readonly accepted: ReceivedEvent[] = [];
  /** Every POST seen, answered or not. */
  readonly seen: ReceivedEvent[] = [];
  mode: ReceiverMode = { kind: 'accept' };
  /** TCP connections accepted so far. */
  connections = 0;
  private readonly arrivals = new EventEmitter();
  private readonly hanging = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private server?: Server;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const ce: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers))
          if (name.startsWith('ce-') && typeof value === 'string')
            ce[name.slice(3)] = value;
        const event = { headers: req.headers, body: Buffer.concat(chunks), ce };
        this.seen.push(event);
        const status = this.statusFor(this.seen.length);
        if (status === undefined) {
          this.hanging.add(res);
        } else {
          if (status < 300) this.accepted.push(event);
          if (this.mode.kind === 'close') res.setHeader('connection', 'close');
          res.writeHead(status).end();
        }
        this.arrivals.emit('event');
      });
    });
    this.server.on('connection', (socket: Socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) =>
      this.server!.listen(0, '127.0.0.1', resolve),
    );
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Resolves once `check` holds on what arrived (checked at each event), or fails after `timeoutMs`. */
  waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
    return whenEmitted(
      this.arrivals,
      'event',
      check,
      timeoutMs,
      () =>
        `CloudEvents receiver: condition not met in ${timeoutMs} ms (${this.seen.length} seen, ${this.accepted.length} accepted)`,
    );
  }

  /** The accepted events of one request id, once `count` of them arrived. */
  async exchange(id: string, count = 2): Promise<ReceivedEvent[]> {
    const of = () => this.accepted.filter((e) => e.ce.id === id);
    await this.waitFor(() => of().length >= count);
    return of();
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private statusFor(n: number): number | undefined {
    const mode = this.mode;
    if (mode.kind === 'hang') return undefined;
    if (mode.kind === 'status') return mode.status;
    if (mode.kind === 'fail-first' && n <= mode.count) return 503;
    return 204;
  }
}
