// Fake sentiment service for the benchmark: answers like the BentoML service, as fast as node:http allows.
// Usage: node bench/upstream.mjs [--port 0] [--delay-ms 0] [--chunked]   -> prints "LISTENING <port>" on stdout.
// --chunked: answers without Content-Length (Transfer-Encoding: chunked, as Node's writeHead + end, Go's
// net/http past 4 KB or FastAPI's StreamingResponse do).
import http from 'node:http';
import { parseArgs } from 'node:util';
import { listenForHarness } from './harness-child.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'delay-ms': { type: 'string', default: '0' },
    chunked: { type: 'boolean', default: false },
  },
});
const delayMs = Number(values['delay-ms']);
let seq = 0;
const stats = { predict: 0, batch_predict: 0, other: 0, bytesIn: 0 };

const batchBody = JSON.stringify({
  results: Array.from({ length: 100 }, (_, i) => ({
    text: `text ${i}`,
    sentiment: 'POSITIVE',
    confidence: 0.9998,
  })),
  metadata: { count: 100, latency_ms: delayMs, model: 'fake' },
  request_id: 'batch',
});

function predictBody(req) {
  return JSON.stringify({
    text: 'I love this product, it works great!',
    sentiment: 'POSITIVE',
    confidence: 0.9998,
    request_id: req.headers['x-request-id'] ?? (++seq).toString(16),
    timestamp: new Date().toISOString(),
  });
}

const chunked = values.chunked;
function send(res, status, body) {
  res.writeHead(
    status,
    chunked
      ? { 'content-type': 'application/json' }
      : {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
  );
  res.end(body);
}

const server = http.createServer((req, res) => {
  // Drain the body without parsing it: the upstream should cost as little as possible.
  req.on('data', (c) => (stats.bytesIn += c.length));
  req.on('end', () => {
    const path = req.url.split('?')[0];
    let reply;
    if (req.method === 'POST' && path === '/predict') {
      stats.predict++;
      reply = () => send(res, 200, predictBody(req));
    } else if (req.method === 'POST' && path === '/batch_predict') {
      stats.batch_predict++;
      reply = () => send(res, 200, batchBody);
    } else {
      stats.other++;
      if (
        req.method === 'GET' &&
        ['/healthz', '/livez', '/readyz'].includes(path)
      )
        return send(res, 200, '{"status":"ok"}');
      if (path === '/health')
        return send(res, req.method === 'POST' ? 200 : 405, '{"status":"ok"}');
      if (req.method === 'GET' && path === '/__stats')
        return send(res, 200, JSON.stringify(stats));
      return send(res, 404, '{"error":"not found"}');
    }
    if (delayMs > 0) setTimeout(reply, delayMs);
    else reply();
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
listenForHarness(server, Number(values.port));
