#!/usr/bin/env node
// Micro-batching benchmark: the gateway (dist/main.js) in front of a one-worker model server
// (bench/model-server-batch.mjs: calls served one at a time, FIFO, 20 ms + 1 ms per item), with batching off
// (BATCH_* unset) and on (BATCH_MAX_SIZE=100, BATCH_MAX_DELAY_MS=0, BACKEND_MAX_CONCURRENCY=1: the
// sim's one worker). Closed loop at c=1, 8, 64: each client
// POSTs distinct texts ("... client <id> review <n>") to /predict and checks that the answer is for its own text
// (text echoed, sentiment = the sim's function of the text). Rounds interleave off and on, the order alternating.
// Per scenario and mode (median of the rounds): req/s, p50, p99, the gateway's CPU µs per item (one item = one
// client request), model calls, mean items per call; mismatches and non-200s summed. Prints one markdown table
// and the targets (met or not; never fails on them); writes JSON (--out, default bench/results/batch.json, and
// the table beside it as .md). Exits 1 with a FAIL line on any mismatch, non-200 or transport error.
// Usage: npm run bench:batch [-- --duration 5 --rounds 2 --warmup 2 --concurrency 1,8,64 --out file.json]
//   --smoke          1 s per run, 1 round, 0.5 s warm-up, JSON to the temp dir unless --out (CI)
//   --direct         no gateway: the client against the sim itself (mode "direct"); with MODEL_SIM_BUG=swap|flip|500
//                    in the env the sim answers wrongly on purpose and the run must FAIL (a test of the checks)
//   --self-test      the client against the sim directly, once clean and once per MODEL_SIM_BUG value; exits 0 only
//                    when the clean run is clean and each bug is caught
//   --base-ms 20 --per-item-ms 1   the sim's cost per call and per item
// Env: BENCH_GATEWAY_DIST=dir (another build, copied like bench/run.mjs does), BENCH_GATEWAY_ENV="K=V,..." (both
// gateways), BENCH_BATCH_ENV="K=V,..." (the on gateway only, after BATCH_MAX_SIZE/BATCH_MAX_DELAY_MS: e.g.
// BATCH_MAX_DELAY_MS=2), BENCH_GATEWAY_NODE_ARGS (replaces the start:prod node flags), MODEL_SIM_BUG (see above).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  REPO,
  cpuSeconds,
  freePort,
  gatewayEnv,
  installCleanup,
  median,
  productionNodeArgs,
  request,
  snapshotDist,
  spawnListening,
  stop,
  track,
  waitFor200,
} from './lib.mjs';
import { confidenceOf, sentimentOf } from './model-server-batch.mjs';

const REQUEST_TIMEOUT_MS = 15_000; // above the gateway's BACKEND_TIMEOUT_MS (10 s)
const MAX_REQUESTS_PER_CLIENT = 1_000_000; // a bound on every loop besides its deadline
const BUGS = ['swap', 'flip', '500'];
// The simulated model server has one worker: the gateway is told so (one
// call at a time per backend), as docs/batching.md advises for a real one.
const ON_ENV = {
  BATCH_MAX_SIZE: '100',
  BATCH_MAX_DELAY_MS: '0',
  BACKEND_MAX_CONCURRENCY: '1',
};

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    concurrency: { type: 'string', default: '1,8,64' },
    out: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    direct: { type: 'boolean', default: false },
    'self-test': { type: 'boolean', default: false },
    'base-ms': { type: 'string', default: '20' },
    'per-item-ms': { type: 'string', default: '1' },
  },
});
const cfg = {
  duration: Number(args.duration ?? (args.smoke ? 1 : 5)),
  rounds: Number(args.rounds ?? (args.smoke ? 1 : 2)),
  warmup: Number(args.warmup ?? (args.smoke ? 0.5 : 2)),
  concurrency: args.concurrency.split(',').map(Number),
  baseMs: Number(args['base-ms']),
  perItemMs: Number(args['per-item-ms']),
};
for (const [k, v] of Object.entries(cfg)) {
  const ok = Array.isArray(v)
    ? v.length > 0 && v.every((c) => Number.isInteger(c) && c >= 1 && c <= 1000)
    : Number.isFinite(v) && v >= 0 && v <= 3600;
  if (!ok) throw new Error(`bad --${k}: ${String(args[k] ?? v)}`);
}
if (cfg.duration <= 0 || cfg.rounds < 1)
  throw new Error('--duration must be > 0 and --rounds >= 1');

