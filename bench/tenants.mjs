#!/usr/bin/env node
// Tenants under load (issue 22), through the built gateway with a TENANTS_FILE, against the simulated model
// server (bench/model-server.mjs), open loop:
//  - priority: 4 slots, critical alone at 2x capacity, then critical 2x + sheddable 2x (4x in all);
//    critical goodput mixed / alone, and every 503's own gateway time (access log duration_ms);
//  - isolation: a tenant sending 10x its quota (429s) next to a tenant within its own, p99 of the calm one
//    with the noisy one against alone, in alternating rounds.
// `npm run bench:overload` runs it after bench/overload.mjs's comparison; alone:
// Usage: npm run build && node bench/tenants.mjs [--seconds 5] [--warmup-seconds 2] [--rounds 2] [--out bench/results/tenants.md]
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  REPO,
  installCleanup,
  median,
  spawnListening,
  startCapturedGateway,
  stop,
} from './lib.mjs';
import {
  gatewayShedMs,
  openLoop,
  percentile,
  summarize,
} from './open-loop.mjs';
import { overloadEnv } from './overload.mjs';

const digest = (key) =>
  `sha256:${createHash('sha256').update(key).digest('hex')}`;
const KEYS = {
  critical: 'bench-critical-key',
  sheddable: 'bench-sheddable-key',
  noisy: 'bench-noisy-key',
  calm: 'bench-calm-key',
};
const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The tenants file of both scenarios: quotas only on the isolation pair. */
function tenantsFile({ noisyRps, calmRps }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tenants-'));
  const file = path.join(dir, 'tenants.yaml');
  writeFileSync(
    file,
    `tenants:
  checkout: { apiKeys: ["${digest(KEYS.critical)}"], priority: critical }
  backfill: { apiKeys: ["${digest(KEYS.sheddable)}"], priority: sheddable }
  noisy: { apiKeys: ["${digest(KEYS.noisy)}"], rps: ${noisyRps}, burst: ${noisyRps} }
  calm: { apiKeys: ["${digest(KEYS.calm)}"], rps: ${calmRps}, burst: ${calmRps} }
`,
  );
  return file;
}

/**
 * Runs both scenarios. Resolves with { priority, isolation, table } (table: markdown).
 */
