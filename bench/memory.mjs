#!/usr/bin/env node
// Memory of the gateway under the loads of the outside review, on Node 24 (the image's runtime) and Node 20,
// both with the Helm chart's NODE_OPTIONS (its value nodeOptions, read from values.yaml). Each scenario x runtime is a fresh gateway
// (and a fresh test backend): VmRSS of /proc/<pid>/status sampled every 100 ms (peak during the load), VmHWM at
// the end, RSS `--settle` s after the load stopped. Prints one markdown table, writes JSON (--out).
//   cache-on     CACHE_TTL_SECONDS=60 (CACHE_MAX_BYTES default 64 MiB): for --duration s, 8 closed-loop clients
//                POST distinct ~2 MB /batch_predict bodies and 8 POST distinct small /predict bodies
//   cache-off    the same load, cache off
//   small-only   the 8 /predict clients alone, cache on (the cache fills with small entries)
//   mirror-hang  ROUTES_FILE: model sentiment, v1 = the test backend, mirror shadow (percent 100) = a TCP server
//                that accepts and never reads; --mirror-requests (160) POST /batch_predict of ~2 MB at concurrency 8
// The test backend (this script with --serve-backend, a child process) answers /batch_predict with JSON of 1/4
// of the request's size, /predict with 8 KB of JSON, /healthz with 200.
// Usage: npm run bench:memory [-- --duration 30 --runtimes node24,node20 --scenarios cache-on,cache-off,small-only,mirror-hang
//   --settle 15 --mirror-requests 160 --node-options="--max-old-space-size=128" --out bench/results/memory.json
//   --logs dir (keep each gateway's stdout+stderr there) --sequential (no overlap of one run's settle with the next)]
// Env: BENCH_GATEWAY_DIST=dir (measure another build, copied like bench/run.mjs does), BENCH_NODE20=/path/to/node
// (default: this node when it is v20), BENCH_GATEWAY_ENV="K=V,K=V" (added to every gateway's env, last).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { listenForHarness } from './harness-child.mjs';
import {
  BENCH_DIR,
  REPO,
  chartNodeOptions,
  freePort,
  gatewayEnv,
  hwmMB,
  installCleanup,
  node24Binary,
  productionNodeArgs,
  request,
  rssMB,
  sleep,
  snapshotDist,
  spawnListening,
  stop,
  track,
  waitFor200,
} from './lib.mjs';

const SCENARIOS = ['cache-on', 'cache-off', 'small-only', 'mirror-hang'];
const RUNTIMES = ['node24', 'node20'];
const CLIENTS = 8; // per kind: 8 batch + 8 predict clients
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_REQUESTS_PER_CLIENT = 1_000_000; // a bound on every loop besides its deadline

// ------------------------------------------------------------ test backend (child process)
function serveBackend() {
  const predictAnswer = (() => {
    const head = '{"sentiment":"POSITIVE","confidence":0.9998,"detail":"';
    const tail = '"}';
    return Buffer.from(
      head + 'x'.repeat(8192 - head.length - tail.length) + tail,
    );
  })();
  const batchAnswers = new Map(); // size -> body; request sizes barely vary
  const row = '{"sentiment":"POSITIVE","confidence":0.9998},';
  const batchAnswer = (size) => {
    let body = batchAnswers.get(size);
    if (!body) {
      const inner = Math.max(0, size - 16);
      const rows = row.repeat(Math.floor(inner / row.length)).slice(0, -1);
      body = Buffer.from(`{"results":[${rows}]}`);
      if (batchAnswers.size > 64) batchAnswers.clear();
      batchAnswers.set(size, body);
    }
    return body;
  };
  const send = (res, status, body) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': body.length,
    });
    res.end(body);
  };
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => {
      const p = req.url.split('?')[0];
      if (req.method === 'POST' && p === '/predict')
        send(res, 200, predictAnswer);
      else if (req.method === 'POST' && p === '/batch_predict')
        send(res, 200, batchAnswer(Math.floor(bytes / 4)));
      else if (req.method === 'GET' && p === '/healthz')
        send(res, 200, Buffer.from('{"status":"ok"}'));
      else send(res, 404, Buffer.from('{"error":"not found"}'));
    });
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  listenForHarness(server, 0);
}

// ------------------------------------------------------------ bodies
const BATCH_TEXT =
  'This workshop gateway benchmark sentence is positive and long. '
    .repeat(330)
    .slice(0, 20_960);
