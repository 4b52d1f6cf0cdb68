// Aggregates a V8 .cpuprofile: self time by function and by module, and inclusive time per package.
// Usage: node bench/profile-summary.mjs <file.cpuprofile> [--top 30] [--json out.json]
import fs from 'node:fs';
import { parseArgs } from 'node:util';

export function moduleOf(url, fn) {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) {
    const p = url.slice(5).replace(/^internal\//, '');
    if (/^(streams|stream)/.test(p) || /^_stream/.test(p))
      return 'node:streams';
    if (/http|_http_/.test(p)) return 'node:http';
    if (/^(net|dns|tcp|socket)/.test(p)) return 'node:net';
    if (/^(timers|process\/task_queues|async_hooks|process\/next_tick)/.test(p))
      return 'node:timers/ticks';
    if (/^(events|event_target)/.test(p)) return 'node:events';
    if (/^(buffer|util|url|querystring|crypto|string_decoder)/.test(p))
      return `node:${p.split('/')[0]}`;
    return `node:${p.split('/')[0]}`;
  }
  const dist = /\/(?:dist|gateway-build)\/(.+)$/.exec(url);
  if (dist) return `gateway:${dist[1]}`;
  return url.replace(/^file:\/\//, '');
}

// Feature buckets: a sample goes to the deepest (leaf-most) frame that belongs to one of these, so node
// internals count for the library that called them (ClientRequest under axios is axios' cost).
const FEATURES = [
  [
    'logging (pino, pino-http, nestjs-pino, access log)',
    /^(pino|pino-http|pino-std-serializers|sonic-boom|nestjs-pino|@pinojs\/.*|fast-redact|gateway:logging\/.*)$/,
  ],
  [
    'metrics (prom-client, metrics hook)',
    /^(prom-client|@willsoto\/nestjs-prometheus|gateway:metrics\/.*)$/,
  ],
  [
    'upstream client (axios, @nestjs/axios)',
    /^(axios|@nestjs\/axios|undici|follow-redirects|form-data|proxy-from-env)$/,
  ],
  ['rxjs', /^rxjs$/],
  ['Nest core (router, pipes, interceptors, DI)', /^@nestjs\/(core|common)$/],
  [
    'Fastify + Nest adapter + middie',
    /^(fastify|find-my-way|@fastify\/.*|@nestjs\/platform-fastify|light-my-request|avvio)$/,
  ],
  ['gateway code (proxy, request id, filters)', /^gateway:/],
];

export function featureOf(stackModules, leafFn) {
  if (leafFn === '(garbage collector)') return 'garbage collector';
  if (leafFn === '(program)') return '(program): V8/native, unattributed';
  if (leafFn === 'writev' || leafFn === 'writeBuffer')
    return 'socket writes (writev; includes preemption on shared cores)';
  for (const m of stackModules)
    for (const [name, re] of FEATURES) if (re.test(m)) return name;
  return 'node core with no app frame (http parser, net, timers, ALS)';
}

export function summarize(profile, { top = 30 } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes)
    for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const totalUs = profile.endTime - profile.startTime;
  const usPerSample = totalUs / profile.samples.length;

  const selfFn = new Map();
  const selfMod = new Map();
  const inclMod = new Map();
  const inclFn = new Map();
  const byFeature = new Map();
  let idle = 0;
  let busy = 0;
  for (const [id, n] of counts) {
    const node = byId.get(id);
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = functionName || '(anonymous)';
    const mod = moduleOf(url, fn);
    if (mod === '(idle)') {
      idle += n;
      continue;
    }
    busy += n;
    const key = `${fn}  [${mod}${url ? `:${lineNumber + 1}` : ''}]`;
    selfFn.set(key, (selfFn.get(key) ?? 0) + n);
    selfMod.set(mod, (selfMod.get(mod) ?? 0) + n);
    const seen = new Set();
    const seenFn = new Set();
    const stackModules = [];
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      const m = moduleOf(cf.url, cf.functionName || '(anonymous)');
      stackModules.push(m);
      if (!seen.has(m)) {
        seen.add(m);
        inclMod.set(m, (inclMod.get(m) ?? 0) + n);
      }
      // Functions of the app and its libraries (not node internals): where whole features cost.
      if (cf.url && !cf.url.startsWith('node:')) {
        const k = `${cf.functionName || '(anonymous)'}  [${m}:${cf.lineNumber + 1}]`;
        if (!seenFn.has(k)) {
          seenFn.add(k);
          inclFn.set(k, (inclFn.get(k) ?? 0) + n);
        }
      }
    }
    const feature = featureOf(stackModules, fn);
    byFeature.set(feature, (byFeature.get(feature) ?? 0) + n);
  }
  const rank = (map, k = top) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, n]) => ({
        name,
        pct: +((100 * n) / busy).toFixed(2),
        ms: +((n * usPerSample) / 1000).toFixed(1),
      }));
  return {
    seconds: +(totalUs / 1e6).toFixed(2),
    samples: profile.samples.length,
    busyPct: +((100 * busy) / (busy + idle)).toFixed(1),
    usPerBusySample: usPerSample,
    byFeature: rank(byFeature, 20),
    selfByModule: rank(selfMod, 40),
    inclusiveByModule: rank(inclMod, 40).filter(
      (r) => !r.name.startsWith('(root)'),
    ),
    selfByFunction: rank(selfFn),
    inclusiveByFunction: rank(inclFn, 40),
  };
}

export function formatSummary(s, title = 'CPU profile') {
  const rows = (list) =>
    list
      .map(
        (r) =>
          `| ${r.name.replace(/\|/g, '\\|')} | ${r.pct.toFixed(1)} % | ${r.ms} |`,
      )
      .join('\n');
  return [
    `### ${title}: ${s.seconds} s, ${s.samples} samples, busy ${s.busyPct} % of the time (percentages below are of busy time)`,
    '',
    '#### By feature (each sample to the deepest app/library frame on its stack; node internals count for their caller)',
    '| feature | share | ms |',
    '|---|---:|---:|',
    rows(s.byFeature),
    '',
    '#### Self time by module',
    '| module | self | ms |',
    '|---|---:|---:|',
    rows(s.selfByModule.slice(0, 20)),
    '',
    '#### Inclusive time by module (a sample counts once for every module on its stack)',
    '| module | inclusive | ms |',
    '|---|---:|---:|',
    rows(s.inclusiveByModule.slice(0, 25)),
    '',
    '#### Top functions by self time',
    '| function [module:line] | self | ms |',
    '|---|---:|---:|',
    rows(s.selfByFunction),
    '',
    '#### Top app and library functions by inclusive time (node internals left out)',
    '| function [module:line] | inclusive | ms |',
    '|---|---:|---:|',
    rows(s.inclusiveByFunction),
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '30' },
      json: { type: 'string' },
    },
  });
  const s = summarize(JSON.parse(fs.readFileSync(positionals[0], 'utf8')), {
    top: Number(values.top),
  });
  if (values.json) fs.writeFileSync(values.json, JSON.stringify(s, null, 2));
  console.log(formatSummary(s, positionals[0]));
}
