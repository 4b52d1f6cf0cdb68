// A tiny OTLP/HTTP receiver for the tracing rows of the benchmark: 200 with an empty body (a valid empty
// ExportTraceServiceResponse) to POST /v1/traces, the body drained and counted; GET /__stats gives the counts.
// Usage: node bench/otlp-sink.mjs [--port 0]   -> prints "LISTENING <port>" on stdout.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { listenForHarness } from './harness-child.mjs';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' } },
});
const stats = { exports: 0, bytes: 0, other: 0 };

const server = http.createServer((req, res) => {
  req.on('data', (c) => (stats.bytes += c.length));
  req.on('end', () => {
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && path === '/v1/traces') {
      stats.exports++;
      res.writeHead(200, {
        'content-type': req.headers['content-type'] ?? 'application/json',
        'content-length': 0,
      });
      return res.end();
    }
    if (req.method === 'GET' && path === '/__stats') {
      const body = JSON.stringify(stats);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(body);
    }
    stats.other++;
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  });
});
server.keepAliveTimeout = 120_000;
listenForHarness(server, Number(values.port));