// {"request":{"texts":[ "<id> " + text, text x 99 ]}}: ~2.1 MB, distinct by <id> (fixed width: constant size).
const BATCH_HEAD = Buffer.from('{"request":{"texts":["');
const BATCH_TAIL = Buffer.from(
  `${BATCH_TEXT}",${Array.from({ length: 99 }, () => JSON.stringify(BATCH_TEXT)).join(',')}]}}`,
);
const batchBody = (client, n) =>
  Buffer.concat([
    BATCH_HEAD,
    Buffer.from(
      `c${String(client).padStart(2, '0')}-${String(n).padStart(9, '0')} `,
    ),
    BATCH_TAIL,
  ]);
const predictBody = (client, n) =>
  Buffer.from(
    JSON.stringify({
      request: {
        text: `I love this product, it works great! (client ${client}, request ${n})`,
      },
    }),
  );

// ------------------------------------------------------------ load
/** One POST on a keep-alive agent; resolves { status } or { error }, never rejects. */
function post(agent, port, p, body) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: p,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
        },
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => finish({ status: res.statusCode }));
        res.on('error', (e) => finish({ error: e.code ?? e.message }));
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => finish({ error: e.code ?? e.message }));
    req.end(body);
  });
}

function newTally() {
  return { batch: 0, predict: 0, non200: 0, statuses: {}, errors: {} };
}

function count(tally, kind, r) {
  tally[kind]++;
  if (r.status === 200) return;
  tally.non200++;
  if (r.status) tally.statuses[r.status] = (tally.statuses[r.status] ?? 0) + 1;
  else tally.errors[r.error] = (tally.errors[r.error] ?? 0) + 1;
}

/** A closed-loop client: one request at a time until `deadline` (or `next()` gives no more work). */
async function client({ port, kind, id, tally, deadline, next }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const p = kind === 'batch' ? '/batch_predict' : '/predict';
  try {
    for (let i = 0; i < MAX_REQUESTS_PER_CLIENT; i++) {
      if (performance.now() >= deadline) break;
      const n = next ? next() : i;
      if (n === null) break;
      const body = kind === 'batch' ? batchBody(id, n) : predictBody(id, n);
      const r = await post(agent, port, p, body);
      count(tally, kind, r);
      if (r.error) await sleep(50); // no tight loop against a gateway that refuses
    }
  } finally {
    agent.destroy();
  }
}

// ------------------------------------------------------------ the never-reading mirror
/** A TCP server that accepts connections and never reads from them (nor answers). */
function startHangServer() {
  const sockets = new Set();
  let accepted = 0;
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    accepted++;
    if (sockets.size >= 2000) return socket.destroy();
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: server.address().port,
        accepted: () => accepted,
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    );
  });
}

