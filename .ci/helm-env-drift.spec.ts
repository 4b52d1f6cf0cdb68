// The Helm chart's env (ConfigMap + Secret) must name exactly the variables the
// code reads (src/config/env-vars.ts), with the code's defaults.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ENV_DEFAULTS } from '../src/config/env-vars.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const chart = join(root, 'helm/api-gateway');
const helm = process.env.HELM_BIN ?? join(root, '.tmp/helm/bin/helm');

/** Read by the code but deliberately not in the chart. */
const NOT_IN_CHART: Record<string, string> = {
  PORT: 'fallback for an unset GATEWAY_PORT; the chart always sets GATEWAY_PORT',
};
/** In the chart's Secret, not its ConfigMap. */
const SECRET_KEYS = [
  'API_KEYS',
  'METRICS_API_KEY',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'CAPTURE_HEADERS',
];
/** In the ConfigMap, set from a chart value outside `env`. */
const FROM_VALUES: Record<string, string> = {
  REDIS_URL: 'redis.url',
  REDIS_SENTINELS: 'redis.sentinels',
  REDIS_SENTINEL_NAME: 'redis.sentinelName',
  REDIS_CLUSTER_NODES: 'redis.clusterNodes',
  REDIS_TLS: 'redis.tls',
  REDIS_USERNAME: 'redis.username',
};
/** Rendered from the chart's `tracing` block (key there), not from `env`. */
const FROM_TRACING: Record<string, string> = {
  OTEL_EXPORTER_OTLP_ENDPOINT: 'endpoint',
  OTEL_TRACES_SAMPLER: 'sampler',
  OTEL_TRACES_SAMPLER_ARG: 'samplerArg',
};
/** Rendered from `auth.jwt.*` (lists joined with commas; JWT_PUBLIC_KEY_FILE: the chart's path when publicKey is set). */
const FROM_JWT: Record<string, string> = {
  JWT_JWKS_URL: 'jwksUrl',
  JWT_PUBLIC_KEY_FILE: 'publicKey',
  JWT_ISSUER: 'issuers',
  JWT_AUDIENCE: 'audiences',
  JWT_ALGORITHMS: 'algorithms',
  JWT_CLOCK_TOLERANCE_S: 'clockToleranceSeconds',
  JWT_TENANT_CLAIM: 'tenantClaim',
  JWT_JWKS_COOLDOWN_MS: 'jwksCooldownMs',
  JWT_JWKS_REFRESH_MS: 'jwksRefreshMs',
};
/** Rendered from `batching.*`. */
const FROM_BATCHING: Record<string, string> = {
  BATCH_MAX_SIZE: 'maxSize',
  BATCH_MAX_DELAY_MS: 'maxDelayMs',
  BATCH_PATH: 'path',
  BATCH_ITEM: 'item',
  BATCH_ITEMS: 'items',
  BATCH_RESULTS: 'results',
};

/** Rendered from `capture.*` (CAPTURE_HEADERS_FILE: from capture.existingSecret, a mounted path). */
const FROM_CAPTURE: Record<string, string> = {
  CAPTURE_SAMPLE_RATE: 'sampleRate',
  CAPTURE_SAMPLE_KEY: 'sampleKey',
  CAPTURE_URL: 'url',
  CAPTURE_REDIS_STREAM: 'redisStream',
  CAPTURE_REDIS_MAXLEN: 'redisMaxLen',
  CAPTURE_REDACT: 'redact',
  CAPTURE_MAX_BODY_BYTES: 'maxBodyBytes',
  CAPTURE_BUFFER_BYTES: 'bufferBytes',
  CAPTURE_TIMEOUT_MS: 'timeoutMs',
  CAPTURE_RETRIES: 'retries',
  CAPTURE_HEADERS_FILE: 'existingSecret',
};

type K8sObject = {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
};

function render(...args: string[]): K8sObject[] {
  const out = execFileSync(helm, ['template', 'gw', chart, ...args], {
    encoding: 'utf8',
  });
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as K8sObject)
    .filter(Boolean);
}

