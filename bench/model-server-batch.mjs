// A simulated model server with ONE worker, for bench/batch.mjs (micro-batching): calls are served one at a
// time in arrival order (FIFO), each costing --base-ms (20) + --per-item-ms (1) per item; /predict is one item.
//   POST /predict        {"request":{"text":"...","request_id"?}}  -> {text, sentiment, confidence, request_id, timestamp}
//   POST /batch_predict  {"request":{"texts":["...",...]}}         -> {results:[{text, sentiment, confidence}...], metadata:{count}}
//   GET /healthz, /livez, /readyz: 200 at once (not queued). GET /stats: counters; POST /stats: the same, then zeroed.
// The answer is a function of the text alone (sentimentOf/confidenceOf below, exported for the client's check):
// POSITIVE when the text's last integer is even, NEGATIVE when odd; every result echoes its text.
// Test aid: MODEL_SIM_BUG (or --bug) makes the server answer wrongly on purpose, to prove the client's checks:
//   swap: every 20th /predict answers the previous /predict's text; every /batch_predict of 2+ texts swaps its first two results
//   flip: every 20th item gets the wrong sentiment (its text right)
//   500:  every 20th call answers 500
// Usage: node bench/model-server-batch.mjs [--port 0] [--base-ms 20] [--per-item-ms 1] [--max-queue 10000] [--bug swap]
//   -> prints "LISTENING <port>".
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { listenForHarness } from './harness-child.mjs';

const PROBES = new Set(['/healthz', '/livez', '/readyz']);
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_BATCH = 1000;

/** POSITIVE when the text's last integer is even (a text without digits: its length), NEGATIVE when odd. */
export function sentimentOf(text) {
  const m = /(\d+)\D*$/.exec(text);
  const n = m ? Number(m[1].slice(-6)) : text.length;
  return n % 2 === 0 ? 'POSITIVE' : 'NEGATIVE';
}

/** A confidence that is a function of the text too: 0.5 .. 0.99. */
export function confidenceOf(text) {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return 0.5 + (h % 50) / 100;
}

function freshStats() {
  return {
    /** Calls answered 200, by route. */
    predictCalls: 0,
    batchCalls: 0,
    /** Texts in those calls (predict = 1 each). */
    items: 0,
    /** Items per /batch_predict call: size -> count. */
    batchSizes: {},
    maxBatch: 0,
    /** Calls waiting or in service, at most. */
    maxQueued: 0,
    /** Time the worker spent serving, ms. */
    busyMs: 0,
    /** 400 (bad body), 404, 503 (queue full), 500 (MODEL_SIM_BUG=500). */
    rejected: 0,
    /** Answers computed for a client that had already gone. */
    wasted: 0,
  };
}

export function createModelServer({
  baseMs = 20,
  perItemMs = 1,
  maxQueue = 10_000,
  bug = '',
} = {}) {
  let stats = freshStats();
  const queue = [];
  let busy = false;
  let calls = 0;
  let lastPredictText = null;

  const send = (res, status, body) => {
    if (res.destroyed || !res.socket || res.socket.destroyed) {
      stats.wasted++;
      return;
    }
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  };

  const result = (text, nth) => ({
    text,
    sentiment:
      bug === 'flip' && nth % 20 === 0
        ? sentimentOf(text) === 'POSITIVE'
          ? 'NEGATIVE'
          : 'POSITIVE'
        : sentimentOf(text),
    confidence: confidenceOf(text),
  });

  const serve = (job) => {
    const nth = ++calls;
    if (bug === '500' && nth % 20 === 0) {
      stats.rejected++;
      return send(job.res, 500, { detail: 'MODEL_SIM_BUG=500' });
    }
    if (job.kind === 'predict') {
      stats.predictCalls++;
      stats.items++;
      let text = job.texts[0];
      if (bug === 'swap' && nth % 20 === 0 && lastPredictText !== null)
        text = lastPredictText;
      lastPredictText = job.texts[0];
      return send(job.res, 200, {
        ...result(text, nth),
        request_id: job.requestId,
        timestamp: new Date().toISOString(),
      });
    }
    const n = job.texts.length;
    stats.batchCalls++;
    stats.items += n;
    stats.batchSizes[n] = (stats.batchSizes[n] ?? 0) + 1;
    if (n > stats.maxBatch) stats.maxBatch = n;
    const results = job.texts.map((t, i) => result(t, nth + i));
    if (bug === 'swap' && n >= 2)
      [results[0], results[1]] = [results[1], results[0]];
    send(job.res, 200, { results, metadata: { count: n } });
  };

  const pump = () => {
    if (busy || queue.length === 0) return;
    const job = queue.shift();
    busy = true;
    const ms = baseMs + perItemMs * job.texts.length;
    const t0 = performance.now();
    setTimeout(() => {
      stats.busyMs += performance.now() - t0;
      busy = false;
      serve(job);
      pump();
    }, ms);
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      if (PROBES.has(path)) return send(res, 200, { status: 'ok' });
      if (path === '/stats') {
        const s = {
          ...stats,
          queued: queue.length + (busy ? 1 : 0),
          bug: bug || null,
        };
        if (req.method === 'POST') stats = freshStats();
        return send(res, 200, s);
      }
      const kind =
        req.method === 'POST' && path === '/predict'
          ? 'predict'
          : req.method === 'POST' && path === '/batch_predict'
            ? 'batch'
            : null;
      if (!kind) {
        stats.rejected++;
        return send(res, 404, { detail: `no route ${req.method} ${path}` });
      }
      let body;
      try {
        if (size > MAX_BODY_BYTES) throw new Error('body too large');
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch (err) {
        stats.rejected++;
        return send(res, 400, { detail: `bad JSON: ${err.message}` });
      }
      const r = body?.request;
      const texts = kind === 'predict' ? [r?.text] : r?.texts;
      if (
        !Array.isArray(texts) ||
        texts.length === 0 ||
        texts.length > MAX_BATCH ||
        !texts.every((t) => typeof t === 'string')
      ) {
        stats.rejected++;
        return send(res, 400, {
          detail:
            kind === 'predict'
              ? 'request.text must be a string'
              : `request.texts must be 1..${MAX_BATCH} strings`,
        });
      }
      if (queue.length >= maxQueue) {
        stats.rejected++;
        return send(res, 503, { detail: 'queue full' });
      }
      queue.push({
        kind,
        texts,
        res,
        requestId:
          r.request_id ?? req.headers['x-request-id'] ?? `sim-${calls + 1}`,
      });
      const depth = queue.length + (busy ? 1 : 0);
      if (depth > stats.maxQueued) stats.maxQueued = depth;
      pump();
    });
  });
  server.keepAliveTimeout = 65_000;
  return server;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'base-ms': { type: 'string', default: '20' },
      'per-item-ms': { type: 'string', default: '1' },
      'max-queue': { type: 'string', default: '10000' },
      bug: { type: 'string', default: process.env.MODEL_SIM_BUG ?? '' },
    },
  });
  if (!['', 'swap', 'flip', '500'].includes(values.bug))
    throw new Error(
      `--bug / MODEL_SIM_BUG: swap, flip or 500, not ${values.bug}`,
    );
  const server = createModelServer({
    baseMs: Number(values['base-ms']),
    perItemMs: Number(values['per-item-ms']),
    maxQueue: Number(values['max-queue']),
    bug: values.bug,
  });
  listenForHarness(server, Number(values.port));
}