// ------------------------------------------------------------ gateway
function envOverrides() {
  const out = {};
  for (const kv of (process.env.BENCH_GATEWAY_ENV ?? '')
    .split(',')
    .filter(Boolean)) {
    const i = kv.indexOf('=');
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

async function metricsSummary(port) {
  try {
    const { body: text } = await request(port, {
      path: '/metrics',
      timeoutMs: 5000,
    });
    const lines = text.split('\n');
    const value = (prefix, filter = () => true) =>
      lines
        .filter((l) => l.startsWith(prefix) && filter(l))
        .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
    const has = (prefix) => lines.some((l) => l.startsWith(prefix));
    const out = {};
    if (has('gateway_cache_entries'))
      out.cacheEntries = value('gateway_cache_entries');
    if (has('gateway_mirror_requests_total')) {
      for (const result of ['ok', 'error', 'skipped'])
        out[`mirror_${result}`] = value('gateway_mirror_requests_total', (l) =>
          l.includes(`result="${result}"`),
        );
    }
    return out;
  } catch (e) {
    return { metricsError: e.message };
  }
}

const round = (x) => Math.round(x * 10) / 10;

async function runOne({
  onLoaded,
  scenario,
  runtime,
  mainJs,
  nodeArgs,
  nodeOptions,
  cfg,
  tmp,
}) {
  const backend = await spawnListening('memory.mjs', ['--serve-backend']);
  const hang = scenario === 'mirror-hang' ? await startHangServer() : null;
  const port = await freePort();
  const env = await gatewayEnv(
    port,
    { url: `http://127.0.0.1:${backend.port}` },
    path.dirname(mainJs),
  );
  env.LOG_LEVEL = 'warn';
  env.NODE_OPTIONS = nodeOptions;
  if (scenario === 'cache-on' || scenario === 'small-only')
    env.CACHE_TTL_SECONDS = '60';
  if (hang) {
    const routes = path.join(tmp, `routes-${runtime.name}.yaml`);
    fs.writeFileSync(
      routes,
      [
        'models:',
        '  sentiment:',
        '    default: true',
        '    versions:',
        `      - {name: v1, urls: ["http://127.0.0.1:${backend.port}"], weight: 1}`,
        `    mirror: {name: shadow, urls: ["http://127.0.0.1:${hang.port}"], percent: 100}`,
        '',
      ].join('\n'),
    );
    env.ROUTES_FILE = routes;
  }
  Object.assign(env, envOverrides());
  const logFile = path.join(cfg.logs ?? tmp, `${scenario}-${runtime.name}.log`);
  const logFd = fs.openSync(logFile, 'w');
  const gw = track(
    spawn(runtime.bin, [...nodeArgs, mainJs], {
      env,
      stdio: ['ignore', logFd, logFd],
      detached: true,
    }),
  );
  fs.closeSync(logFd);
  const logTail = () => {
    try {
      return `\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`;
    } catch {
      return '';
    }
  };
  const samples = []; // { t (s from ready), mb, phase }
  let phase = 'idle';
  let timer = null;
  try {
    await waitFor200(port, '/health/live', {
      child: gw,
      timeoutMs: 30_000,
      describe: logTail,
    });
    const t0 = performance.now();
    const sample = () =>
      samples.push({
        t: (performance.now() - t0) / 1000,
        mb: rssMB(gw.pid),
        phase,
      });
    sample();
    timer = setInterval(sample, 100);
    await sleep(1000);
    const idleMB = rssMB(gw.pid);

    const tally = newTally();
    phase = 'load';
    const loadStart = performance.now();
    const clients = [];
    if (scenario === 'mirror-hang') {
      let issued = 0;
      const next = () => (issued < cfg.mirrorRequests ? issued++ : null);
      const deadline = loadStart + cfg.mirrorTimeoutS * 1000;
      for (let id = 0; id < CLIENTS; id++)
        clients.push(
          client({ port, kind: 'batch', id, tally, deadline, next }),
        );
    } else {
      const deadline = loadStart + cfg.duration * 1000;
      if (scenario !== 'small-only')
        for (let id = 0; id < CLIENTS; id++)
          clients.push(client({ port, kind: 'batch', id, tally, deadline }));
      for (let id = 0; id < CLIENTS; id++)
        clients.push(client({ port, kind: 'predict', id, tally, deadline }));
    }
    await Promise.all(clients);
    const loadSeconds = (performance.now() - loadStart) / 1000;
    phase = 'settle';
    onLoaded();
    await sleep(cfg.settle * 1000);
    const afterMB = rssMB(gw.pid);
    const hwm = hwmMB(gw.pid);
    clearInterval(timer);
    timer = null;
    const metrics = await metricsSummary(port);
    if (gw.exitCode !== null || gw.signalCode !== null)
      throw new Error(
        `gateway exited (${gw.exitCode ?? gw.signalCode}) during the run${logTail()}`,
      );
    const peak = (ph) =>
      Math.max(
        0,
        ...samples.filter((s) => !ph || s.phase === ph).map((s) => s.mb),
      );
    // One point per second (the highest sample of that second) for the JSON.
    const perSecond = [];
    for (const s of samples) {
      const sec = Math.floor(s.t);
      if (!perSecond[sec] || perSecond[sec].mb < s.mb)
        perSecond[sec] = { t: sec, mb: round(s.mb), phase: s.phase };
    }
    let logLines = 0;
    try {
      logLines = fs
        .readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean).length;
    } catch {
      // no log
    }
    return {
      scenario,
      runtime: runtime.name,
      nodeVersion: runtime.version,
      loadSeconds: round(loadSeconds),
      requests: tally.batch + tally.predict,
      batchRequests: tally.batch,
      predictRequests: tally.predict,
      non200: tally.non200,
      statuses: tally.statuses,
      errors: tally.errors,
      idleMB: round(idleMB),
      peakLoadMB: round(peak('load')),
      peakSettleMB: round(peak('settle')),
      hwmMB: round(hwm),
      afterMB: round(afterMB),
      samples: samples.length,
      metrics,
      warnLogLines: logLines,
      ...(hang ? { mirrorConnections: hang.accepted() } : {}),
      rssPerSecond: perSecond.filter(Boolean),
    };
  } finally {
    if (timer) clearInterval(timer);
    await stop(gw);
    hang?.close();
    await stop(backend.child);
  }
}

// ------------------------------------------------------------ main
function nodeVersion(bin) {
  return (
    spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  );
}

function resolveRuntimes(names, note) {
  const out = [];
  for (const name of names) {
    if (name === 'node24') {
      const n = node24Binary({ log: (l) => console.error(l) });
      if (n.bin) out.push({ name, bin: n.bin, version: n.version });
      else note(`node24 skipped: ${n.skip}`);
    } else if (name === 'node20') {
      const bin = process.env.BENCH_NODE20 || process.execPath;
      const version = nodeVersion(bin);
      if (version.startsWith('v20.')) out.push({ name, bin, version });
      else
        note(
          `node20 skipped: ${bin} is ${version || 'not runnable'} (BENCH_NODE20=/path/to/node20)`,
        );
    } else
      throw new Error(
        `unknown runtime ${name} (known: ${RUNTIMES.join(', ')})`,
      );
  }
  return out;
}

function cell(x) {
  return x === undefined || x === null || Number.isNaN(x) ? '-' : String(x);
}

function notesOf(r) {
  const parts = [];
  if (r.metrics.cacheEntries !== undefined && r.scenario !== 'mirror-hang')
    parts.push(`cache entries ${r.metrics.cacheEntries}`);
  if (r.scenario === 'mirror-hang')
    parts.push(
      `mirror copies ok ${r.metrics.mirror_ok ?? 0} / error ${r.metrics.mirror_error ?? 0} / skipped ${r.metrics.mirror_skipped ?? 0}, ${r.mirrorConnections} connections to it`,
    );
  const odd = { ...r.statuses, ...r.errors };
  if (Object.keys(odd).length)
    parts.push(
      Object.entries(odd)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', '),
    );
  if (r.warnLogLines) parts.push(`${r.warnLogLines} warn+ log lines`);
  return parts.join('; ') || '-';
}

