// A simulated model server: `slots` workers, each request holds one for `serviceMs`;
// past `slots`, requests wait inside the server (FIFO), as a BentoML worker pool or one
// GPU batch does. A request whose client left is still computed (the waste overload causes).
// Probes (/healthz, /livez, /readyz) answer at once; GET /stats gives the counters,
// POST /stats/reset zeroes them.
// Usage: node bench/model-server.mjs [--slots 4] [--service-ms 20] [--port 0] -> "LISTENING <port>".
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const PROBES = new Set(['/healthz', '/livez', '/readyz']);

function freshStats() {
  return {
    received: 0,
    served: 0,
    /** Answers computed for a client that had already left. */
    wasted: 0,
    /** Requests received and not yet answered, now and at most. */
    outstanding: 0,
    maxOutstanding: 0,
    /** Requests holding a worker slot, at most. */
    maxActive: 0,
    /** X-Request-ID of each request in the order it got a slot. */
    order: [],
  };
}

/**
 * Starts the server on 127.0.0.1; resolves with its url, live stats and close().
 * @param {{ slots?: number, serviceMs?: number, port?: number }} [options]
 */
export async function startModelServer({
  slots = 4,
  serviceMs = 20,
  port = 0,
} = {}) {
  let stats = freshStats();
  let active = 0;
  const waiting = [];

  const finish = (res) => {
    active--;
    stats.outstanding--;
    if (res.destroyed || !res.socket || res.socket.destroyed) {
      stats.wasted++;
    } else {
      stats.served++;
      const body = JSON.stringify({
        text: 'simulated',
        sentiment: 'POSITIVE',
        confidence: 0.9,
        request_id: res.req.headers['x-request-id'] ?? null,
        timestamp: new Date().toISOString(),
      });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    }
    next();
  };
  const next = () => {
    while (active < slots && waiting.length > 0) {
      const res = waiting.shift();
      active++;
      if (active > stats.maxActive) stats.maxActive = active;
      stats.order.push(String(res.req.headers['x-request-id'] ?? ''));
      setTimeout(finish, serviceMs, res);
    }
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    req.resume();
    req.on('end', () => {
      if (PROBES.has(path)) return send(res, 200, { status: 'ok' });
      if (path === '/stats') {
        if (req.method === 'POST') stats = freshStats();
        return send(res, 200, { ...stats, order: stats.order });
      }
      stats.received++;
      stats.outstanding++;
      if (stats.outstanding > stats.maxOutstanding)
        stats.maxOutstanding = stats.outstanding;
      waiting.push(res);
      next();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = server.address().port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    get stats() {
      return stats;
    },
    resetStats() {
      stats = freshStats();
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      slots: { type: 'string', default: '4' },
      'service-ms': { type: 'string', default: '20' },
      port: { type: 'string', default: '0' },
    },
  });
  const server = await startModelServer({
    slots: Number(values.slots),
    serviceMs: Number(values['service-ms']),
    port: Number(values.port),
  });
  console.log(`LISTENING ${server.port}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
