#!/usr/bin/env node
// Tests the monitoring assets the chart ships, with real Prometheus tools:
//  1. renders the chart's PrometheusRule and checks it equals files/alerts.yaml;
//  2. `promtool check rules` on the rendered rules, `promtool test rules` (the
//     unit tests of helm/api-gateway/ci/alerts.test.yaml, pointed at the
//     rendered rules);
//  3. starts the demo backend, the gateway (dist/main.js) and Debian's
//     prometheus, all on 127.0.0.1, scraping every second and loading the
//     rendered rules; sends a bounded mix of traffic (2xx, 4xx, 404);
//  4. every rule is loaded and evaluates without error; every metric the
//     alerts select exists in the live scrape;
//  5. every dashboard panel query (files/dashboard.json) is run through
//     Prometheus' HTTP API and must neither error nor come back empty.
// Usage: node .ci/monitoring-check.mjs [--rules-only]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const chart = join(root, 'helm/api-gateway');
const rulesOnly = process.argv.includes('--rules-only');
const JOB = 'api-gateway';
const RATE_INTERVAL = '30s';
const TRAFFIC = {
  predict: 200,
  batch: 20,
  invalid: 60,
  notFound: 30,
  health: 30,
  /** To the second gateway, which routes model versions (ROUTES_FILE) with a shadow. */
  models: 120,
};
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'monitoring-check-'));
const children = [];
const failures = [];
let passed = 0;

const log = (msg) =>
  console.log(
    `[monitoring-check ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}`,
  );
function ok(name) {
  passed++;
  console.log(`  ok   ${name}`);
}
function fail(name, why) {
  failures.push(name);
  console.log(
    `  FAIL ${name}\n       ${String(why).split('\n').join('\n       ')}`,
  );
}
async function check(name, fn) {
  try {
    const note = await fn();
    ok(note ? `${name}: ${note}` : name);
  } catch (err) {
    fail(name, err.message ?? err);
  }
}
const assert = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