function table(results, header) {
  return [
    header,
    '',
    '| scenario | runtime | requests (batch + predict) | non-200 | RSS idle MiB | peak RSS MiB (load) | VmHWM MiB | RSS after MiB | load s | notes |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) =>
      r.error
        ? `| ${r.scenario} | ${r.runtime} | failed: ${r.error.split('\n')[0]} | | | | | | | |`
        : `| ${r.scenario} | ${r.runtime} ${r.nodeVersion} | ${r.requests} (${r.batchRequests} + ${r.predictRequests}) | ${r.non200} | ${cell(r.idleMB)} | ${cell(r.peakLoadMB)} | ${cell(r.hwmMB)} | ${cell(r.afterMB)} | ${r.loadSeconds} | ${notesOf(r)} |`,
    ),
  ].join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '30' },
      runtimes: { type: 'string', default: RUNTIMES.join(',') },
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      settle: { type: 'string', default: '15' },
      'mirror-requests': { type: 'string', default: '160' },
      'node-options': { type: 'string', default: chartNodeOptions() },
      logs: { type: 'string' },
      sequential: { type: 'boolean', default: false },
      out: {
        type: 'string',
        default: path.join(BENCH_DIR, 'results', 'memory.json'),
      },
    },
  });
  const num = (name, min, max) => {
    const v = Number(values[name]);
    if (!Number.isFinite(v) || v < min || v > max)
      throw new Error(
        `--${name} ${values[name]}: expected a number from ${min} to ${max}`,
      );
    return v;
  };
  const cfg = {
    duration: num('duration', 1, 600),
    settle: num('settle', 0, 300),
    mirrorRequests: num('mirror-requests', 1, 10_000),
    logs: values.logs ? path.resolve(values.logs) : null,
    mirrorTimeoutS: 300, // the mirror scenario stops issuing requests after this, whatever is left
  };
  const scenarios = values.scenarios.split(',').filter(Boolean);
  for (const s of scenarios)
    if (!SCENARIOS.includes(s))
      throw new Error(`unknown scenario ${s} (known: ${SCENARIOS.join(', ')})`);
  installCleanup();
  if (cfg.logs) fs.mkdirSync(cfg.logs, { recursive: true });
  const notes = [];
  const note = (l) => {
    notes.push(l);
    console.error(`note: ${l}`);
  };
  const runtimes = resolveRuntimes(
    values.runtimes.split(',').filter(Boolean),
    note,
  );
  if (!runtimes.length) throw new Error('no runtime to run');

  const given = process.env.BENCH_GATEWAY_DIST
    ? path.resolve(process.env.BENCH_GATEWAY_DIST)
    : null;
  const from = given ?? path.join(REPO, 'dist');
  if (!fs.existsSync(path.join(from, 'main.js')))
    throw new Error(`${from}/main.js missing${given ? '' : ': npm run build'}`);
  if (fs.statSync(path.join(from, 'main.js')).size < 50_000)
    note(
      `${from}/main.js is not bundled (nest build alone?), unlike npm run build's: memory differs from production's`,
    );
  const mainJs = path.join(snapshotDist(from, 'memory'), 'main.js');
  const nodeArgs = productionNodeArgs();
  const tmp = fs.mkdtempSync(
    path.join(os.tmpdir(), 'api-gateway-bench-memory-'),
  );
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

  const git = (...a) =>
    spawnSync('git', ['-C', REPO, ...a], { encoding: 'utf8' }).stdout?.trim() ??
    '';
  const build =
    given ??
    `dist/ of ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', 'src') ? ' (src dirty)' : ''}`;
  const loadBefore = os.loadavg()[0];
  const started = Date.now();
  // Runtimes interleaved per scenario: drift of the machine's load hits both alike. Unless --sequential, the
  // next run starts as soon as the load of this one stops: this gateway's settle time (idle, RSS still sampled)
  // overlaps the next one's boot and load, which keeps the default run near 4 minutes instead of 6.
  const runs = [];
  for (const scenario of scenarios) {
    for (const runtime of runtimes) {
      console.error(`${scenario} on ${runtime.name} (${runtime.version}) ...`);
      let loaded;
      const loadDone = new Promise((resolve) => (loaded = resolve));
      const run = runOne({
        scenario,
        runtime,
        mainJs,
        nodeArgs,
        nodeOptions: values['node-options'],
        cfg,
        tmp,
        onLoaded: loaded,
      }).then(
        (r) => {
          console.error(
            `  ${scenario} on ${runtime.name}: ${r.requests} requests, ${r.non200} non-200, idle ${r.idleMB} MiB, peak ${r.peakLoadMB} MiB, HWM ${r.hwmMB} MiB, after ${r.afterMB} MiB`,
          );
          return r;
        },
        (e) => {
          console.error(
            `  ${scenario} on ${runtime.name} failed: ${e.message}`,
          );
          return {
            scenario,
            runtime: runtime.name,
            nodeVersion: runtime.version,
            error: e.message,
          };
        },
      );
      runs.push(run);
      await (values.sequential ? run : Promise.race([loadDone, run]));
    }
  }
  const results = await Promise.all(runs);
  const header =
    `Memory ${new Date(started).toISOString().slice(0, 16)} UTC: gateway ${build}, node flags "${nodeArgs.join(' ')}", ` +
    `NODE_OPTIONS=${values['node-options']}, LOG_LEVEL=warn; load ${cfg.duration} s (mirror-hang: ${cfg.mirrorRequests} requests), ` +
    `RSS after = ${cfg.settle} s after the last answer (${values.sequential ? 'runs one after another' : "overlapping the next run's boot and load"}); RSS sampled every 100 ms; ${os.cpus().length} cores, load average ` +
    `${loadBefore.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}; ${Math.round((Date.now() - started) / 1000)} s in all.`;
  const md = table(results, header);
  console.log(md);
  for (const n of notes) console.log(`\nnote: ${n}`);
  fs.mkdirSync(path.dirname(values.out), { recursive: true });
  fs.writeFileSync(
    values.out,
    `${JSON.stringify(
      {
        date: new Date(started).toISOString(),
        build,
        commit: git('rev-parse', 'HEAD'),
        nodeArgs,
        nodeOptions: values['node-options'],
        params: {
          ...cfg,
          clientsPerKind: CLIENTS,
          batchBodyBytes: batchBody(0, 0).length,
        },
        machine: {
          cpus: os.cpus().length,
          loadavgBefore: loadBefore,
          loadavgAfter: os.loadavg()[0],
        },
        notes,
        results,
        table: md,
      },
      null,
      2,
    )}\n`,
  );
  console.error(`wrote ${path.relative(process.cwd(), values.out)}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

// After every const above is initialised.
if (process.argv.includes('--serve-backend')) {
  serveBackend();
} else {
  await main();
}
