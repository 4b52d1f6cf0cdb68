// Demo sentiment backend: the upstream contract of the workshop's BentoML
// service (POST /predict, /batch_predict; GET /healthz /livez /readyz), scored
// by a real lexicon model (AFINN-165 through the `sentiment` package).
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Sentiment from 'sentiment';

const analyzer = new Sentiment();
const MAX_TEXT = 5000;
const MAX_BATCH = 100;
const MAX_BODY = 1024 * 1024;

function score(text) {
  const { comparative, score: raw } = analyzer.analyze(text);
  const sentiment = raw >= 0 ? 'POSITIVE' : 'NEGATIVE';
  // Map the AFINN comparative score (-5..5 per word) to a 0.5..1 confidence.
  const confidence = Math.min(0.9999, 0.5 + Math.min(Math.abs(comparative), 2.5) / 5 + (raw === 0 ? 0 : 0.1));
  return { text, sentiment, confidence: Number(confidence.toFixed(4)) };
}

function textError(text, where) {
  if (typeof text !== 'string') return { loc: where, msg: 'text must be a string' };
  if (text.trim().length === 0) return { loc: where, msg: 'text must not be empty' };
  if (text.length > MAX_TEXT) return { loc: where, msg: `text must be at most ${MAX_TEXT} characters` };
  return null;
}

function send(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function predict(body, requestId) {
  const input = body?.request ?? body;
  const error = textError(input?.text, ['request', 'text']);
  if (error) return [400, { error: 'Invalid input', detail: [error] }];
  return [200, { ...score(input.text), request_id: input.request_id ?? requestId, timestamp: new Date().toISOString() }];
}

function batchPredict(body, requestId) {
  const started = performance.now();
  const texts = (body?.request ?? body)?.texts;
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > MAX_BATCH) {
    return [400, { error: 'Invalid input', detail: [{ loc: ['request', 'texts'], msg: `texts must be a list of 1 to ${MAX_BATCH} strings` }] }];
  }
  const detail = texts.map((text, i) => textError(text, ['request', 'texts', i])).filter(Boolean);
  if (detail.length) return [400, { error: 'Invalid input', detail }];
  const results = texts.map(score);
  return [200, {
    results,
    metadata: { count: results.length, latency_ms: Number((performance.now() - started).toFixed(3)), model: 'afinn-165' },
    request_id: requestId,
  }];
}

const routes = { '/predict': predict, '/batch_predict': batchPredict };
const probes = new Set(['/healthz', '/livez', '/readyz']);

export function createDemoServer() {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const requestId = req.headers['x-request-id'] ?? randomUUID().slice(0, 8);
    if (probes.has(path)) return req.method === 'GET' ? send(res, 200, { status: 'ok' }) : send(res, 405, { error: 'Method Not Allowed' });
    if (path === '/health') return req.method === 'POST' ? send(res, 200, { status: 'ok' }) : send(res, 405, { error: 'Method Not Allowed' });
    const handler = routes[path];
    if (!handler) return send(res, 404, { error: 'Not Found' });
    if (req.method !== 'POST') return send(res, 405, { error: 'Method Not Allowed' });
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        send(res, 413, { error: 'Payload Too Large' });
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, { error: 'Invalid JSON', detail: [] });
      }
      const [status, payload] = handler(body, requestId);
      send(res, status, payload);
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.DEMO_PORT ?? 3000);
  const host = process.env.DEMO_HOST ?? '0.0.0.0';
  const server = createDemoServer();
  server.listen(port, host, () => {
    console.log(JSON.stringify({ level: 'info', service: 'demo-sentiment', msg: `demo sentiment backend listening on ${host}:${port}` }));
  });
  for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => process.exit(0)));
}
