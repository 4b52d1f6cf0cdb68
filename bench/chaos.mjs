#!/usr/bin/env node
// Bounded chaos run against the built gateway (dist/main.js).
//
//   npm run chaos          ~8000 requests, concurrency 40 (about 40 s, builds first)
//   npm run chaos:smoke    ~2500 requests, concurrency 20 (20-30 s, used by .ci/run; needs a build)
//
// Three in-process flaky upstreams answer, fail with 5xx, reset connections
// (before and during the body), stall (before and after the headers), send
// large streamed bodies or invalid HTTP, and are stopped and restarted at
// random. Clients abort at random, and a side loop sends malformed HTTP on raw
// sockets. At the end it asserts:
//   - every request not aborted by its client got exactly one well-formed
//     answer with its request id (or, when a backend died mid-stream, a head
//     with its request id and then a cut connection): lost = 0;
//   - the gateway process never exited;
//   - RSS after the run is within 20 % of RSS after warm-up (the gateway runs with the chart's heap settings);
//   - /metrics counts match the client-side counts.
// Options: --smoke, --requests N, --concurrency N, --heap-mb N (gateway old-space
// limit, default the chart's; 0 = Node's default), --semi-mb N (semi-space, default the chart's), --json (summary as JSON on the last line).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chartNodeOptions } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const REQUESTS = option('--requests', smoke ? 2500 : 8000);
const CONCURRENCY = option('--concurrency', smoke ? 20 : 40);
const WARMUP = smoke ? 500 : 1000;
const MAX_RUN_MS = smoke ? 40_000 : 180_000;
const CLIENT_ABORT_P = 0.08;
/** A numeric `--name=N` flag of the chart's nodeOptions (0 when it has none). */
const chartFlag = (name) =>
  Number(new RegExp(`--${name}=(\\d+)`).exec(chartNodeOptions())?.[1] ?? 0);
/** Old-space limit for the gateway, the chart's (`nodeOptions`); 0 = Node's default (RSS then saw-tooths up to ~230 MB under this load before a major GC, heap used flat). */
const HEAP_MB = option('--heap-mb', chartFlag('max-old-space-size'));
/** Semi-space size (MB) of V8's young generation, the chart's; 0 = Node's default (16 MB on Node 24). */
const SEMI_MB = option('--semi-mb', chartFlag('max-semi-space-size'));
const SETTLE_MS = smoke ? 15_000 : 20_000;
const BAD_INPUT_EVERY_MS = 15;
const BACKEND_TIMEOUT_MS = 1500;

/** The node flags of `npm run start:prod`, so the gateway runs as in production. */
const START_PROD_FLAGS = (() => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const words = (pkg.scripts?.['start:prod'] ?? '').split(/\s+/);
  return words.filter((word) => word.startsWith('--'));
})();
/** The gateway's node flags: start:prod's, then the heap settings. */
const NODE_ARGS = [
  ...START_PROD_FLAGS,
  ...(HEAP_MB ? [`--max-old-space-size=${HEAP_MB}`] : []),
  ...(SEMI_MB ? [`--max-semi-space-size=${SEMI_MB}`] : []),
];

const rand = (min, max) => min + Math.random() * (max - min);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- upstreams
const faults = {};
const countFault = (name) => (faults[name] = (faults[name] ?? 0) + 1);

/** Weighted fault table for prediction requests (the rest answer 200). */
const FAULTS = [
  ['http_500', 0.05, (res) => json(res, 500, { error: 'model crashed' })],
  ['http_503', 0.04, (res) => json(res, 503, { error: 'overloaded' })],
  ['reset_before_answer', 0.05, (res) => res.socket.destroy()],
  [
    'reset_mid_body',
    0.03,
    (res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(4096, 'p'));
      setTimeout(() => res.socket?.destroy(), rand(5, 50));
    },
  ],
  ['stall_before_headers', 0.02, () => undefined],
  [
    'stall_after_headers',
    0.02,
    (res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    },
  ],
  [
    'large_streamed_body',
    0.02,
    async (res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 'L');
      for (let i = 0; i < 32 && !res.destroyed; i++) {
        if (!res.write(chunk)) await drained(res);
      }
      res.end();
    },
  ],
  ['invalid_http', 0.01, (res) => res.socket.end('THIS IS NOT HTTP\r\n\r\n')],
  [
    'slow_answer',
    0.05,
    (res, req) => setTimeout(() => ok(res, req), rand(100, 400)),
  ],
];