export async function runTenants({
  slots = 4,
  serviceMs = 20,
  seconds = 5,
  warmupSeconds = 2,
  rounds = 2,
  main = path.join(REPO, 'dist/main.js'),
  node = process.execPath,
  log = (line) => console.error(line),
} = {}) {
  const measureMs = seconds * 1000;
  const warmupMs = warmupSeconds * 1000;
  const capacity = (slots * 1000) / serviceMs;
  const deadlineMs = 3 * serviceMs;
  const calmRps = capacity / 4;
  const noisyQuota = capacity / 8;
  const tenants = tenantsFile({ noisyRps: noisyQuota, calmRps: 2 * calmRps });
  const header = (key) => ({ 'x-api-key': KEYS[key] });

  /** A fresh model server and gateway; `load(url)` runs the measured loops. */
  async function withStack(modelArgs, env, load) {
    const model = await spawnListening('model-server.mjs', modelArgs);
    const modelUrl = `http://127.0.0.1:${model.port}`;
    let gw;
    try {
      gw = await startCapturedGateway({
        node,
        main,
        env: {
          ...overloadEnv(modelUrl, deadlineMs),
          TENANTS_FILE: tenants,
          ...env,
        },
      });
      const result = await load(`${gw.url}/predict`, gw);
      return { ...result, logText: await gw.logs() };
    } finally {
      if (gw) await stop(gw.child);
      await stop(model.child);
    }
  }

  // ---- priority: critical alone at 2x, then with as much sheddable (4x)
  const slotArgs = [
    '--slots',
    String(slots),
    '--service-ms',
    String(serviceMs),
  ];
  const priorityRun = (mixed) =>
    withStack(
      slotArgs,
      { BACKEND_MAX_CONCURRENCY: String(slots) },
      async (url, gw) => {
        const loop = (key, durationMs) =>
          openLoop({
            url,
            rps: 2 * capacity,
            durationMs,
            headers: header(key),
          });
        const both = (durationMs) =>
          Promise.all([
            loop('critical', durationMs),
            mixed ? loop('sheddable', durationMs) : Promise.resolve([]),
          ]);
        await both(warmupMs);
        gw.capture();
        const [critical, sheddable] = await both(measureMs);
        return { critical, sheddable };
      },
    );
  const alone = await priorityRun(false);
  const mixed = await priorityRun(true);
  const sum = (results) =>
    summarize(results, { durationMs: measureMs, deadlineMs });
  const shedMs = gatewayShedMs(mixed.logText);
  const priority = {
    offeredRps: { critical: 2 * capacity, sheddable: 2 * capacity },
    criticalAlone: sum(alone.critical),
    critical: sum(mixed.critical),
    sheddable: sum(mixed.sheddable),
    // null: critical got nothing in time even alone (a busy machine)
    criticalKeptPercent:
      sum(alone.critical).goodputRps > 0
        ? round(
            (100 * sum(mixed.critical).goodputRps) /
              sum(alone.critical).goodputRps,
          )
        : null,
    shed503: shedMs.length,
    p99ShedGatewayMs: round(percentile(shedMs, 99), 2),
    maxShedGatewayMs: round(Math.max(0, ...shedMs), 2),
    shedOver5Ms: shedMs.filter((ms) => ms >= 5).length,
  };
  log(JSON.stringify({ priority }));

  // ---- isolation: the calm tenant alone, then beside a tenant at 10x its quota; alternating rounds
  const wideArgs = [
    '--slots',
    String(16 * slots),
    '--service-ms',
    String(serviceMs),
  ];
  const isolationRun = (noisy) =>
    withStack(wideArgs, {}, async (url, gw) => {
      const both = (durationMs) =>
        Promise.all([
          openLoop({ url, rps: calmRps, durationMs, headers: header('calm') }),
          noisy
            ? openLoop({
                url,
                rps: 10 * noisyQuota,
                durationMs,
                headers: header('noisy'),
              })
            : Promise.resolve([]),
        ]);
      await both(warmupMs);
      gw.capture();
      const [calm, flood] = await both(measureMs);
      return { calm, flood };
    });
  const runs = { alone: [], noisy: [] };
  for (let r = 0; r < rounds; r++)
    for (const noisy of r % 2 ? [true, false] : [false, true]) {
      const run = await isolationRun(noisy);
      const calm = sum(run.calm);
      const entry = {
        p99: calm.p99ServedMs,
        p50: calm.p50ServedMs,
        served: calm.served,
        sent: calm.sent,
        ...(noisy && {
          flood429: run.flood.filter((x) => x.status === 429).length,
          flood200: run.flood.filter((x) => x.status === 200).length,
          floodSent: run.flood.length,
        }),
      };
      (noisy ? runs.noisy : runs.alone).push(entry);
      log(JSON.stringify({ isolation: noisy ? 'noisy' : 'alone', ...entry }));
    }
  const p99Alone = round(median(runs.alone.map((x) => x.p99)), 2);
  const p99Noisy = round(median(runs.noisy.map((x) => x.p99)), 2);
  const isolation = {
    calmRps,
    noisyQuota,
    noisyRps: 10 * noisyQuota,
    runs,
    p99Alone,
    p99Noisy,
    ratio: round(p99Noisy / p99Alone, 2),
  };

  const c = priority;
  const table = [
    `Priority: ${slots}-slot model server, ${serviceMs} ms per request (${capacity} req/s), BACKEND_MAX_CONCURRENCY=${slots}, deadline ${deadlineMs} ms; critical tenant at ${2 * capacity} req/s (2x) alone, then with a sheddable tenant at ${2 * capacity} req/s (4x in all), ${seconds} s measured after ${warmupSeconds} s.`,
    '',
    '| run | critical goodput req/s | critical p99 served ms | sheddable goodput req/s | 503 overloaded | p99 / max 503 gateway ms | 503s >= 5 ms |',
    '|---|---|---|---|---|---|---|',
    `| critical alone (2x) | ${c.criticalAlone.goodputRps} | ${c.criticalAlone.p99ServedMs} | - | ${c.criticalAlone.shed} | - | - |`,
    `| critical + sheddable (4x) | ${c.critical.goodputRps} (${c.criticalKeptPercent ?? '-'} % of alone) | ${c.critical.p99ServedMs} | ${c.sheddable.goodputRps} | ${c.shed503} | ${c.p99ShedGatewayMs} / ${c.maxShedGatewayMs} | ${c.shedOver5Ms} |`,
    '',
    `Isolation: a model server with ${16 * slots} slots (no queueing), a calm tenant at ${calmRps} req/s (quota ${2 * calmRps} items/s) alone, then beside a noisy tenant sending ${10 * noisyQuota} req/s against a quota of ${noisyQuota} items/s (10x), ${rounds} round(s) of each, alternating; median p99 of the calm tenant.`,
    '',
    '| calm tenant | p50 ms | p99 ms (median of rounds) | noisy: 429 / 200 |',
    '|---|---|---|---|',
    `| alone | ${round(median(runs.alone.map((x) => x.p50)), 2)} | ${p99Alone} (${runs.alone.map((x) => x.p99).join(', ')}) | - |`,
    `| beside the noisy tenant | ${round(median(runs.noisy.map((x) => x.p50)), 2)} | ${p99Noisy} (${runs.noisy.map((x) => x.p99).join(', ')}) | ${runs.noisy.map((x) => `${x.flood429} / ${x.flood200}`).join(', ')} |`,
    '',
    `p99 with / alone: ${isolation.ratio}x.`,
  ];
  return { priority, isolation, table: table.join('\n') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      'warmup-seconds': { type: 'string', default: '2' },
      rounds: { type: 'string', default: '2' },
      main: { type: 'string' },
      out: { type: 'string' },
    },
  });
  installCleanup();
  const { table } = await runTenants({
    seconds: Number(values.seconds),
    warmupSeconds: Number(values['warmup-seconds']),
    rounds: Number(values.rounds),
    ...(values.main ? { main: path.resolve(values.main) } : {}),
  });
  console.log(table);
  const out = values.out ?? path.join(BENCH_DIR, 'results/tenants.md');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${table}\n`);
}