function cleanup() {
  for (const child of children)
    if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
const deadline = setTimeout(() => {
  console.error('monitoring-check: timed out after 300 s');
  process.exit(1);
}, 300_000);
deadline.unref();

// --- tools -------------------------------------------------------------------------
if (!existsSync('/usr/bin/promtool') || !existsSync('/usr/bin/prometheus')) {
  log('apt-get install prometheus (promtool)');
  execFileSync(
    'sh',
    [
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends prometheus >/dev/null',
    ],
    { stdio: 'inherit' },
  );
}
log(
  execFileSync('promtool', ['--version'], { encoding: 'utf8' }).split('\n')[0],
);
const helmBin =
  process.env.HELM_BIN ||
  execFileSync(join(root, '.ci/ensure-helm.sh'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();

// --- 1. rules the chart ships ------------------------------------------------------------
const rendered = execFileSync(
  helmBin,
  [
    'template',
    'gw',
    chart,
    '--set',
    'metrics.prometheusRule.enabled=true',
    '--set',
    'metrics.dashboard.enabled=true',
  ],
  {
    encoding: 'utf8',
    env: {
      ...process.env,
      HELM_CONFIG_HOME: join(work, 'h1'),
      HELM_CACHE_HOME: join(work, 'h2'),
      HELM_DATA_HOME: join(work, 'h3'),
    },
  },
);
const objs = parseAllDocuments(rendered)
  .map((d) => d.toJS())
  .filter(Boolean);
const rule = objs.find((o) => o.kind === 'PrometheusRule');
const dashboardCm = objs.find(
  (o) => o.kind === 'ConfigMap' && o.data?.['api-gateway.json'],
);
const rulesFile = join(work, 'rendered-alerts.yaml');
writeFileSync(rulesFile, stringify(rule.spec));
const dashboard = JSON.parse(dashboardCm.data['api-gateway.json']);

await check('rendered PrometheusRule equals files/alerts.yaml', () => {
  assert(
    isDeepStrictEqual(
      rule.spec,
      parse(readFileSync(join(chart, 'files/alerts.yaml'), 'utf8')),
    ),
    'differs',
  );
});
await check('promtool check rules (rendered PrometheusRule spec)', () => {
  const r = spawnSync('promtool', ['check', 'rules', rulesFile], {
    encoding: 'utf8',
  });
  assert(r.status === 0, r.stdout + r.stderr);
  return r.stdout.match(/\d+ rules found/)?.[0];
});
const alertNames = rule.spec.groups.flatMap((g) =>
  g.rules.filter((r) => r.alert).map((r) => r.alert),
);
await check(
  'promtool test rules (ci/alerts.test.yaml against the rendered rules)',
  () => {
    const tests = parse(
      readFileSync(join(chart, 'ci/alerts.test.yaml'), 'utf8'),
    );
    tests.rule_files = [rulesFile];
    const tested = new Set(
      tests.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)),
    );
    const firing = new Set(
      tests.tests.flatMap((t) =>
        t.alert_rule_test
          .filter((a) => a.exp_alerts.length)
          .map((a) => a.alertname),
      ),
    );
    const untested = alertNames.filter((a) => !firing.has(a) || !tested.has(a));
    assert(
      untested.length === 0,
      `alerts without a firing test: ${untested.join(', ')}`,
    );
    const testFile = join(work, 'alerts.test.yaml');
    writeFileSync(testFile, stringify(tests));
    const r = spawnSync('promtool', ['test', 'rules', testFile], {
      encoding: 'utf8',
    });
    assert(r.status === 0, r.stdout + r.stderr);
    return `${tests.tests.length} test groups, all ${alertNames.length} alerts fire and stay silent as expected`;
  },
);
await check('dashboard panels are well-formed', () => {
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  const ids = dashboard.panels.map((p) => p.id);
  assert(new Set(ids).size === ids.length, 'duplicate panel ids');
  for (const p of panels) {
    assert(
      p.targets?.length && p.targets.every((t) => t.expr),
      `panel "${p.title}" has no query`,
    );
    assert(
      p.datasource?.uid === '${datasource}',
      `panel "${p.title}" does not use the datasource variable`,
    );
  }
  assert(
    dashboard.templating.list.some((v) => v.name === 'job'),
    'no job variable',
  );
  return `${panels.length} panels, ${panels.reduce((n, p) => n + p.targets.length, 0)} queries`;
});

if (rulesOnly) finish();

// --- 2. live stack: demo backend, gateway, prometheus ------------------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
function start(name, cmd, args, env) {
  const out = join(work, `${name}.log`);
  const child = spawn(cmd, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks = [];
  child.stdout.on('data', (c) => chunks.push(c));
  child.stderr.on('data', (c) => chunks.push(c));
  child.logTail = () =>
    Buffer.concat(chunks).toString().split('\n').slice(-20).join('\n');
  child.on('exit', () => writeFileSync(out, Buffer.concat(chunks)));
  children.push(child);
  return child;
}
async function waitFor(what, child, fn, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child && child.exitCode !== null)
      throw new Error(`${what}: process exited\n${child.logTail()}`);
    try {
      if (await fn()) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${what}: not ready after ${timeoutMs} ms${child ? `\n${child.logTail()}` : ''}`,
  );
}

if (!existsSync(join(root, 'dist/main.js'))) {
  log('npm run build (dist/main.js missing)');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}
const [demoPort, gwPort, promPort] = [
  await freePort(),
  await freePort(),
  await freePort(),
];
const demo = start('demo', process.execPath, ['demo/server.mjs'], {
  DEMO_PORT: String(demoPort),
  DEMO_HOST: '127.0.0.1',
});
const gateway = start('gateway', process.execPath, ['dist/main.js'], {
  GATEWAY_PORT: String(gwPort),
  HOST: '127.0.0.1',
  BACKEND_URL: `http://127.0.0.1:${demoPort}`,
  BACKEND_URLS: '',
  LOG_LEVEL: 'warn',
  HEALTH_CHECK_INTERVAL_MS: '1000',
  API_KEYS: '',
  METRICS_API_KEY: '',
  METRICS_PORT: '',
  RATE_LIMIT_RPS: '0',
});
// A second gateway the way the chart runs it with every toggle on: /metrics on
// METRICS_PORT only, behind METRICS_API_KEY (the ServiceMonitor's bearer token).
const [gw2Port, gw2MetricsPort] = [await freePort(), await freePort()];
const METRICS_KEY = 'monitoring-check-scrape-key';
// Model versions on the second gateway, so the dashboard's Models row has data:
// a 90/10 split and a shadow copy of half the requests, all to the demo backend.
const routesFile = join(work, 'routes.yaml');
const demoUrl = `http://127.0.0.1:${demoPort}`;
writeFileSync(
  routesFile,
  stringify({
    models: {
      sentiment: {
        default: true,
        versions: [
          { name: 'v1', urls: [demoUrl], weight: 90 },
          { name: 'v2', urls: [demoUrl], weight: 10 },
        ],
        mirror: {
          name: 'v3',
          urls: [demoUrl],
          percent: 50,
          compare: ['sentiment'],
        },
      },
    },
  }),
);
const gateway2 = start('gateway2', process.execPath, ['dist/main.js'], {
  GATEWAY_PORT: String(gw2Port),
  HOST: '127.0.0.1',
  BACKEND_URL: `http://127.0.0.1:${demoPort}`,
  BACKEND_URLS: '',
  LOG_LEVEL: 'warn',
  HEALTH_CHECK_INTERVAL_MS: '1000',
  API_KEYS: '',
  METRICS_API_KEY: METRICS_KEY,
  METRICS_PORT: String(gw2MetricsPort),
  RATE_LIMIT_RPS: '0',
  ROUTES_FILE: routesFile,
});
const gw = `http://127.0.0.1:${gwPort}`;
await waitFor(
  'demo backend /healthz',
  demo,
  async () => (await fetch(`http://127.0.0.1:${demoPort}/healthz`)).ok,
);
await waitFor(
  'gateway /health',
  gateway,
  async () => (await fetch(`${gw}/health`)).status === 200,
);
await waitFor(
  'second gateway /health/live',
  gateway2,
  async () => (await fetch(`http://127.0.0.1:${gw2Port}/health/live`)).ok,
);
await check(
  'METRICS_PORT + METRICS_API_KEY: /metrics refuses a missing key, serves the bearer key',
  async () => {
    const metrics = `http://127.0.0.1:${gw2MetricsPort}/metrics`;
    const anonymous = await fetch(metrics);
    assert(anonymous.status === 401, `no key: ${anonymous.status}`);
    const bearer = await fetch(metrics, {
      headers: { authorization: `Bearer ${METRICS_KEY}` },
    });
    assert(
      bearer.status === 200 &&
        (await bearer.text()).includes('gateway_http_requests_total'),
      `bearer: ${bearer.status}`,
    );
  },
);
log(
  `demo backend on :${demoPort}, gateways on :${gwPort} and :${gw2Port} (metrics :${gw2MetricsPort})`,
);

const promConfig = join(work, 'prometheus.yml');
writeFileSync(
  promConfig,
  stringify({
    global: {
      scrape_interval: '1s',
      scrape_timeout: '1s',
      evaluation_interval: '1s',
    },
    rule_files: [rulesFile],
    scrape_configs: [
      { job_name: JOB, static_configs: [{ targets: [`127.0.0.1:${gwPort}`] }] },
      {
        job_name: `${JOB}-metrics-port`,
        authorization: { type: 'Bearer', credentials: METRICS_KEY },
        static_configs: [{ targets: [`127.0.0.1:${gw2MetricsPort}`] }],
        // same job label as the ServiceMonitor gives, so alerts and panels see both
        relabel_configs: [{ target_label: 'job', replacement: JOB }],
      },
    ],
  }),
);
const prometheus = start('prometheus', 'prometheus', [
  `--config.file=${promConfig}`,
  `--storage.tsdb.path=${join(work, 'tsdb')}`,
  `--web.listen-address=127.0.0.1:${promPort}`,
  '--storage.tsdb.retention.time=1h',
  '--log.level=warn',
]);
const prom = `http://127.0.0.1:${promPort}`;
await waitFor(
  'prometheus /-/ready',
  prometheus,
  async () => (await fetch(`${prom}/-/ready`)).ok,
);
async function query(expr) {
  const res = await fetch(
    `${prom}/api/v1/query?${new URLSearchParams({ query: expr })}`,
  );
  const body = await res.json();
  if (body.status !== 'success')
    throw new Error(`${body.errorType}: ${body.error}`);
  return body.data.result;
}
await waitFor(
  'first scrape of both gateways',
  null,
  async () => (await query(`up{job="${JOB}"} == 1`)).length === 2,
);
const promVersion = spawnSync('prometheus', ['--version'], {
  encoding: 'utf8',
});
log(
  `prometheus ${(promVersion.stdout + promVersion.stderr).split(' ')[2]} on :${promPort}, scraping every 1 s`,
);

// --- 3. traffic (bounded, loopback only) -----------------------------------------------------------
const post = (path, body, base = gw) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const texts = [
  'I love this product',
  'This is terrible and slow',
  'Absolutely wonderful service',
  'I hate waiting',
];
const jobs = [
  ...Array.from(
    { length: TRAFFIC.predict },
    (_, i) => () =>
      post('/predict', { request: { text: texts[i % texts.length] } }),
  ),
  ...Array.from(
    { length: TRAFFIC.batch },
    () => () => post('/batch_predict', { request: { texts } }),
  ),
  ...Array.from(
    { length: TRAFFIC.invalid },
    () => () => post('/predict', { request: { text: '' } }),
  ),
  ...Array.from(
    { length: TRAFFIC.notFound },
    (_, i) => () => fetch(`${gw}/no-such-path-${i}`),
  ),
  ...Array.from({ length: TRAFFIC.health }, () => () => fetch(`${gw}/health`)),
  ...Array.from(
    { length: TRAFFIC.models },
    (_, i) => () =>
      post(
        '/predict',
        { request: { text: texts[i % texts.length] } },
        `http://127.0.0.1:${gw2Port}`,
      ),
  ),
];
jobs.sort(() => Math.random() - 0.5);
const statuses = {};
const trafficStart = Date.now();
for (let i = 0; i < jobs.length; i += 10) {
  const batch = await Promise.all(
    jobs
      .slice(i, i + 10)
      .map((job) => job().then(async (r) => (await r.arrayBuffer(), r.status))),
  );
  for (const s of batch) statuses[s] = (statuses[s] ?? 0) + 1;
  await new Promise((r) => setTimeout(r, 200)); // spread over ~7 s so rates have several samples
}
log(
  `sent ${jobs.length} requests in ${((Date.now() - trafficStart) / 1000).toFixed(1)} s: ${JSON.stringify(statuses)}`,
);
await check('traffic got the expected answers', () => {
  assert(
    statuses[200] >= TRAFFIC.predict + TRAFFIC.batch + TRAFFIC.models,
    `too few 200s: ${JSON.stringify(statuses)}`,
  );
  assert(statuses[400] >= TRAFFIC.invalid, 'no 400s');
  assert(statuses[404] >= TRAFFIC.notFound, 'no 404s');
});
// let Prometheus scrape the last requests and evaluate the rules a few times
await new Promise((r) => setTimeout(r, 4000));

// --- 4. rules loaded and healthy on live data ----------------------------------------------------------
await check(
  'prometheus loaded every rule and evaluates it without error',
  async () => {
    const body = await (await fetch(`${prom}/api/v1/rules`)).json();
    const rules = body.data.groups.flatMap((g) => g.rules);
    assert(
      rules.length === alertNames.length,
      `${rules.length} rules loaded, want ${alertNames.length}`,
    );
    const bad = rules.filter((r) => r.health !== 'ok');
    assert(
      bad.length === 0,
      bad.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`).join('\n'),
    );
    const firing = rules.filter((r) => r.state === 'firing').map((r) => r.name);
    assert(
      firing.length === 0,
      `alerts firing on a healthy stack: ${firing.join(', ')}`,
    );
    return `${rules.length} rules ok, none firing on a healthy stack`;
  },
);
await check(
  'every metric the alerts select exists in the live scrape',
  async () => {
    const selectors = new Set();
    for (const g of rule.spec.groups)
      for (const r of g.rules)
        for (const m of r.expr.matchAll(
          /([a-zA-Z_:][a-zA-Z0-9_:]*)\{job="api-gateway"/g,
        ))
          selectors.add(m[1]);
    const missing = [];
    for (const name of selectors)
      if ((await query(`count(${name}{job="${JOB}"})`)).length === 0)
        missing.push(name);
    assert(missing.length === 0, `no series for ${missing.join(', ')}`);
    return [...selectors].sort().join(', ');
  },
);

await check(
  'negative control: a query for a missing metric comes back empty, a broken one errors',
  async () => {
    assert(
      (
        await query(
          `sum(rate(gateway_no_such_metric_total{job="${JOB}"}[${RATE_INTERVAL}]))`,
        )
      ).length === 0,
      'not empty',
    );
    const broken = await query('sum(rate(gateway_http_requests_total[').then(
      () => false,
      () => true,
    );
    assert(broken, 'a syntax error was not reported');
  },
);

// --- 5. every dashboard query returns data ------------------------------------------------------------------
const panels = dashboard.panels.filter((p) => p.type !== 'row');
for (const panel of panels) {
  for (const target of panel.targets) {
    const expr = target.expr
      .replaceAll('$__rate_interval', RATE_INTERVAL)
      .replaceAll('$__interval', RATE_INTERVAL)
      .replaceAll('$job', JOB)
      .replaceAll('${job}', JOB);
    await check(
      `panel "${panel.title}" [${target.refId}] ${target.legendFormat || ''}`.trimEnd(),
      async () => {
        const result = await query(expr);
        assert(result.length > 0, `empty result for ${expr}`);
        const values = result.map((s) => s.value[1]);
        assert(
          values.some((v) => v !== 'NaN'),
          `only NaN for ${expr}`,
        );
        return `${result.length} series`;
      },
    );
  }
}

finish();

function finish() {
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (failures.length) {
    console.log(
      `monitoring-check: ${failures.length} FAILED, ${passed} passed (${secs} s)`,
    );
    for (const c of children)
      if (c.exitCode === null)
        console.log(`--- ${c.spawnargs[0]} log tail:\n${c.logTail()}`);
    process.exit(1);
  }
  console.log(`monitoring-check: all ${passed} checks passed (${secs} s)`);
  process.exit(0);
}
