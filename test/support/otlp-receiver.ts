import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { whenEmitted } from './wait.js';

type AttributeValue = string | number | boolean;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 2 server, 3 client. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  /** Spans of other traces this one links to. */
  links: { traceId: string; spanId: string }[];
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, AttributeValue>;
}

export interface ReceivedExport {
  contentType: string;
  body: Buffer;
}

interface OtlpKeyValue {
  key: string;
  value: {
    stringValue?: string;
    intValue?: number | string;
    doubleValue?: number;
    boolValue?: boolean;
  };
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpKeyValue[];
        events?: { name: string; attributes?: OtlpKeyValue[] }[];
        links?: { traceId: string; spanId: string }[];
        status?: { code?: number };
      }[];
    }[];
  }[];
}

/**
 * An OTLP/HTTP trace receiver on 127.0.0.1: `POST /v1/traces`. OTLP/JSON
 * bodies are decoded into spans; protobuf ones are kept as bytes.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly exports: ReceivedExport[] = [];
  private readonly arrivals = new EventEmitter();
  private server?: Server;
  private port = 0;

  /** The OTEL_EXPORTER_OTLP_ENDPOINT value (the exporter adds /v1/traces). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const contentType = req.headers['content-type'] ?? '';
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        this.exports.push({ contentType, body });
        if (contentType.startsWith('application/json')) {
          this.spans.push(...decode(JSON.parse(body.toString()) as OtlpJson));
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        } else {
          res.writeHead(200, { 'content-type': 'application/x-protobuf' });
          res.end();
        }
        this.arrivals.emit('export');
      });
    });
    await new Promise<void>((resolve) =>
      this.server!.listen(0, '127.0.0.1', resolve),
    );
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Resolves once `check` holds on what arrived (checked at each export), or fails after `timeoutMs`. */
  waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
    return whenEmitted(
      this.arrivals,
      'export',
      check,
      timeoutMs,
      () => `OTLP receiver: condition not met in ${timeoutMs} ms`,
    );
  }

  /** The spans of one trace, once `count` of them arrived. */
  async trace(traceId: string, count: number): Promise<ReceivedSpan[]> {
    const of = () => this.spans.filter((s) => s.traceId === traceId);
    await this.waitFor(() => of().length >= count);
    return of();
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function decode(body: OtlpJson): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of body.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? '',
          name: span.name,
          kind: span.kind,
          attributes: attributesOf(span.attributes),
          events: (span.events ?? []).map((e) => ({
            name: e.name,
            attributes: attributesOf(e.attributes),
          })),
          links: (span.links ?? []).map(({ traceId, spanId }) => ({
            traceId,
            spanId,
          })),
          statusCode: span.status?.code ?? 0,
          resource,
        });
      }
    }
  }
  return spans;
}

function attributesOf(
  list: OtlpKeyValue[] | undefined,
): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}