function drained(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function json(res, status, body) {
  if (res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

function ok(res, req) {
  json(res, 200, {
    sentiment: 'POSITIVE',
    confidence: 0.9,
    request_id: req.headers['x-request-id'],
  });
}

class FlakyUpstream {
  constructor(name) {
    this.name = name;
    this.sockets = new Set();
    this.port = 0;
    this.up = false;
  }

  async start() {
    this.server = createServer((req, res) => {
      req.resume();
      req.on('end', () => this.handle(req, res));
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.up = true;
  }

  async stop() {
    this.up = false;
    const server = this.server;
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }

  handle(req, res) {
    if (req.url === '/healthz') return json(res, 200, { status: 'ok' });
    let p = Math.random();
    for (const [name, weight, act] of FAULTS) {
      if (p < weight) {
        countFault(name);
        return void act(res, req);
      }
      p -= weight;
    }
    setTimeout(() => ok(res, req), rand(0, 15));
  }
}

// ---------------------------------------------------------------- gateway
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startGateway(backends) {
  const port = await freePort();
  const child = spawn(process.execPath, [...NODE_ARGS, 'dist/main.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      LOG_LEVEL: 'warn',
      BACKEND_URLS: backends.map((b) => `http://127.0.0.1:${b.port}`).join(','),
      BACKEND_TIMEOUT_MS: String(BACKEND_TIMEOUT_MS),
      MAX_BODY_BYTES: '65536',
      HEALTH_CHECK_INTERVAL_MS: '500',
      HEALTH_CHECK_TIMEOUT_MS: '300',
      UNHEALTHY_THRESHOLD: '2',
      HEALTHY_THRESHOLD: '1',
      EJECT_BASE_MS: '1000',
      EJECT_AFTER_FAILURES: '5',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = {
    lines: 0,
    warn: 0,
    error: 0,
    fatal: 0,
    unhandled: 0,
    client_errors: {},
    client_error_routes: {},
  };
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  createInterface({ input: child.stdout }).on('line', (text) => {
    logs.lines++;
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      return;
    }
    if (line.level in logs) logs[line.level]++;
    if (line.msg === 'unhandled error') logs.unhandled++;
    if (line.context === 'ClientError') {
      logs.client_errors[line.error] =
        (logs.client_errors[line.error] ?? 0) + 1;
    }
    if (
      line.route &&
      line.status >= 400 &&
      line.status < 500 &&
      line.status !== 499
    ) {
      const key = `${line.route} ${line.status} ${line.msg}`;
      logs.client_error_routes[key] = (logs.client_error_routes[key] ?? 0) + 1;
    }
  });
  // LOG_LEVEL=warn hides the "listening" line: poll liveness instead.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`gateway exited (${child.exitCode}) at boot: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('gateway not live within 20 s');
    }
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/live`)).ok) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return { child, port, logs, exited, stderr: () => stderr };
}

function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

async function scrape(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const counts = {};
  for (const m of text.matchAll(
    /^gateway_http_requests_total\{method="POST",endpoint="([^"]+)",status="(\d+)"\} (\d+)$/gm,
  )) {
    counts[`${m[1]} ${m[2]}`] = Number(m[3]);
  }
  const start = Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1]);
  const heapUsed = Number(
    /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1],
  );
  return { counts, start, heapUsed };
}

// ---------------------------------------------------------------- clients
const PATHS = ['/predict', '/batch_predict'];

function oneRequest(port, agent, n, abortable) {
  const id = `chaos-${n}`;
  const path = PATHS[n % 2];
  const abortAfter =
    abortable && Math.random() < CLIENT_ABORT_P ? rand(0, 300) : null;
  const t0 = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let head = null;
    let bytes = 0;
    const kept = [];
    let timer;
    const finish = (kind) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(hard);
      resolve({
        ms: Date.now() - t0,
        end: Date.now(),
        kind,
        id,
        path,
        status: head?.statusCode ?? 0,
        headers: head?.headers,
        bytes,
        body: Buffer.concat(kept),
      });
    };
    const req = httpRequest({
      agent,
      host: '127.0.0.1',
      port,
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json', 'x-request-id': id },
    });
    if (abortAfter !== null) {
      // Abort only once the whole request is on the wire: the gateway has it.
      req.once('finish', () => {
        timer = setTimeout(() => {
          req.destroy();
          finish('client_aborted');
        }, abortAfter);
      });
    }
    // No answer at all within this bound is a lost request.
    const hard = setTimeout(
      () => {
        req.destroy();
        finish(head ? 'hung_after_head' : 'lost');
      },
      BACKEND_TIMEOUT_MS * 4 + 5000,
    );
    req.on('response', (res) => {
      head = res;
      res.on('data', (chunk) => {
        bytes += chunk.length;
        if (bytes <= 65536) kept.push(chunk);
      });
      res.on('end', () => finish('complete'));
      res.on('error', () => finish('cut'));
      res.on('close', () => finish(res.complete ? 'complete' : 'cut'));
    });
    req.on('error', () => finish(head ? 'cut' : 'lost'));
    req.end(
      path === '/predict'
        ? '{"request":{"text":"chaos"}}'
        : '{"request":{"texts":["a","b"]}}',
    );
  });
}

/** Checks one answer; returns a problem description or null. */
function problemWith(r) {
  if (r.kind === 'client_aborted') return null;
  if (r.kind === 'lost' || r.kind === 'hung_after_head')
    return `${r.kind} (no complete answer)`;
  if (r.headers['x-request-id'] !== r.id)
    return `x-request-id ${r.headers['x-request-id']} != ${r.id}`;
  if (r.kind === 'cut')
    return r.status === 200 ? null : `cut connection after status ${r.status}`;
  if (![200, 500, 502, 503, 504].includes(r.status))
    return `unexpected status ${r.status}`;
  const type = r.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) {
    let body;
    try {
      body = JSON.parse(r.body.toString());
    } catch {
      return `status ${r.status}: body is not JSON`;
    }
    if (r.status === 200 && body.request_id !== r.id)
      return `answer for ${body.request_id} delivered to ${r.id}`;
    if ('statusCode' in body) {
      if (body.statusCode !== r.status || body.request_id !== r.id)
        return `bad error body ${JSON.stringify(body)}`;
      if (/127\.0\.0\.1|\n\s+at /.test(body.message))
        return `error leaks internals: ${body.message}`;
    }
  } else if (r.status === 200 && r.bytes !== 32 * 64 * 1024 && r.bytes !== 0) {
    // Streamed large body answered in full.
    return `200 with ${r.bytes} bytes of ${type}`;
  }
  return null;
}

// ---------------------------------------------------------------- bad input
const H = 'Host: gw\r\n';
const BAD_INPUTS = [
  'GARBAGE\r\n\r\n',
  `G@T / HTTP/1.1\r\n${H}\r\n`,
  `GET / HTTP/9.9\r\n${H}\r\n`,
  `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n${H}\r\n`,
  `GET / HTTP/1.1\r\n${H}${Array.from({ length: 150 }, (_, i) => `x-h${i}: v`).join('\r\n')}\r\n\r\n`,
  `POST /predict HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\n${H}\r\n`,
  `POST /predict HTTP/1.1\r\n${H}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x`,
  `POST /predict HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n{}`,
  `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n{}`,
  `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`,
  `POST /predict HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\n{}`,
  `GET / HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`,
  'GET / HTTP/1.1\r\n\r\n',
  'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n',
  `POST /predict/../metrics HTTP/1.1\r\n${H}Content-Length: 2\r\nConnection: close\r\n\r\n{}`,
  `POST //predict HTTP/1.1\r\n${H}Content-Length: 2\r\nConnection: close\r\n\r\n{}`,
  `POST /%2e%2e/predict HTTP/1.1\r\n${H}Content-Length: 2\r\nConnection: close\r\n\r\n{}`,
  `GET /predict HTTP/1.1\r\n${H}X-HTTP-Method-Override: POST\r\nConnection: close\r\n\r\n`,
  // 100 KiB chunked against MAX_BODY_BYTES=64 KiB, body never finished.
  `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
    `400\r\n${'y'.repeat(1024)}\r\n`.repeat(100),
];
/** Bad inputs that reach a route (framing broken mid-body) count there: index -> series. */
const BAD_ROUTED = {
  6: '/predict 400',
  10: '/predict 400',
  19: '/predict 413',
};
const BAD_EXPECTED = [
  400, 400, 400, 431, 431, 431, 400, 400, 400, 400, 400, 400, 400, 400, 405,
  404, 404, 404, 405, 413,
];

function badInput(port, index) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
      const id = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(text)?.[1];
      const bodyId = /"request_id":"([^"]+)"/.exec(text)?.[1];
      resolve(
        status === BAD_EXPECTED[index] && id !== undefined && id === bodyId,
      );
    };
    const timer = setTimeout(done, 3000);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n') && /"request_id":"[^"]+"\}/.test(text))
        done();
    });
    socket.on('error', () => undefined);
    socket.on('close', done);
    socket.write(BAD_INPUTS[index]);
  });
}

// ---------------------------------------------------------------- run
async function main() {
  if (!existsSync(join(root, 'dist/main.js'))) {
    console.error('chaos: dist/main.js is missing; run `npm run build` first');
    process.exit(2);
  }
  const started = Date.now();
  // Bounded whatever happens: a hung run is a failed run.
  setTimeout(() => {
    console.error(`chaos: no verdict within ${(MAX_RUN_MS + 60_000) / 1000} s`);
    process.exit(2);
  }, MAX_RUN_MS + 60_000).unref();
  const upstreams = [
    new FlakyUpstream('a'),
    new FlakyUpstream('b'),
    new FlakyUpstream('c'),
  ];
  for (const u of upstreams) await u.start();
  const gw = await startGateway(upstreams);
  process.once('exit', () => gw.child.kill('SIGKILL'));
  let gatewayExited = null;
  void gw.exited.then((e) => (gatewayExited = e));
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  const before = await scrape(gw.port);
  const rssBoot = rssBytes(gw.child.pid);

  // Backends stop and come back at random while traffic flows.
  let chaosOn = true;
  let restarts = 0;
  const restarter = (async () => {
    while (chaosOn) {
      await sleep(rand(1500, 3500));
      if (!chaosOn) break;
      const victim = upstreams[Math.floor(Math.random() * upstreams.length)];
      if (!victim.up) continue;
      await victim.stop();
      restarts++;
      countFault('backend_restart');
      await sleep(rand(300, 1500));
      await victim.start();
    }
  })();

  // Malformed input on raw sockets, alongside the traffic.
  const bad = { tried: 0, answered: 0, routed: {} };
  const badLoop = (async () => {
    while (chaosOn) {
      const index = bad.tried % BAD_INPUTS.length;
      bad.tried++;
      const series = BAD_ROUTED[index];
      if (series) bad.routed[series] = (bad.routed[series] ?? 0) + 1;
      if (await badInput(gw.port, index)) bad.answered++;
      else bad.failures = [...(bad.failures ?? []), index].slice(-10);
      await sleep(BAD_INPUT_EVERY_MS);
    }
  })();

  const rssSamples = [];
  const sampler = setInterval(() => {
    try {
      rssSamples.push(mb(rssBytes(gw.child.pid)));
    } catch {
      // process gone: reported by the restart check
    }
  }, 1000);

  // The same chaos throughout; the RSS baseline is taken once the warm-up
  // share of the requests is done (V8's heap has grown to its working size).
  const deadline = started + MAX_RUN_MS;
  const warmup = await runLoad(
    gw.port,
    agent,
    WARMUP,
    CONCURRENCY,
    0,
    true,
    deadline,
  );
  await sleep(500);
  const rssBefore = rssBytes(gw.child.pid);
  const heapBefore = (await scrape(gw.port)).heapUsed;
  const results = warmup.concat(
    await runLoad(
      gw.port,
      agent,
      REQUESTS - WARMUP,
      CONCURRENCY,
      WARMUP,
      true,
      deadline,
    ),
  );
  chaosOn = false;
  clearInterval(sampler);
  await restarter;
  await badLoop;
  for (const u of upstreams) if (!u.up) await u.start();
  await sleep(1500); // let in-flight server-side work settle (stalls end at BACKEND_TIMEOUT_MS)
  const after = await scrape(gw.port);
  // RSS of a V8 process is a sawtooth under load (old space grows until a
  // major GC); once idle, V8's memory reducer collects within seconds. "After"
  // is read when that has happened (or at the end of the settle window).
  let rssAfter = rssBytes(gw.child.pid);
  const settleUntil = Date.now() + SETTLE_MS;
  while (rssAfter > rssBefore * 1.2 && Date.now() < settleUntil) {
    await sleep(1000);
    rssAfter = rssBytes(gw.child.pid);
  }
  const heapAfter = (await scrape(gw.port)).heapUsed;
  agent.destroy();

  // ------------------------------------------------------------ verdict
  const kinds = {};
  const byStatus = {};
  const problems = [];
  for (const r of results) {
    kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
    if (r.kind === 'complete')
      byStatus[`${r.path} ${r.status}`] =
        (byStatus[`${r.path} ${r.status}`] ?? 0) + 1;
    const problem = problemWith(r);
    if (problem) problems.push(`${r.id} ${r.path}: ${problem}`);
  }
  const serverDelta = {};
  for (const key of new Set([
    ...Object.keys(after.counts),
    ...Object.keys(before.counts),
  ])) {
    const d = (after.counts[key] ?? 0) - (before.counts[key] ?? 0);
    if (d) serverDelta[key] = d;
  }
  const checks = [];
  const check = (name, pass, detail) => checks.push({ name, pass, detail });
  const lost =
    (kinds.lost ?? 0) + (kinds.hung_after_head ?? 0) + problems.length;
  check(
    'every request not aborted by its client got one well-formed answer with its request id',
    lost === 0,
    problems.slice(0, 10),
  );
  check(
    'the gateway never restarted',
    gatewayExited === null && after.start === before.start,
    gatewayExited ?? 'same process',
  );
  check(
    'RSS after the run within 20 % of before',
    rssAfter <= rssBefore * 1.2,
    `${mb(rssBefore)} -> ${mb(rssAfter)}`,
  );
  for (const path of PATHS) {
    const sent = results.filter((r) => r.path === path).length;
    const badRouted = sum(bad.routed, path);
    const counted = sum(serverDelta, path) - badRouted;
    check(
      `/metrics counts every ${path} request exactly once`,
      counted === sent,
      `sent ${sent}, counted ${counted} (+${badRouted} bad inputs on this route)`,
    );
    for (const [series, n] of Object.entries(bad.routed)) {
      if (!series.startsWith(path + ' ')) continue;
      const server = serverDelta[series] ?? 0;
      const client = byStatus[series] ?? 0;
      check(
        `/metrics ${series} counts the bad inputs sent there`,
        server === n + client,
        `bad inputs ${n}, counted ${server}`,
      );
    }
    const aborted = results.filter(
      (r) =>
        r.path === path && (r.kind === 'client_aborted' || r.kind === 'cut'),
    ).length;
    for (const [key, clientCount] of Object.entries(byStatus)) {
      if (!key.startsWith(path + ' ')) continue;
      const server = serverDelta[key] ?? 0;
      // A client abort can race the last bytes of an answer: the server then counts that answer's status.
      check(
        `/metrics ${key} matches the client count`,
        server >= clientCount && server - clientCount <= aborted,
        `client ${clientCount}, server ${server}`,
      );
    }
    const s499 = serverDelta[`${path} 499`] ?? 0;
    check(
      `/metrics ${path} 499 <= client aborts + cut streams`,
      s499 <= aborted,
      `499: ${s499}, aborted or cut: ${aborted}`,
    );
  }
  check(
    'bad inputs each got the expected JSON error with a request id',
    bad.answered === bad.tried,
    `${bad.answered}/${bad.tried}${bad.failures ? ' failing kinds ' + bad.failures.join(',') : ''}`,
  );
  check(
    'no unhandled errors logged by the gateway',
    gw.logs.unhandled === 0 && gw.logs.fatal === 0,
    gw.logs,
  );

  gw.child.kill('SIGTERM');
  const exit = await Promise.race([
    gw.exited,
    sleep(10_000).then(() => 'no exit within 10 s'),
  ]);
  if (exit === 'no exit within 10 s') gw.child.kill('SIGKILL');
  for (const u of upstreams) if (u.up) await u.stop();

  const faultsInjected = Object.values(faults).reduce((a, b) => a + b, 0);
  const summary = {
    mode: smoke ? 'smoke' : 'full',
    gateway_node_flags: NODE_ARGS,
    duration_s: Math.round((Date.now() - started) / 100) / 10,
    concurrency: CONCURRENCY,
    requests_sent: results.length,
    warmup_requests: WARMUP,
    rss_boot_mb: mb(rssBoot),
    rss_samples_mb: rssSamples,
    slowest_ms: results
      .map((r) => r.ms)
      .sort((a, b) => b - a)
      .slice(0, 5),
    per_second: perSecond(results, started),
    rss_peak_mb: Math.max(...rssSamples),
    heap_used_before_mb: mb(heapBefore),
    heap_used_after_mb: mb(heapAfter),
    outcomes: kinds,
    lost,
    client_aborts: kinds.client_aborted ?? 0,
    faults_injected: faultsInjected,
    faults,
    backend_restarts: restarts,
    bad_inputs_tried: bad.tried,
    bad_inputs_answered: bad.answered,
    rss_before_mb: mb(rssBefore),
    rss_after_mb: mb(rssAfter),
    client_status_counts: byStatus,
    server_status_counts: serverDelta,
    gateway_logs: gw.logs,
    gateway_exit_on_sigterm: exit,
    checks,
  };
  for (const c of checks)
    console.log(
      `${c.pass ? 'PASS' : 'FAIL'}  ${c.name}  ${typeof c.detail === 'string' ? c.detail : JSON.stringify(c.detail)}`,
    );
  console.log(
    `chaos ${summary.mode}: ${summary.requests_sent} requests (${summary.client_aborts} aborted by clients), ` +
      `${faultsInjected} faults injected (${restarts} backend restarts), ${bad.tried} bad inputs, lost ${lost}, ` +
      `RSS ${summary.rss_before_mb} -> ${summary.rss_after_mb} MB, ${summary.duration_s} s`,
  );
  if (args.includes('--json')) console.log(JSON.stringify(summary));
  process.exit(checks.every((c) => c.pass) ? 0 : 1);
}

async function runLoad(
  port,
  agent,
  count,
  concurrency,
  offset,
  abortable,
  deadline = Infinity,
) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < count && Date.now() < deadline) {
      const n = offset + next++;
      results.push(await oneRequest(port, agent, n, abortable));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

function perSecond(results, started) {
  const buckets = [];
  for (const r of results) {
    const i = Math.floor((r.end - started) / 1000);
    buckets[i] = (buckets[i] ?? 0) + 1;
  }
  return Array.from(buckets, (n) => n ?? 0);
}

const mb = (bytes) => Math.round(bytes / 1024 / 102.4) / 10;
const sum = (counts, path) =>
  Object.entries(counts)
    .filter(([key]) => key.startsWith(path + ' '))
    .reduce((total, [, n]) => total + n, 0);

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
