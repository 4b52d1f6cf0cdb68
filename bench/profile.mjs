#!/usr/bin/env node
// npm run bench:profile: CPU profile of the gateway (or the bare Node proxy) under c=32 POST /predict load.
// Only the loaded phase is profiled (bench/cpu-profile-hook.mjs, SIGUSR2). Writes
// bench/results/<target>-c32.cpuprofile (gitignored) and bench/results/profile-<target>.md.
// Flags: --target gateway|bare, --batch (2 MB POST /batch_predict), --seconds (BENCH_PROFILE_SECONDS, 20), --connections (32),
// --delay-ms (upstream delay, 0; 20 with --connections 64 is the slow_c64 scenario), --out-name (file stem).
// Env: BENCH_GATEWAY_DIST (profile another build), BENCH_GATEWAY_NODE (another node binary).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  REPO,
  freePort,
  gatewayEnv,
  haveCommand,
  installCleanup,
  killAll,
  load,
  sleep,
  productionNodeArgs,
  snapshotDist,
  spawnListening,
  stop,
  track,
  waitFor200,
} from './lib.mjs';
import { formatSummary, summarize } from './profile-summary.mjs';

installCleanup();
const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'gateway' },
    seconds: {
      type: 'string',
      default: process.env.BENCH_PROFILE_SECONDS ?? '20',
    },
    connections: { type: 'string', default: '32' },
    'delay-ms': { type: 'string', default: '0' },
    'out-name': { type: 'string' },
    batch: { type: 'boolean', default: false },
  },
});
const stem = values['out-name'] ?? values.target;
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const tool = haveCommand('wrk') ? 'wrk' : 'autocannon';
const resultsDir = path.join(BENCH_DIR, 'results');
fs.mkdirSync(resultsDir, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-gateway-profile-'));
const out = path.join(resultsDir, `${stem}-c${connections}.cpuprofile`);
fs.rmSync(out, { force: true });
fs.rmSync(`${out}.started`, { force: true });
// --batch: POST /batch_predict with the 2 MB body of the benchmark's batch scenario instead of /predict.
const body = path.join(tmp, 'body.json');
const text = 'This workshop gateway benchmark sentence is positive and long. '
  .repeat(330)
  .slice(0, 20_960);
fs.writeFileSync(
  body,
  JSON.stringify(
    values.batch
      ? {
          request: {
            texts: Array.from({ length: 100 }, (_, i) => `${i} ${text}`),
          },
        }
      : { request: { text: 'I love this product, it works great!' } },
  ),
);
const urlPath = values.batch ? '/batch_predict' : '/predict';

const upstream = await spawnListening('upstream.mjs', [
  '--port',
  '0',
  '--delay-ms',
  values['delay-ms'],
]);
const port = await freePort();
const hook = ['--import', path.join(BENCH_DIR, 'cpu-profile-hook.mjs')];
let env = { ...process.env, BENCH_CPU_PROFILE_OUT: out };
let child;
if (values.target === 'gateway') {
  const dist = process.env.BENCH_GATEWAY_DIST
    ? path.resolve(process.env.BENCH_GATEWAY_DIST)
    : snapshotDist();
  // A profile of the minified bundle names no module or function: profile tsc's unbundled output instead
  // (same code, one file per module), compiled from src/ into the snapshot.
  if (
    !process.env.BENCH_GATEWAY_DIST &&
    fs.statSync(path.join(dist, 'main.js')).size > 50_000
  ) {
    console.log(
      'dist/main.js is the bundle: compiling src/ unbundled (tsc) for a readable profile',
    );
    fs.rmSync(dist, { recursive: true, force: true });
    const r = spawnSync(
      process.execPath,
      [
        path.join(REPO, 'node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        dist,
        '--incremental',
        'false',
      ],
      { cwd: REPO, stdio: 'inherit' },
    );
    if (r.status !== 0) throw new Error('tsc failed');
  }
  env = {
    ...(await gatewayEnv(
      port,
      { url: `http://127.0.0.1:${upstream.port}` },
      dist,
    )),
    BENCH_CPU_PROFILE_OUT: out,
  };
  const log = fs.openSync(path.join(tmp, 'gateway.log'), 'a');
  child = track(
    spawn(
      process.env.BENCH_GATEWAY_NODE || process.execPath,
      [...productionNodeArgs(), ...hook, path.join(dist, 'main.js')],
      { cwd: REPO, env, stdio: ['ignore', log, 'inherit'], detached: true },
    ),
  );
  await waitFor200(port, '/health/live', { child });
} else {
  child = track(
    spawn(
      process.execPath,
      [
        ...hook,
        path.join(BENCH_DIR, 'bare-proxy.mjs'),
        '--port',
        String(port),
        '--upstream',
        `http://127.0.0.1:${upstream.port}`,
      ],
      {
        env,
        stdio: ['pipe', 'ignore', 'inherit'],
        detached: true,
      },
    ),
  );
  await waitFor200(port, '/healthz', { child });
}

const run = (secs) =>
  load({
    tool,
    port,
    path: urlPath,
    bodyFile: body,
    connections,
    seconds: secs,
  });
console.log(
  `warmup 3 s, then profiling ${values.target} for ${seconds} s at c=${connections} (${tool}); stdout of the gateway -> file`,
);
await run(3);
process.kill(child.pid, 'SIGUSR2');
while (!fs.existsSync(`${out}.started`)) await sleep(20);
const r = await run(seconds);
process.kill(child.pid, 'SIGUSR2');
for (let i = 0; i < 500 && !fs.existsSync(out); i++) await sleep(20);
await sleep(200);
console.log(
  `${r.rps.toFixed(0)} req/s under the profiler, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, errors ${r.errorCount}`,
);
await stop(child);
killAll();
fs.rmSync(`${out}.started`, { force: true });

const summary = summarize(JSON.parse(fs.readFileSync(out, 'utf8')));
const md = formatSummary(
  summary,
  `${values.target}, c=${connections}, ${r.rps.toFixed(0)} req/s while profiled (Node ${process.version}${values.target === 'gateway' ? `, node flags: ${productionNodeArgs().join(' ') || 'none'}` : ''})`,
);
fs.writeFileSync(path.join(resultsDir, `profile-${stem}.md`), md);
fs.writeFileSync(
  path.join(resultsDir, `profile-${stem}.json`),
  JSON.stringify(summary, null, 2) + '\n',
);
console.log(md);
console.log(
  `raw profile: ${path.relative(process.cwd(), out)} (open in Chrome DevTools > Performance, or speedscope)`,
);
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(0);