const log = (line) => console.error(`[bench:batch] ${line}`);
installCleanup();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-batch-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// ------------------------------------------------------------ processes
function startSim(bug) {
  return spawnListening('model-server-batch.mjs', [
    '--base-ms',
    String(cfg.baseMs),
    '--per-item-ms',
    String(cfg.perItemMs),
    ...(bug === undefined ? [] : ['--bug', bug]),
  ]);
}

/** GET /stats, or POST (the counters so far, then zeroed). */
async function simStats(port, reset = false) {
  const res = await request(port, {
    method: reset ? 'POST' : 'GET',
    path: '/stats',
  });
  if (res.status !== 200) throw new Error(`sim /stats: HTTP ${res.status}`);
  return JSON.parse(res.body);
}

function envList(text) {
  const env = {};
  for (const kv of (text ?? '').split(',').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`not K=V: ${kv}`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

async function startGateway(mode, dist, simPort) {
  const port = await freePort();
  const env = await gatewayEnv(
    port,
    { url: `http://127.0.0.1:${simPort}` },
    dist,
  );
  // gatewayEnv clears the variables the build knows; BATCH_* may be new to it: clear them here too.
  for (const k of Object.keys(env)) if (k.startsWith('BATCH_')) delete env[k];
  Object.assign(env, envList(process.env.BENCH_GATEWAY_ENV));
  if (mode === 'on')
    Object.assign(env, ON_ENV, envList(process.env.BENCH_BATCH_ENV));
  const logPath = path.join(tmp, `gateway-${mode}.log`);
  const errPath = path.join(tmp, `gateway-${mode}.stderr`);
  const out = fs.openSync(logPath, 'a');
  const err = fs.openSync(errPath, 'a');
  const child = track(
    spawn(
      process.execPath,
      [...productionNodeArgs(), path.join(dist, 'main.js')],
      { cwd: REPO, env, stdio: ['ignore', out, err], detached: true },
    ),
  );
  fs.closeSync(out);
  fs.closeSync(err);
  const tail = () => {
    const text = ['stderr', 'log']
      .map((k) =>
        fs.readFileSync(k === 'log' ? logPath : errPath, 'utf8').slice(-2000),
      )
      .join('\n');
    return text.trim() ? `\n${text}` : '';
  };
  await waitFor200(port, '/health/live', { child, describe: tail });
  return {
    mode,
    port,
    pid: child.pid,
    child,
    env: Object.fromEntries(
      Object.entries(env).filter(([k]) => k.startsWith('BATCH_')),
    ),
  };
}

// ------------------------------------------------------------ closed-loop client
/** One POST of the closed loop on its keep-alive agent: { status, body }, or { status: 0, error }; never rejects. */
function post(agent, port, body) {
  return request(port, {
    method: 'POST',
    path: '/predict',
    body,
    agent,
    timeoutMs: REQUEST_TIMEOUT_MS,
  }).catch((e) => ({ status: 0, error: e.message }));
}

/** Why an answer is not the one for `text` (null when it is). */
function mismatch(text, answer) {
  let a;
  try {
    a = JSON.parse(answer);
  } catch {
    return 'not JSON';
  }
  if (a?.text !== text) return `text ${JSON.stringify(a?.text)}`;
  if (a.sentiment !== sentimentOf(text))
    return `sentiment ${JSON.stringify(a.sentiment)} (expected ${sentimentOf(text)})`;
  if (typeof a.confidence === 'number' && a.confidence !== confidenceOf(text))
    return `confidence ${a.confidence} (expected ${confidenceOf(text)})`;
  return null;
}

/**
 * `concurrency` clients, each POSTing its next distinct text as soon as the previous answer is in, for
 * warmupMs + durationMs. Counted: requests completed inside the measured window (after the warm-up). Checked:
 * every answer, including the warm-up's and those completing after the window (drained before returning).
 * `onWindow(start|end)` runs at the window's edges (CPU and sim counters).
 */
async function closedLoop({
  port,
  concurrency,
  warmupMs,
  durationMs,
  tag,
  onWindow,
}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const t0 = performance.now();
  const winStart = t0 + warmupMs;
  const winEnd = winStart + durationMs;
  const r = {
    latencies: [],
    total: 0,
    mismatches: 0,
    non200: 0,
    transport: 0,
    statuses: {},
    ridSent: 0,
    ridMismatch: 0,
    examples: [],
  };
  const example = (line) => r.examples.length < 5 && r.examples.push(line);
  const edge = (which) => onWindow?.(which);
  const startTimer = setTimeout(() => edge('start'), warmupMs);
  let endDone;
  const endEdge = new Promise((resolve) => (endDone = resolve));
  const endTimer = setTimeout(
    () => Promise.resolve(edge('end')).then(endDone, endDone),
    warmupMs + durationMs,
  );
  const client = async (id) => {
    for (let n = 0; n < MAX_REQUESTS_PER_CLIENT; n++) {
      const sent = performance.now();
      if (sent >= winEnd) break;
      const text = `${tag} client ${id} review ${n}`;
      const rid = n % 2 === 1 ? `${tag}-${id}-${n}` : undefined;
      const body = JSON.stringify({
        request: rid ? { text, request_id: rid } : { text },
      });
      const res = await post(agent, port, body);
      const done = performance.now();
      r.total++;
      if (done > winStart && done <= winEnd) r.latencies.push(done - sent);
      if (res.status === 0) {
        r.transport++;
        example(`${text}: ${res.error}`);
        continue;
      }
      r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1;
      if (res.status !== 200) {
        r.non200++;
        example(`${text}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
        continue;
      }
      const why = mismatch(text, res.body);
      if (why) {
        r.mismatches++;
        example(`${text}: got ${why}`);
      }
      if (rid) {
        r.ridSent++;
        try {
          if (JSON.parse(res.body).request_id !== rid) r.ridMismatch++;
        } catch {
          r.ridMismatch++;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => client(i)));
  // A client's last request can end before the window does (a run shorter than one answer): the edges still come.
  await new Promise((resolve) =>
    setTimeout(resolve, Math.max(0, winEnd - performance.now())),
  );
  await endEdge;
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  agent.destroy();
  const sorted = r.latencies.sort((a, b) => a - b);
  const pct = (p) =>
    sorted.length
      ? sorted[
          Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
        ]
      : NaN;
  return {
    requests: sorted.length,
    rps: sorted.length / (durationMs / 1000),
    p50: pct(50),
    p99: pct(99),
    total: r.total,
    mismatches: r.mismatches,
    non200: r.non200,
    transport: r.transport,
    statuses: r.statuses,
    ridSent: r.ridSent,
    ridMismatch: r.ridMismatch,
    examples: r.examples,
  };
}

/** One measured run of `concurrency` clients against `target` ({ port, pid? }) with its sim on simPort. */
async function run({ mode, target, simPort, concurrency, round, idlePid }) {
  let cpu0 = NaN;
  let cpu1 = NaN;
  let idle0 = NaN;
  let idle1 = NaN;
  let sim = null;
  const res = await closedLoop({
    port: target.port,
    concurrency,
    warmupMs: cfg.warmup * 1000,
    durationMs: cfg.duration * 1000,
    tag: `r${round} ${mode} c${concurrency}`,
    onWindow: async (which) => {
      if (which === 'start') {
        if (target.pid) cpu0 = cpuSeconds(target.pid);
        if (idlePid) idle0 = cpuSeconds(idlePid);
        await simStats(simPort, true);
      } else {
        if (target.pid) cpu1 = cpuSeconds(target.pid);
        if (idlePid) idle1 = cpuSeconds(idlePid);
        sim = await simStats(simPort, true);
      }
    },
  });
  const calls = sim ? sim.predictCalls + sim.batchCalls : NaN;
  return {
    round,
    mode,
    concurrency,
    ...res,
    cpuUsPerItem: target.pid ? ((cpu1 - cpu0) * 1e6) / res.requests : null,
    // The other mode's gateway, idle meanwhile: its background CPU (timers, health checks, log flushes).
    otherIdleCpuMsPerSec: idlePid
      ? ((idle1 - idle0) * 1000) / cfg.duration
      : null,
    model: sim && {
      calls,
      callsPerSec: calls / cfg.duration,
      predictCalls: sim.predictCalls,
      batchCalls: sim.batchCalls,
      items: sim.items,
      meanItemsPerCall: calls > 0 ? sim.items / calls : NaN,
      maxBatch: sim.maxBatch,
      maxQueued: sim.maxQueued,
      busyPct: (100 * sim.busyMs) / (cfg.duration * 1000),
      rejected: sim.rejected,
      batchSizes: sim.batchSizes,
    },
  };
}

// ------------------------------------------------------------ output
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toString() : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');

function summarize(runs, modes) {
  const rows = [];
  for (const c of cfg.concurrency)
    for (const mode of modes) {
      const rs = runs.filter((r) => r.concurrency === c && r.mode === mode);
      const med = (fn) => median(rs.map(fn));
      const sum = (fn) => rs.reduce((a, r) => a + fn(r), 0);
      rows.push({
        concurrency: c,
        mode,
        rounds: rs.length,
        rps: med((r) => r.rps),
        p50: med((r) => r.p50),
        p99: med((r) => r.p99),
        cpuUsPerItem: med((r) => r.cpuUsPerItem ?? NaN),
        modelCallsPerSec: med((r) => r.model?.callsPerSec ?? NaN),
        meanItemsPerCall: med((r) => r.model?.meanItemsPerCall ?? NaN),
        batchCalls: sum((r) => r.model?.batchCalls ?? 0),
        maxBatch: Math.max(0, ...rs.map((r) => r.model?.maxBatch ?? 0)),
        mismatches: sum((r) => r.mismatches),
        non200: sum((r) => r.non200),
        transport: sum((r) => r.transport),
        ridMismatch: sum((r) => r.ridMismatch),
        ridSent: sum((r) => r.ridSent),
        checked: sum((r) => r.total),
      });
    }
  return rows;
}

function table(rows) {
  return [
    '| c | mode | req/s | p50 ms | p99 ms | gateway CPU µs/item | model calls/s | mean items/call | /batch_predict calls (max size) | answers checked | mismatches | non-200 / transport errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.concurrency} | ${r.mode} | ${f1(r.rps)} | ${f2(r.p50)} | ${f1(r.p99)} | ${f0(r.cpuUsPerItem)} | ${f1(r.modelCallsPerSec)} | ${f2(r.meanItemsPerCall)} | ${r.batchCalls} (${r.maxBatch}) | ${r.checked} | ${r.mismatches} | ${r.non200} / ${r.transport} |`,
    ),
  ].join('\n');
}

function targets(rows) {
  const get = (c, mode) =>
    rows.find((r) => r.concurrency === c && r.mode === mode);
  const out = [];
  const add = (name, c, fn) => {
    const off = get(c, 'off');
    const on = get(c, 'on');
    if (!off || !on)
      return out.push({ name, measured: `no c=${c} run`, met: null });
    const [measured, met] = fn(off, on);
    out.push({ name, measured, met });
  };
  add('c=64 throughput >= 8x off', 64, (off, on) => [
    `${f1(on.rps)} / ${f1(off.rps)} = ${f2(on.rps / off.rps)}x`,
    on.rps >= 8 * off.rps,
  ]);
  add('c=64 p99 <= 0.25x off', 64, (off, on) => [
    `${f1(on.p99)} / ${f1(off.p99)} ms = ${f2(on.p99 / off.p99)}x`,
    on.p99 <= 0.25 * off.p99,
  ]);
  add('c=8 throughput >= 3x off', 8, (off, on) => [
    `${f1(on.rps)} / ${f1(off.rps)} = ${f2(on.rps / off.rps)}x`,
    on.rps >= 3 * off.rps,
  ]);
  add('c=1 p50 within 0.5 ms of off (on - off <= 0.5)', 1, (off, on) => [
    `${f2(on.p50)} - ${f2(off.p50)} = ${(on.p50 - off.p50 >= 0 ? '+' : '') + f2(on.p50 - off.p50)} ms`,
    on.p50 - off.p50 <= 0.5,
  ]);
  add('c=64 gateway CPU per item on <= per request off', 64, (off, on) => [
    `${f0(on.cpuUsPerItem)} vs ${f0(off.cpuUsPerItem)} µs`,
    on.cpuUsPerItem <= off.cpuUsPerItem,
  ]);
  return out;
}

function failures(runs) {
  const bad = runs.filter((r) => r.mismatches || r.non200 || r.transport);
  return bad.map(
    (r) =>
      `round ${r.round} ${r.mode} c=${r.concurrency}: ${r.mismatches} mismatched, ${r.non200} non-200 (${JSON.stringify(r.statuses)}), ${r.transport} transport errors; e.g. ${r.examples.join(' | ')}`,
  );
}

// ------------------------------------------------------------ self-test: the checks catch a wrong sim
async function selfTest() {
  const cases = [['', (r) => !r.mismatches && !r.non200 && !r.transport]];
  for (const bug of BUGS)
    cases.push([bug, (r) => (bug === '500' ? r.non200 > 0 : r.mismatches > 0)]);
  let ok = true;
  for (const [bug, expect] of cases) {
    const sim = await startSim(bug);
    try {
      const r = await run({
        mode: 'direct',
        target: { port: sim.port },
        simPort: sim.port,
        concurrency: 8,
        round: 0,
      });
      const pass = expect(r);
      ok &&= pass;
      console.log(
        `${pass ? 'PASS' : 'FAIL'} MODEL_SIM_BUG=${bug || '(none)'}: ${r.total} answers, ${r.mismatches} mismatched, ${r.non200} non-200, ${r.transport} transport errors${r.examples[0] ? `; e.g. ${r.examples[0]}` : ''}`,
      );
    } finally {
      await stop(sim.child);
    }
  }
  if (!ok) {
    console.log(
      'FAIL: bench:batch self-test: the client checks did not behave as expected',
    );
    process.exit(1);
  }
  console.log(
    'self-test passed: a clean sim gives 0 mismatches; swap, flip and 500 are each caught',
  );
}

// ------------------------------------------------------------ main
async function main() {
  if (args['self-test']) return selfTest();
  const git = (...a) =>
    spawnSync('git', a, { cwd: REPO, encoding: 'utf8' }).stdout?.trim() || null;
  const gitInfo = {
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: (git('status', '--porcelain', '--', 'src') ?? '').length > 0,
  };
  const modes = args.direct ? ['direct'] : ['off', 'on'];
  let dist = null;
  let buildLabel = 'none (--direct)';
  if (!args.direct) {
    if (process.env.BENCH_GATEWAY_DIST) {
      const given = path.resolve(process.env.BENCH_GATEWAY_DIST);
      if (!fs.existsSync(path.join(given, 'main.js')))
        throw new Error(`BENCH_GATEWAY_DIST=${given}: no main.js there`);
      dist = snapshotDist(given);
      buildLabel = given;
    } else {
      if (!fs.existsSync(path.join(REPO, 'dist', 'main.js')))
        throw new Error(
          'dist/main.js missing: npm run build (npm run bench:batch builds first)',
        );
      dist = snapshotDist();
      buildLabel = `dist/ (HEAD ${gitInfo.commit}${gitInfo.dirty ? ', src/ with uncommitted changes' : ''})`;
    }
  }
  const simBug = process.env.MODEL_SIM_BUG || '';
  log(
    `${cfg.rounds} round(s) x c=${cfg.concurrency.join(',')} x ${modes.join('/')}, ${cfg.duration} s each after ${cfg.warmup} s warm-up; sim ${cfg.baseMs} ms + ${cfg.perItemMs} ms/item, one worker${simBug ? `, MODEL_SIM_BUG=${simBug}` : ''}; gateway ${buildLabel}`,
  );

  // One sim per mode (its counters and queue are that mode's alone), one gateway in front of each.
  const targetsByMode = {};
  for (const mode of modes) {
    const sim = await startSim();
    const gw = args.direct ? null : await startGateway(mode, dist, sim.port);
    targetsByMode[mode] = { sim, gw, target: gw ?? { port: sim.port } };
    if (gw)
      log(
        `gateway ${mode}: pid ${gw.pid}, :${gw.port}, ${JSON.stringify(gw.env)}`,
      );
  }

  const runs = [];
  for (let round = 0; round < cfg.rounds; round++) {
    const order = round % 2 ? [...modes].reverse() : modes;
    for (const c of cfg.concurrency)
      for (const mode of order) {
        const { sim, target } = targetsByMode[mode];
        const other = modes.find((m) => m !== mode);
        const r = await run({
          mode,
          target,
          simPort: sim.port,
          concurrency: c,
          round,
          idlePid: other && targetsByMode[other].gw?.pid,
        });
        runs.push(r);
        log(
          `round ${round + 1} c=${c} ${mode}: ${f1(r.rps)} req/s, p50 ${f2(r.p50)} ms, p99 ${f1(r.p99)} ms, CPU ${f0(r.cpuUsPerItem ?? NaN)} µs/item, model ${r.model ? `${r.model.calls} calls, ${f2(r.model.meanItemsPerCall)} items/call` : '-'}, ${r.mismatches} mismatched, ${r.non200 + r.transport} errors`,
        );
      }
  }
  for (const { sim, gw } of Object.values(targetsByMode)) {
    if (gw) await stop(gw.child);
    await stop(sim.child);
  }

  const rows = summarize(runs, modes);
  const tgs = args.direct ? [] : targets(rows);
  const notes = [];
  const on = rows.filter((r) => r.mode === 'on');
  if (on.length && on.every((r) => r.batchCalls === 0))
    notes.push(
      'the on gateway sent no /batch_predict to the model server: batching is not active in this build (BATCH_MAX_SIZE ignored?), so on = off',
    );
  if (rows.some((r) => r.mode === 'off' && r.batchCalls > 0))
    notes.push(
      'the off gateway sent /batch_predict calls: batching is on by default?',
    );
  if (!args.direct) {
    // Background CPU of each gateway, from the runs where it sat idle while the other mode ran.
    const idle = Object.fromEntries(
      modes.map((m) => [
        m,
        median(
          runs
            .filter((r) => r.mode !== m)
            .map((r) => r.otherIdleCpuMsPerSec ?? NaN),
        ),
      ]),
    );
    const off64 = rows.find((r) => r.mode === 'off' && r.concurrency === 64);
    notes.push(
      `idle gateway CPU (timers, health checks, log flushes; measured while the other mode ran): ${modes.map((m) => `${m} ${f1(idle[m])} ms/s`).join(', ')}` +
        (off64
          ? `; at the off rate of c=64 (${f1(off64.rps)} req/s) that is ~${f0((idle.off * 1000) / off64.rps)} µs of each request's CPU figure`
          : ''),
    );
  }
  for (const r of rows)
    if (r.ridMismatch)
      notes.push(
        `c=${r.concurrency} ${r.mode}: ${r.ridMismatch} of ${r.ridSent} answers to a body with request_id did not echo it (not counted as a mismatch)`,
      );
  const fails = failures(runs);

  const head = `Micro-batching, ${new Date().toISOString().slice(0, 16)} UTC: model server with one worker (FIFO), ${cfg.baseMs} ms + ${cfg.perItemMs} ms per item per call; closed loop, distinct texts per client; ${cfg.rounds} interleaved round(s) x ${cfg.duration} s after ${cfg.warmup} s warm-up, median of the rounds (mismatches and errors summed); ${
    args.direct
      ? 'the client against the model server directly (no gateway)'
      : `off = BATCH_* unset, on = ${Object.entries(ON_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(
            ', ',
          )}${process.env.BENCH_BATCH_ENV ? `, ${process.env.BENCH_BATCH_ENV}` : ''}; gateway ${buildLabel}`
  } on Node ${process.versions.node}; load average ${os.loadavg()[0].toFixed(2)}`;
  const lines = [head, '', table(rows)];
  if (tgs.length)
    lines.push(
      '',
      '| target | measured | met |',
      '|---|---|---|',
      ...tgs.map(
        (t) =>
          `| ${t.name} | ${t.measured} | ${t.met === null ? '-' : t.met ? 'yes' : 'no'} |`,
      ),
    );
  for (const n of notes) lines.push('', `note: ${n}`);
  const md = lines.join('\n');
  console.log(md);

  const out = path.resolve(
    args.out ??
      (args.smoke || args.direct
        ? path.join(os.tmpdir(), 'api-gateway-bench-batch.json')
        : path.join(BENCH_DIR, 'results', 'batch.json')),
  );
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadavg: os.loadavg() },
    node: process.versions.node,
    git: gitInfo,
    gateway: buildLabel,
    gatewayNodeArgs: args.direct ? null : productionNodeArgs(),
    params: {
      ...cfg,
      onEnv: ON_ENV,
      batchEnv: process.env.BENCH_BATCH_ENV ?? null,
      simBug: simBug || null,
    },
    summary: rows,
    targets: tgs,
    notes,
    failures: fails,
    runs,
  };
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(out.replace(/\.json$/, '') + '.md', `${md}\n`);
  log(`wrote ${out} and .md`);

  if (fails.length) {
    console.log(
      `\nFAIL: answers that were not the client's own or not 200:\n${fails.map((f) => `FAIL: ${f}`).join('\n')}`,
    );
    process.exitCode = 1;
  }
}

await main();