function renderedEnv(objs: K8sObject[]) {
  const configMap = objs.find(
    (o) => o.kind === 'ConfigMap' && o.data?.GATEWAY_PORT !== undefined,
  );
  const secret = objs.find((o) => o.kind === 'Secret');
  const secretData = Object.fromEntries(
    Object.entries(secret?.data ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString(),
    ]),
  );
  return { config: configMap?.data ?? {}, secret: secretData };
}

describe('chart env vs the variables the code reads', () => {
  const codeNames = Object.keys(ENV_DEFAULTS).sort();
  const { config, secret } = renderedEnv(render());

  it('the code exports its env defaults', () => {
    expect(codeNames.length).toBeGreaterThan(10);
  });

  it('every variable the code reads is in the ConfigMap or the Secret (BACKEND_URL xor BACKEND_URLS)', () => {
    const inChart = new Set([...Object.keys(config), ...Object.keys(secret)]);
    const missing = codeNames.filter(
      (name) =>
        !inChart.has(name) &&
        !(name in NOT_IN_CHART) &&
        name !== 'BACKEND_URLS',
    );
    expect(missing).toEqual([]);
    expect(inChart.has('BACKEND_URL') !== inChart.has('BACKEND_URLS')).toBe(
      true,
    );
  });

  it('the chart sets no variable the code does not read', () => {
    const unknown = [...Object.keys(config), ...Object.keys(secret)].filter(
      (name) => !(name in ENV_DEFAULTS),
    );
    expect(unknown).toEqual([]);
  });

  it('rendered defaults equal the code defaults', () => {
    const rendered = { ...config, ...secret };
    const expected = Object.fromEntries(
      Object.keys(rendered).map((name) => [name, ENV_DEFAULTS[name]]),
    );
    expect(rendered).toEqual(expected);
  });

  it('secrets live in the Secret only', () => {
    expect(Object.keys(secret).sort()).toEqual([...SECRET_KEYS].sort());
    for (const name of SECRET_KEYS) expect(config).not.toHaveProperty(name);
  });

  it('values.yaml env and values.schema.json list the same variables, with the code defaults', () => {
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as {
      env: Record<string, string>;
      tracing: Record<string, string>;
      batching: Record<string, string | number>;
      auth: { jwt: Record<string, string | number | string[]> };
      capture: Record<string, string | number | string[]>;
    };
    const schema = JSON.parse(
      readFileSync(join(chart, 'values.schema.json'), 'utf8'),
    ) as {
      properties: { env: { properties: Record<string, unknown> } };
    };
    const expectedNames = codeNames.filter(
      (n) =>
        !SECRET_KEYS.includes(n) &&
        !(n in NOT_IN_CHART) &&
        !(n in FROM_VALUES) &&
        !(n in FROM_TRACING) &&
        !(n in FROM_BATCHING) &&
        !(n in FROM_JWT) &&
        !(n in FROM_CAPTURE),
    );
    expect(Object.keys(values.env).sort()).toEqual(expectedNames);
    expect(Object.keys(schema.properties.env.properties).sort()).toEqual(
      expectedNames,
    );
    for (const name of expectedNames)
      expect([name, values.env[name]]).toEqual([name, ENV_DEFAULTS[name]]);
    for (const [name, key] of Object.entries(FROM_TRACING))
      expect([name, values.tracing[key]]).toEqual([name, ENV_DEFAULTS[name]]);
    for (const [name, key] of Object.entries(FROM_BATCHING))
      expect([name, String(values.batching[key])]).toEqual([
        name,
        ENV_DEFAULTS[name],
      ]);
    const fromLists = [
      ...Object.entries(FROM_JWT).map(
        ([n, k]) => [n, values.auth.jwt[k]] as const,
      ),
      ...Object.entries(FROM_CAPTURE).map(
        ([n, k]) => [n, values.capture[k]] as const,
      ),
    ];
    for (const [name, value] of fromLists)
      expect([
        name,
        Array.isArray(value) ? value.join(',') : String(value),
      ]).toEqual([name, ENV_DEFAULTS[name]]);
  });

  it('every toggle on still renders only variables the code reads', () => {
    const all = renderedEnv(render('-f', join(chart, 'ci/all-on-values.yaml')));
    const names = [...Object.keys(all.config), ...Object.keys(all.secret)];
    expect(names.filter((name) => !(name in ENV_DEFAULTS))).toEqual([]);
  });
});
