#!/usr/bin/env node
// Inference capture benchmark (issue 25): the gateway (dist/main.js, as start:prod runs it) in front of
// bench/upstream.mjs, loaded with wrk at c=32 POST /predict, capture off against capture on.
//
// 1. healthy: capture at CAPTURE_SAMPLE_RATE=0.1 to a CloudEvents receiver (bench/capture-sink.mjs, its own
//    process) and, when redis-server is installed, to a Redis stream, beside capture off and a second capture-off
//    gateway (the control). --epochs (12) times, fresh gateways: settled under load (--settle 2 s), then --rounds
//    (2) rounds interleaving them (each first and last in turn). Per mode, median of the rounds: req/s, p99, the
//    gateway's CPU µs per request and its ratio to capture off. The target (<= 1.05) is judged on the ratio to
//    capture off in the same round, one figure per epoch (the median of its rounds): met only if the 90 %
//    bootstrap interval of the median over epochs is within, NOT met if all of it is above, else not shown.
//    Epochs, not rounds, because two processes of one build differ by a few per cent for their whole life; the
//    control's ratio shows the method's own error. After each epoch, the share of sampled events delivered
//    (target >= 99.9 %), checked against what the receiver (or the stream) got.
// 2. faults: capture at rate 1 to a sink that is down (a closed port) and one that hangs (reads, never
//    answers), each for --fault-seconds (default 15; --soak: 60) in --fault-rounds interleaved slices (4),
//    beside a capture-off gateway loaded the same way. Per mode: client errors (target 0), p99 and its ratio to capture off (target <= 1.1), RSS growth from
//    idle to the run's highest (target: at most CAPTURE_BUFFER_BYTES + 10 MB over capture off's), and every
//    event accounted for: 2 x sampled = delivered + dropped + buffered (gateway_capture_* metrics).
// Prints the figures and the targets (met or not: timing is not asserted); writes JSON (--out, default
// bench/results/capture.json) and the tables beside it (.md). Exits 1 only when something is broken: a
// gateway that does not start, or events not accounted for.
// RSS depends on how lazily V8 collects: the gateways run with the chart's heap settings (helm value
// nodeOptions), as deployed, unless BENCH_GATEWAY_NODE_ARGS says otherwise ("" for Node's defaults).
// Usage: npm run bench:capture [-- --epochs 12 --rounds 2 --settle 2 --seconds 3 --warmup 1 --fault-seconds 15 --fault-rounds 4 --soak --smoke --no-redis]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  REPO,
  chartNodeOptions,
  cpuSeconds,
  freePort,
  gatewayEnv,
  haveCommand,
  installCleanup,
  load,
  median,
  medianInterval,
  productionNodeArgs,
  redisCommand,
  request,
  rssMB,
  sampleRss,
  sleep,
  snapshotDist,
  spawnListening,
  startRedis,
  stop,
  track,
  waitFor200,
} from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string' },
    rounds: { type: 'string' },
    settle: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    'fault-seconds': { type: 'string' },
    'fault-rounds': { type: 'string' },
    soak: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    'no-redis': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const cfg = {
  epochs: Number(args.epochs ?? (args.smoke ? 1 : 12)),
  rounds: Number(args.rounds ?? (args.smoke ? 1 : 2)),
  settle: Number(args.settle ?? (args.smoke ? 0.5 : 2)),
  seconds: Number(args.seconds ?? (args.smoke ? 1 : 3)),
  warmup: Number(args.warmup ?? (args.smoke ? 0.5 : 1)),
  faultSeconds: Number(
    args['fault-seconds'] ?? (args.soak ? 60 : args.smoke ? 2 : 15),
  ),
  faultRounds: Number(args['fault-rounds'] ?? (args.smoke ? 1 : 4)),
  connections: 32,
  rate: 0.1,
};
for (const [k, v] of Object.entries(cfg))
  if (!Number.isFinite(v) || v <= 0 || v > 3600)
    throw new Error(`bad --${k}: ${v}`);
const BUFFER_BYTES = 8 * 1024 * 1024;
const nodeArgs =
  process.env.BENCH_GATEWAY_NODE_ARGS === undefined
    ? [
        ...productionNodeArgs(),
        ...chartNodeOptions().split(/\s+/).filter(Boolean),
      ]
    : productionNodeArgs();
const tool = haveCommand('wrk') ? 'wrk' : 'autocannon';
const useRedis = !args['no-redis'] && haveCommand('redis-server');
const out =
  args.out ??
  (args.smoke
    ? path.join(os.tmpdir(), `bench-capture-${process.pid}.json`)
    : path.join(BENCH_DIR, 'results', 'capture.json'));

const log = (line) => console.error(`[bench:capture] ${line}`);
installCleanup();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-capture-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const bodyFile = path.join(tmp, 'body.json');
fs.writeFileSync(
  bodyFile,
  JSON.stringify({ request: { text: 'I love this product, it works great!' } }),
);

// ------------------------------------------------------------ processes
async function startGateway(mode, dist, upstreamPort, extra) {
  const port = await freePort();
  const env = await gatewayEnv(
    port,
    { url: `http://127.0.0.1:${upstreamPort}` },
    dist,
  );
  for (const k of Object.keys(env)) if (k.startsWith('CAPTURE_')) delete env[k];
  Object.assign(env, extra);
  const logPath = path.join(tmp, `gateway-${mode}.log`);
  const fd = fs.openSync(logPath, 'a');
  const child = track(
    spawn(process.execPath, [...nodeArgs, path.join(dist, 'main.js')], {
      cwd: REPO,
      env,
      stdio: ['ignore', fd, fd],
      detached: true,
    }),
  );
  fs.closeSync(fd);
  await waitFor200(port, '/health/live', {
    child,
    describe: () => `\n${fs.readFileSync(logPath, 'utf8').slice(-2000)}`,
  });
  return { mode, port, pid: child.pid, child };
}

async function metrics(gateway) {
  const res = await request(gateway.port, { path: '/metrics' });
  const values = {};
  for (const line of res.body.split('\n')) {
    if (!line.startsWith('gateway_capture_')) continue;
    const i = line.lastIndexOf(' ');
    values[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return values;
}

/** Per sink: sampled, delivered, dropped (by reason for all sinks), buffered; unaccounted = 2 x sampled - the rest. */
function accounting(m, sink) {
  const get = (name) => m[name] ?? 0;
  const sampled = get('gateway_capture_sampled_total');
  const delivered = get(
    `gateway_capture_events_total{sink="${sink}",result="delivered"}`,
  );
  const dropped = get(
    `gateway_capture_events_total{sink="${sink}",result="dropped"}`,
  );
  const buffered = get(`gateway_capture_buffer_events{sink="${sink}"}`);
  const reasons = {};
  for (const [k, v] of Object.entries(m)) {
    const r = /^gateway_capture_dropped_total\{reason="(\w+)"\}$/.exec(k);
    if (r && v > 0) reasons[r[1]] = v;
  }
  return {
    sampled,
    events: 2 * sampled,
    delivered,
    dropped,
    buffered,
    reasons,
    unaccounted: 2 * sampled - delivered - dropped - buffered,
  };
}

/** Waits until every sink's buffer is empty (at most `ms`). */
async function drained(gateway, sinks, ms = 30_000) {
  const deadline = performance.now() + ms;
  for (;;) {
    await sleep(200);
    const m = await metrics(gateway);
    if (
      sinks.every(
        (s) => (m[`gateway_capture_buffer_events{sink="${s}"}`] ?? 0) === 0,
      ) ||
      performance.now() > deadline
    )
      return m;
  }
}

function run(gateway, seconds) {
  return load({
    tool,
    port: gateway.port,
    path: '/predict',
    bodyFile,
    connections: cfg.connections,
    seconds,
    threads: 2,
  });
}

/** One measured run: warm-up, then `seconds` of load with the gateway's CPU and RSS watched. */
async function measure(gateway, seconds) {
  if (cfg.warmup > 0) await run(gateway, cfg.warmup);
  const cpu0 = cpuSeconds(gateway.pid);
  const r = await run(gateway, seconds);
  const cpu1 = cpuSeconds(gateway.pid);
  return {
    rps: r.rps,
    requests: r.requests,
    p50: r.latencyMs.p50,
    p99: r.latencyMs.p99,
    errors: r.errorCount,
    errorKinds: r.errors,
    cpuUsPerReq: ((cpu1 - cpu0) * 1e6) / r.requests,
  };
}

// ------------------------------------------------------------ output
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const met = (ok) => (ok ? 'met' : 'NOT met');
/** A row's CPU ratio against capture off in the same round: median of the epochs' (rounds' lowest–highest; 90 % interval of the median). */
const ratioSpread = (row) =>
  `${f(row.epochRatioMedian, 3)} (rounds ${f(Math.min(...row.roundRatios), 2)}–${f(Math.max(...row.roundRatios), 2)}; 90 % interval ${f(row.epochRatioInterval[0], 3)}–${f(row.epochRatioInterval[1], 3)})`;
/** A ratio's verdict from the 90 % interval of its median over epochs: met only if all of it is within. */
const verdict = ([low, high], most) =>
  high <= most
    ? 'met'
    : low > most
      ? 'NOT met'
      : 'not shown (the interval spans the target: more epochs)';

async function main() {
  const dist = snapshotDist();
  const upstream = await spawnListening('upstream.mjs', []);
  const sink = await spawnListening('capture-sink.mjs', ['--mode', 'accept']);
  const hangingSink = await spawnListening('capture-sink.mjs', [
    '--mode',
    'hang',
  ]);
  const sinkUrl = (s) => `http://127.0.0.1:${s.port}/events`;
  const redis = useRedis ? await startRedis({ dir: tmp }) : undefined;
  const nodeArgsText = nodeArgs.join(' ') || '(none)';
  log(
    `${tool}, c=${cfg.connections}, node args ${nodeArgsText}, ${cfg.epochs} epoch(s) of ${cfg.rounds} round(s) x ${cfg.seconds} s (warm-up ${cfg.warmup} s), ` +
      `faults ${cfg.faultSeconds} s each, redis ${redis ? redis.version : 'skipped'}`,
  );

  // ---------------------------------------------------------- 1. healthy sinks, rate 0.1
  // Fresh gateways every epoch: two processes of one build differ by a few
  // per cent for their whole life (measured: capture off against capture
  // off, 1.07x in one run and 0.96x in the next), so a run of one process
  // each would judge that difference. `control` is a second capture-off
  // gateway: its ratio is the method's own error.
  const modes = [
    ['off', {}],
    ['control', {}],
    [
      'http',
      { CAPTURE_SAMPLE_RATE: String(cfg.rate), CAPTURE_URL: sinkUrl(sink) },
    ],
  ];
  if (redis)
    modes.push([
      'redis',
      {
        CAPTURE_SAMPLE_RATE: String(cfg.rate),
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        CAPTURE_REDIS_STREAM: 'capture',
        // Never trimmed during the run: the stream's length is what was delivered.
        CAPTURE_REDIS_MAXLEN: '100000000',
      },
    ]);
  const runs = [];
  const captured = new Map(modes.slice(2).map(([mode]) => [mode, []]));
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const healthy = [];
    for (const [mode, extra] of modes)
      healthy.push(await startGateway(mode, dist, upstream.port, extra));
    // JIT and heap settle under load first, in every process alike.
    for (const gateway of healthy) await run(gateway, cfg.settle);
    for (let round = 0; round < cfg.rounds; round++) {
      // Each gateway first, last and between as often as the others.
      const k = epoch * cfg.rounds + round;
      const turn = k % healthy.length;
      const order = [...healthy.slice(turn), ...healthy.slice(0, turn)];
      if (k % 2) order.reverse();
      for (const gateway of order) {
        const r = await measure(gateway, cfg.seconds);
        runs.push({ epoch, round, mode: gateway.mode, ...r });
        log(
          `epoch ${epoch + 1} round ${round + 1} ${gateway.mode}: ${f(r.rps, 0)} req/s, p99 ${f(r.p99, 2)} ms, ${f(r.cpuUsPerReq)} µs CPU/req, ${r.errors} errors`,
        );
      }
    }
    for (const gateway of healthy.slice(2))
      captured
        .get(gateway.mode)
        .push(accounting(await drained(gateway, [gateway.mode]), gateway.mode));
    // Stopped: nothing of theirs runs beside the next runs.
    await Promise.all(healthy.map((gateway) => stop(gateway.child)));
  }
  const rows = modes.map(([mode]) => {
    const rs = runs.filter((r) => r.mode === mode);
    const med = (fn) => median(rs.map(fn));
    return {
      mode,
      rps: med((r) => r.rps),
      p50: med((r) => r.p50),
      p99: med((r) => r.p99),
      cpuUsPerReq: med((r) => r.cpuUsPerReq),
      errors: rs.reduce((a, r) => a + r.errors, 0),
    };
  });
  const off = rows[0];
  const cpuOf = (epoch, round, mode) =>
    runs.find((r) => r.epoch === epoch && r.round === round && r.mode === mode)
      ?.cpuUsPerReq;
  for (const row of rows) {
    row.cpuRatio = row.cpuUsPerReq / off.cpuUsPerReq;
    if (row === off) continue;
    // Round by round against capture off in the same round, then one
    // figure per epoch (the median of its rounds): the interval is over
    // epochs, so it holds the processes' differences too.
    row.roundRatios = [];
    row.epochRatios = [];
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      const ratios = [];
      for (let round = 0; round < cfg.rounds; round++)
        ratios.push(cpuOf(epoch, round, row.mode) / cpuOf(epoch, round, 'off'));
      row.roundRatios.push(...ratios);
      row.epochRatios.push(median(ratios));
    }
    row.epochRatioMedian = median(row.epochRatios);
    row.epochRatioInterval = medianInterval(row.epochRatios);
  }
  const delivery = {};
  for (const [mode, epochs] of captured) {
    const sum = (key) => epochs.reduce((total, a) => total + a[key], 0);
    const received =
      mode === 'http'
        ? JSON.parse((await request(sink.port, { path: '/__stats' })).body)
            .events
        : Number(
            (
              await redisCommand(redis.port, 'XLEN api-gateway:capture')
            ).replace(/^:/, ''),
          );
    const events = sum('events');
    const delivered = sum('delivered');
    delivery[mode] = {
      events,
      delivered,
      dropped: sum('dropped'),
      buffered: sum('buffered'),
      unaccounted: sum('unaccounted'),
      received,
      deliveredPct: (100 * delivered) / events,
    };
  }

  // ---------------------------------------------------------- 2. sink down or hanging, rate 1
  const closedPort = await freePort();
  const faulty = [
    await startGateway('off (faults)', dist, upstream.port, {}),
    await startGateway('sink down', dist, upstream.port, {
      CAPTURE_SAMPLE_RATE: '1',
      CAPTURE_URL: `http://127.0.0.1:${closedPort}/events`,
    }),
    await startGateway('sink hangs', dist, upstream.port, {
      CAPTURE_SAMPLE_RATE: '1',
      CAPTURE_URL: sinkUrl(hangingSink),
    }),
  ];
  // Idle RSS of the three at one moment, before any load: a gateway's RSS
  // still settles for a while after its start, so later samples would flatter
  // the gateways measured last.
  await sleep(1000);
  const idles = new Map(faulty.map((gateway) => [gateway, rssMB(gateway.pid)]));
  const watches = new Map(
    faulty.map((gateway) => [
      gateway,
      sampleRss(gateway.pid, { everyMs: 100 }),
    ]),
  );
  // The fault time in interleaved slices (order alternating), as the healthy
  // rounds are: on a machine whose speed drifts, one run after the other
  // would compare different moments. The faults last throughout: a sink
  // that is down stays down between slices.
  const slices = new Map(faulty.map((gateway) => [gateway, []]));
  for (let round = 0; round < cfg.faultRounds; round++) {
    const order = round % 2 ? [...faulty].reverse() : faulty;
    for (const gateway of order) {
      const r = await measure(gateway, cfg.faultSeconds / cfg.faultRounds);
      slices.get(gateway).push(r);
      log(
        `fault slice ${round + 1} ${gateway.mode}: ${f(r.rps, 0)} req/s, p99 ${f(r.p99, 2)} ms, ${r.errors} client errors`,
      );
    }
  }
  // Responses close a moment after their client has them: let the last exchanges reach the buffer.
  await sleep(1000);
  const faults = [];
  for (const gateway of faulty) {
    const idle = idles.get(gateway);
    const samples = watches.get(gateway).stop();
    const peak = Math.max(idle, ...samples.map((s) => s.mb));
    const rs = slices.get(gateway);
    const a =
      gateway.mode === 'off (faults)'
        ? undefined
        : accounting(await metrics(gateway), 'http');
    faults.push({
      mode: gateway.mode,
      rps: median(rs.map((r) => r.rps)),
      p99: median(rs.map((r) => r.p99)),
      errors: rs.reduce((sum, r) => sum + r.errors, 0),
      slices: rs,
      rssIdleMB: idle,
      rssPeakMB: peak,
      rssGrowthMB: peak - idle,
      rssEndMB: samples.at(-1)?.mb ?? NaN,
      accounting: a,
    });
    log(
      `${gateway.mode}: RSS ${f(idle)} -> ${f(peak)} MB` +
        (a
          ? `, events ${a.events}: delivered ${a.delivered}, dropped ${a.dropped} ${JSON.stringify(a.reasons)}, buffered ${a.buffered}, unaccounted ${a.unaccounted}`
          : ''),
    );
  }
  await Promise.all(faulty.map((gateway) => stop(gateway.child)));
  const faultOff = faults[0];
  for (const row of faults) {
    // Slice by slice against capture off's slice of the same round.
    row.p99Ratio = median(
      row.slices.map((r, i) => r.p99 / faultOff.slices[i].p99),
    );
    row.rssOverOffMB = row.rssGrowthMB - faultOff.rssGrowthMB;
  }

  // ---------------------------------------------------------- report
  const lines = [];
  lines.push(
    `${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), gateway node args: ${nodeArgsText}`,
    '',
    `### Capture at rate ${cfg.rate}, healthy sinks (c=${cfg.connections}; ${cfg.epochs} epochs of fresh gateways, ${cfg.rounds} x ${cfg.seconds} s each; control: a second capture-off gateway)`,
    '',
    '| gateway | req/s | p50 ms | p99 ms | CPU µs/req | CPU vs off | per round, then per epoch: median (range; 90 % interval) | delivered |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const row of rows) {
    const d = delivery[row.mode];
    lines.push(
      `| ${{ off: 'capture off', control: 'capture off (control)' }[row.mode] ?? `capture → ${row.mode}`} | ${f(row.rps, 0)} | ${f(row.p50, 2)} | ${f(row.p99, 2)} | ${f(row.cpuUsPerReq)} | ${f(row.cpuRatio, 3)} | ${row.mode === 'off' ? '' : ratioSpread(row)} | ${d ? `${f(d.deliveredPct, 3)} % (${d.delivered}/${d.events})` : ''} |`,
    );
  }
  lines.push(
    '',
    `### Capture at rate 1, sink down or hanging (c=${cfg.connections}, ${cfg.faultSeconds} s each in ${cfg.faultRounds} interleaved slices; p99: median of the slices, its ratio slice by slice)`,
    '',
    '| gateway | req/s | client errors | p99 ms | p99 vs off | RSS idle → peak MB | growth over off MB | events: delivered / dropped / buffered / unaccounted |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const row of faults) {
    const a = row.accounting;
    lines.push(
      `| ${row.mode} | ${f(row.rps, 0)} | ${row.errors} | ${f(row.p99, 2)} | ${f(row.p99Ratio, 2)} | ${f(row.rssIdleMB)} → ${f(row.rssPeakMB)} | ${row === faultOff ? '' : f(row.rssOverOffMB)} | ${a ? `${a.delivered} / ${a.dropped} ${JSON.stringify(a.reasons)} / ${a.buffered} / ${a.unaccounted}` : ''} |`,
    );
  }
  const bufferMB = BUFFER_BYTES / 1e6;
  const targets = [
    ...rows
      .slice(2)
      .map(
        (row) =>
          `CPU per request, capture → ${row.mode} at rate ${cfg.rate}: ${f(row.cpuRatio, 3)}x capture off (same round, by epoch ${ratioSpread(row)}; control ${ratioSpread(rows[1])}) (target <= 1.05, judged on the interval): ${verdict(row.epochRatioInterval, 1.05)}`,
      ),
    ...Object.entries(delivery).map(
      ([mode, d]) =>
        `sampled events delivered (${mode}): ${f(d.deliveredPct, 3)} % (target >= 99.9 %), receiver got ${d.received}: ${met(d.deliveredPct >= 99.9)}`,
    ),
    ...faults
      .slice(1)
      .flatMap((row) => [
        `${row.mode}: ${row.errors} client errors (target 0): ${met(row.errors === 0)}`,
        `${row.mode}: p99 ${f(row.p99Ratio, 2)}x capture off (target <= 1.1): ${met(row.p99Ratio <= 1.1)}`,
        `${row.mode}: RSS growth ${f(row.rssGrowthMB)} MB, ${f(row.rssOverOffMB)} MB over capture off's (target <= ${f(bufferMB)} + 10 MB): ${met(row.rssOverOffMB <= bufferMB + 10)}; peak ${f(row.rssPeakMB - faultOff.rssPeakMB)} MB over capture off's peak`,
        `${row.mode}: every lost event counted (unaccounted ${row.accounting.unaccounted}): ${met(row.accounting.unaccounted === 0)}`,
      ]),
  ];
  lines.push('', ...targets.map((t) => `- ${t}`));
  const text = lines.join('\n');
  console.log(text);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        tool,
        nodeArgs: nodeArgsText,
        cfg,
        healthy: { runs, rows, delivery },
        faults,
      },
      null,
      2,
    ),
  );
  fs.writeFileSync(out.replace(/\.json$/, '.md'), `${text}\n`);
  log(`wrote ${out}`);
  const broken = faults
    .slice(1)
    .some((row) => row.accounting.unaccounted !== 0);
  if (broken) {
    console.error('FAIL: captured events not accounted for');
    process.exit(1);
  }
  process.exit(0);
}

await main();
