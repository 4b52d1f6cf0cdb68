import { once } from 'node:events';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { Agent, request as undiciRequest } from 'undici';
import { MirrorService } from '../src/models/mirror.service.js';
import { RoutesFileService } from '../src/models/routes-file.service.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { spawnGateway } from './support/process.js';
import { sample } from './support/raw.js';
import { json, sentimentHandler, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const BODY = '{"request":{"text":"I love it"}}';

interface Sent {
  status: number;
  version: string | undefined;
  startedAt: number;
  ms: number;
  error?: string;
}

/** Model routing, canary split, pinning, stickiness, shadows and routes file reloads (e2e). */
describe('Model versions (e2e)', () => {
  let dir: string;
  let upstreams: Upstream[] = [];
  let gw: RunningGateway | undefined;
  let agent: Agent;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'routes-'));
    agent = new Agent({ connections: 64, pipelining: 1 });
  });

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await Promise.all(upstreams.map((u) => u.stop()));
    upstreams = [];
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function upstream(handler = sentimentHandler): Promise<Upstream> {
    const u = await new Upstream(handler).start();
    upstreams.push(u);
    return u;
  }

  /** Writes the routes file the way a ConfigMap update lands: a new file renamed over the old. */
  function writeRoutes(yaml: string, file = join(dir, 'routes.yaml')): string {
    writeFileSync(`${file}.tmp`, yaml);
    renameSync(`${file}.tmp`, file);
    return file;
  }

  async function gateway(
    yaml: string,
    env: Record<string, string> = {},
  ): Promise<RunningGateway> {
    gw = await startGateway({
      BACKEND_URL: undefined,
      BACKEND_URLS: undefined,
      ROUTES_FILE: writeRoutes(yaml),
      ...env,
    });
    return gw;
  }

  async function send(
    path = '/predict',
    headers: Record<string, string> = {},
  ): Promise<Sent> {
    const startedAt = performance.now();
    try {
      const res = await undiciRequest(gw!.url + path, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', ...headers },
        body: BODY,
      });
      await res.body.dump();
      const version = res.headers['x-model-version'];
      return {
        status: res.statusCode,
        version: typeof version === 'string' ? version : undefined,
        startedAt,
        ms: performance.now() - startedAt,
      };
    } catch (err) {
      return {
        status: 0,
        version: undefined,
        startedAt,
        ms: performance.now() - startedAt,
        error: (err as Error).message,
      };
    }
  }

  /** `total` requests, `concurrency` at a time; `make(i)` gives path and headers of the i-th. */
  async function run(
    total: number,
    concurrency: number,
    make: (i: number) => [string, Record<string, string>] = () => [
      '/predict',
      {},
    ],
  ): Promise<Sent[]> {
    const results: Sent[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          results[i] = await send(...make(i));
        }
      }),
    );
    return results;
  }

  const metrics = async () => (await request(gw!.url).get('/metrics')).text;
  const statusesOf = (sent: Sent[]) =>
    Object.fromEntries(
      [...new Set(sent.map((s) => s.status))].map((status) => [
        status,
        sent.filter((s) => s.status === status).length,
      ]),
    );

  function canary(v1: string, v2: string, weights = [90, 10]): string {
    return `models:
  sentiment:
    default: true
    versions:
      - name: v1
        urls: [${v1}]
        weight: ${weights[0]}
      - name: v2
        urls: [${v2}]
        weight: ${weights[1]}
`;
  }

  it('splits 1,000 requests 90/10 within ±3 points and labels every answer', async () => {
    const [v1, v2] = [await upstream(), await upstream()];
    await gateway(canary(v1.url, v2.url));
    const sent = await run(1000, 20);
    expect(statusesOf(sent)).toEqual({ 200: 1000 });
    const share = v2.received.length / 1000;
    console.log(
      `split 90/10 over 1000 requests: v1 ${v1.received.length}, v2 ${v2.received.length} (v2 share ${(share * 100).toFixed(1)} %)`,
    );
    expect(v1.received.length + v2.received.length).toBe(1000);
    expect(Math.abs(share - 0.1)).toBeLessThanOrEqual(0.03);
    expect(sent.filter((s) => s.version === 'v2').length).toBe(
      v2.received.length,
    );
    expect(sent.every((s) => s.version === 'v1' || s.version === 'v2')).toBe(
      true,
    );
    const text = await metrics();
    expect(
      sample(
        text,
        'gateway_model_requests_total{model="sentiment",version="v2",status="200"}',
      ),
    ).toBe(v2.received.length);
    expect(text).toContain(
      `gateway_model_request_duration_seconds_count{model="sentiment",version="v1"} ${v1.received.length}`,
    );
  });

  it('routes /models/{model}/… and X-Model to the model, the backend gets the plain path; unknown models and versions are 404 JSON', async () => {
    const [a, b] = [await upstream(), await upstream()];
    await gateway(`models:
  sentiment:
    default: true
    versions: [{name: v1, urls: ["${a.url}"], weight: 1}]
  toxicity:
    versions: [{name: t1, urls: ["${b.url}/base"], weight: 1}]
`);
    const byPath = await request(gw!.url)
      .post('/models/toxicity/batch_predict?x=1')
      .set('content-type', 'application/json')
      .send(BODY);
    expect(byPath.status).toBe(200);
    expect(byPath.headers['x-model-version']).toBe('t1');
    const calls = (u: Upstream) =>
      u.received.map((r) => r.url).filter((url) => !url.endsWith('/healthz'));
    expect(calls(b)).toEqual(['/base/batch_predict?x=1']);

    const byHeader = await send('/predict', { 'x-model': 'toxicity' });
    expect(byHeader).toMatchObject({ status: 200, version: 't1' });
    const byDefault = await send('/predict');
    expect(byDefault).toMatchObject({ status: 200, version: 'v1' });
    expect(calls(a)).toEqual(['/predict']);

    const unknown = await request(gw!.url)
      .post('/models/nope/predict')
      .set('x-request-id', 'req-404')
      .send(BODY);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'unknown model "nope"',
      request_id: 'req-404',
    });
    const unknownHeader = await request(gw!.url)
      .post('/predict')
      .set('x-model', 'nope')
      .send(BODY);
    expect(unknownHeader.status).toBe(404);
    const unknownVersion = await request(gw!.url)
      .post('/models/sentiment/predict')
      .set('x-model-version', 'v9')
      .send(BODY);
    expect(unknownVersion.status).toBe(404);
    expect(unknownVersion.body.message).toBe(
      'unknown version "v9" of model sentiment',
    );
    expect(calls(a)).toHaveLength(1);

    const health = await request(gw!.url).get('/health');
    expect(health.status).toBe(200);
    expect(
      (health.body.backends as { url: string; version: string }[]).map(
        (r) => `${r.version} ${r.url}`,
      ),
    ).toEqual([`v1 ${a.url}`, `t1 ${b.url}/base`]);
  });

  it('with the response cache on, each model keeps its own entries (path and X-Model are part of the key)', async () => {
    const [a, b] = [await upstream(), await upstream()];
    await gateway(
      `models:
  sentiment:
    default: true
    versions: [{name: v1, urls: ["${a.url}"], weight: 1}]
  toxicity:
    versions: [{name: t1, urls: ["${b.url}"], weight: 1}]
`,
      { CACHE_TTL_SECONDS: '60' },
    );
    for (const [path, headers] of [
      ['/models/sentiment/predict', {}],
      ['/models/toxicity/predict', {}],
      ['/predict', { 'x-model': 'toxicity' }],
      ['/predict', {}],
    ] as const) {
      expect((await send(path, headers)).status).toBe(200);
      expect((await send(path, headers)).status).toBe(200);
    }
    // One miss per distinct key: /models/x/… and X-Model: x differ in the key, the rest hit.
    expect(a.received).toHaveLength(2);
    expect(b.received).toHaveLength(2);
  });

  it('pins a version with X-Model-Version, and keeps each client on one version with STICKY_BY', async () => {
    const [v1, v2] = [await upstream(), await upstream()];
    await gateway(canary(v1.url, v2.url), { STICKY_BY: 'x-client-id' });
    const pinned = await run(100, 10, () => [
      '/predict',
      { 'x-model-version': 'v2' },
    ]);
    expect(pinned.every((s) => s.status === 200 && s.version === 'v2')).toBe(
      true,
    );
    expect(v2.received).toHaveLength(100);

    // 300 clients, 5 requests each, interleaved.
    const clients = 300;
    const sent = await run(clients * 5, 20, (i) => [
      '/predict',
      { 'x-client-id': `client-${i % clients}` },
    ]);
    const seen = new Map<number, Set<string>>();
    sent.forEach((s, i) => {
      expect(s.status).toBe(200);
      const set = seen.get(i % clients) ?? new Set();
      set.add(s.version!);
      seen.set(i % clients, set);
    });
    const switched = [...seen.values()].filter((set) => set.size > 1).length;
    const onV2 = [...seen.values()].filter((set) => set.has('v2')).length;
    console.log(
      `sticky: ${clients} clients × 5 requests, ${switched} saw two versions, ${onV2} on v2 (${((onV2 / clients) * 100).toFixed(1)} %)`,
    );
    expect(switched).toBe(0);
    // The split holds over clients too (300 clients: a loose bound).
    expect(onV2 / clients).toBeGreaterThan(0.04);
    expect(onV2 / clients).toBeLessThan(0.18);
  });

  it('sticks by API key when STICKY_BY=api_key', async () => {
    const [v1, v2] = [await upstream(), await upstream()];
    await gateway(canary(v1.url, v2.url, [50, 50]), { STICKY_BY: 'api_key' });
    for (const key of ['key-a', 'key-b', 'key-c', 'key-d']) {
      const sent = await run(20, 4, () => ['/predict', { 'x-api-key': key }]);
      expect(new Set(sent.map((s) => s.version)).size).toBe(1);
    }
  });

  function shadowed(primary: string, mirror: string, extra = ''): string {
    return `models:
  sentiment:
    versions:
      - name: v1
        urls: [${primary}]
        weight: 1
    mirror:
      name: v2
      urls: [${mirror}]
      percent: 100
      compare: [sentiment]${extra}
`;
  }

  const mirrorCount = (text: string, result: string) =>
    sample(
      text,
      `gateway_mirror_requests_total{model="sentiment",version="v2",result="${result}"}`,
    );
  const mismatches = (text: string) =>
    sample(
      text,
      'gateway_mirror_mismatch_total{model="sentiment",version="v2"}',
    );

  it('shadows every request to an agreeing mirror: compared, no mismatch, credentials kept from it', async () => {
    const primary = await upstream();
    // Same sentiment, another confidence and timestamp: agrees on the compared field.
    const mirror = await upstream((req, res, body) =>
      req.url === '/healthz'
        ? json(res, 200, {})
        : json(res, 200, { sentiment: 'POSITIVE', confidence: 0.5, n: body }),
    );
    await gateway(shadowed(primary.url, mirror.url));
    const sent = await run(50, 5, () => [
      '/predict',
      {
        authorization: 'Bearer secret',
        'x-api-key': 'k',
        cookie: 'session=s',
        'x-auth-token': 't',
      },
    ]);
    expect(statusesOf(sent)).toEqual({ 200: 50 });
    await until(async () => mirrorCount(await metrics(), 'ok') === 50, 5000);
    expect(mismatches(await metrics())).toBe(0);
    expect(mirror.received).toHaveLength(50);
    expect(mirror.received[0].url).toBe('/predict');
    expect(mirror.received[0].body.toString()).toBe(BODY);
    // CREDENTIAL_HEADERS (default: Authorization, Proxy-Authorization,
    // Cookie, X-API-Key, X-Auth-Token) are kept from the shadow.
    for (const name of ['authorization', 'x-api-key', 'cookie', 'x-auth-token'])
      expect([name, mirror.received[0].headers[name]]).toEqual([
        name,
        undefined,
      ]);
    expect(primary.received[0].headers.authorization).toBe('Bearer secret');
    expect(primary.received[0].headers.cookie).toBe('session=s');
    const ids = new Set(primary.received.map((r) => r.headers['x-request-id']));
    expect(ids.has(mirror.received[0].headers['x-request-id'])).toBe(true);
  });

  it('counts a disagreeing mirror as mismatches, and forwards credentials when the mirror says so', async () => {
    const primary = await upstream();
    const mirror = await upstream((req, res) =>
      req.url === '/healthz'
        ? json(res, 200, {})
        : json(res, 200, { sentiment: 'NEGATIVE' }),
    );
    await gateway(
      shadowed(primary.url, mirror.url, '\n      forwardCredentials: true'),
    );
    const sent = await run(40, 4, () => [
      '/predict',
      { authorization: 'Bearer secret' },
    ]);
    expect(statusesOf(sent)).toEqual({ 200: 40 });
    await until(async () => mismatches(await metrics()) === 40, 5000);
    expect(mirrorCount(await metrics(), 'ok')).toBe(40);
    expect(mirror.received[0].headers.authorization).toBe('Bearer secret');
  });

  it('keeps clients whole when the mirror is down: 0 errors, shadow errors counted', async () => {
    const primary = await upstream();
    const dead = await upstream();
    const deadUrl = dead.url;
    await dead.stop();
    await gateway(shadowed(primary.url, deadUrl));
    const sent = await run(200, 10);
    expect(statusesOf(sent)).toEqual({ 200: 200 });
    expect(sent.filter((s) => s.error)).toEqual([]);
    await until(
      async () => mirrorCount(await metrics(), 'error') === 200,
      5000,
    );
    expect(primary.received).toHaveLength(200);
    const health = await request(gw!.url).get('/health');
    // A dead shadow does not make the gateway unhealthy.
    expect(health.status).toBe(200);
  });

  it('does not slow clients with a slow shadow (p99 with and without), and skips shadows over MIRROR_MAX_INFLIGHT', async () => {
    const primary = await upstream();
    const slow = await upstream((req, res, body) => {
      if (req.url === '/healthz') return json(res, 200, {});
      setTimeout(() => void sentimentHandler(req, res, body), 300);
    });
    await gateway(
      `models:
  plain:
    versions: [{name: v1, urls: ["${primary.url}"], weight: 1}]
  sentiment:
    versions: [{name: v1, urls: ["${primary.url}"], weight: 1}]
    mirror: {name: v2, urls: ["${slow.url}"], percent: 100}
`,
      { MIRROR_MAX_INFLIGHT: '16' },
    );
    await run(100, 8); // warm-up: connections, JIT
    // Interleaved, so both see the same machine load.
    const sent = await run(1200, 8, (i) => [
      i % 2 ? '/models/sentiment/predict' : '/models/plain/predict',
      {},
    ]);
    expect(statusesOf(sent)).toEqual({ 200: 1200 });
    const p = (list: Sent[], q: number) => {
      const ms = list.map((s) => s.ms).sort((x, y) => x - y);
      return ms[Math.min(ms.length - 1, Math.floor(ms.length * q))];
    };
    const without = sent.filter((_, i) => i % 2 === 0);
    const withShadow = sent.filter((_, i) => i % 2 === 1);
    const text = await metrics();
    const ok = mirrorCount(text, 'ok');
    const skipped = mirrorCount(text, 'skipped');
    console.log(
      `slow shadow (300 ms): client p50 ${p(without, 0.5).toFixed(1)} / ${p(withShadow, 0.5).toFixed(1)} ms, ` +
        `p99 ${p(without, 0.99).toFixed(1)} ms without / ${p(withShadow, 0.99).toFixed(1)} ms with shadow; ` +
        `shadows so far ok ${ok}, skipped ${skipped} (MIRROR_MAX_INFLIGHT 16)`,
    );
    // Waiting for the shadow would add 300 ms to every shadowed request.
    expect(p(withShadow, 0.99)).toBeLessThan(
      p(without, 0.99) + Math.max(50, p(without, 0.99)),
    );
    expect(p(withShadow, 0.99)).toBeLessThan(300);
    expect(skipped).toBeGreaterThan(0);
    await until(async () => {
      const t = await metrics();
      return mirrorCount(t, 'ok') + mirrorCount(t, 'skipped') === 600;
    }, 10_000);
  });

  it('bounds the bytes shadow copies hold (MIRROR_MAX_BYTES): a mirror that never reads pins no more, the rest are skipped', async () => {
    const primary = await upstream();
    // Accepts connections and never reads from them.
    const stuck = createServer((socket) => socket.pause());
    stuck.listen(0, '127.0.0.1');
    await once(stuck, 'listening');
    const stuckUrl = `http://127.0.0.1:${(stuck.address() as AddressInfo).port}`;
    try {
      const gateway2 = await gateway(shadowed(primary.url, stuckUrl), {
        MIRROR_MAX_INFLIGHT: '1000',
        MIRROR_MAX_BYTES: String(8 * 1024 * 1024),
        BACKEND_TIMEOUT_MS: '3000',
      });
      const mirror = gateway2.app.get(MirrorService);
      const big = JSON.stringify({
        request: { texts: ['x'.repeat(2 * 1024 * 1024)] },
      });
      let mostHeld = 0;
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(
          Array.from({ length: 4 }, () =>
            request(gateway2.url)
              .post('/batch_predict')
              .set('content-type', 'application/json')
              .send(big),
          ),
        );
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
        mostHeld = Math.max(mostHeld, mirror.held);
      }
      expect(mostHeld).toBeLessThanOrEqual(8 * 1024 * 1024);
      // 20 copies of 2 MB, 8 MB allowed: at most 3 at once (never freed here).
      expect(mirrorCount(await metrics(), 'skipped')).toBeGreaterThanOrEqual(
        17,
      );
    } finally {
      await gw?.close();
      gw = undefined;
      stuck.close();
    }
  });

  it('applies a routes file written in place only once the write is done, never half of it', async () => {
    const [v1, v2, v3] = [await upstream(), await upstream(), await upstream()];
    const file = join(dir, 'routes.yaml');
    await gateway(
      `models:\n  sentiment:\n    versions: [{name: v1, urls: ["${v1.url}"], weight: 1}]\n`,
    );
    const routes = gw!.app.get(RoutesFileService);
    // Its first half alone is a valid file that sends everything to v2.
    const next = `models:
  sentiment:
    versions:
      - name: v2
        urls: ["${v2.url}"]
        weight: 1
      - name: v3
        urls: ["${v3.url}"]
        weight: 1000000
`;
    const cut = next.indexOf('      - name: v3');
    let sending = true;
    const traffic = (async () => {
      const sent: Sent[] = [];
      while (sending) sent.push(await send());
      return sent;
    })();
    const fd = openSync(file, 'w'); // in place: truncated, then written
    writeSync(fd, next.slice(0, cut));
    // A writer between its two writes for longer than one poll (500 ms).
    await new Promise((resolve) => setTimeout(resolve, 600));
    writeSync(fd, next.slice(cut));
    closeSync(fd);
    await until(
      () => routes.current()?.models.sentiment.versions.length === 2,
      5000,
    );
    const afterApply = await run(20, 4);
    sending = false;
    const sent = await traffic;
    expect(statusesOf(sent)).toEqual({ 200: sent.length });
    expect(v2.received).toHaveLength(0);
    expect(new Set(afterApply.map((s) => s.version))).toEqual(new Set(['v3']));
  });

  it('applies an edited routes file (ConfigMap symlink swap) under traffic within 2 s with no failed request, and refuses a broken edit', async () => {
    const [v1, v2] = [await upstream(), await upstream()];
    // The layout of a mounted ConfigMap: routes.yaml -> ..data/routes.yaml, ..data -> ..<stamp>.
    let stamp = 0;
    const publish = (yaml: string) => {
      const version = `..v${++stamp}`;
      mkdirSync(join(dir, version));
      writeFileSync(join(dir, version, 'routes.yaml'), yaml);
      symlinkSync(version, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    };
    publish(canary(v1.url, v2.url));
    symlinkSync('..data/routes.yaml', join(dir, 'routes.yaml'));
    gw = await startGateway({
      BACKEND_URL: undefined,
      BACKEND_URLS: undefined,
      ROUTES_FILE: join(dir, 'routes.yaml'),
    });
    const routes = gw.app.get(RoutesFileService);

    let stop = false;
    const sent: Sent[] = [];
    const traffic = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) sent.push(await send());
      }),
    );
    await until(() => sent.length >= 200, 10_000);
    const changed = once(routes.events, 'change');
    const editedAt = performance.now();
    publish(canary(v1.url, v2.url, [0, 100]));
    await changed;
    const appliedAt = performance.now();
    const reloadMs = appliedAt - editedAt;
    await until(
      () => sent.filter((s) => s.startedAt > appliedAt).length >= 300,
      10_000,
    );

    const refused = once(routes.events, 'refused');
    publish('models:\n  sentiment:\n    versions: []\n');
    const [errors] = (await refused) as [string[]];
    const refusedAt = performance.now();
    await until(
      () => sent.filter((s) => s.startedAt > refusedAt).length >= 300,
      10_000,
    );
    stop = true;
    await traffic;

    const after = sent.filter((s) => s.startedAt > appliedAt);
    const lastV1 = Math.max(
      ...sent.filter((s) => s.version === 'v1').map((s) => s.startedAt),
    );
    console.log(
      `reload under traffic: ${sent.length} requests, statuses ${JSON.stringify(statusesOf(sent))}; ` +
        `new file applied ${reloadMs.toFixed(0)} ms after the swap, last v1 request started ` +
        `${(lastV1 - editedAt).toFixed(0)} ms after it; ${after.length} requests after, all v2: ` +
        `${after.every((s) => s.version === 'v2')}; broken edit refused: ${errors[0]}`,
    );
    expect(statusesOf(sent)).toEqual({ 200: sent.length });
    expect(reloadMs).toBeLessThan(2000);
    expect(after.every((s) => s.version === 'v2')).toBe(true);
    expect(lastV1 - editedAt).toBeLessThan(2000);
    expect(errors[0]).toBe(
      'models.sentiment.versions: expected at least one version',
    );
    // The broken edit changed nothing: still all on v2.
    expect(
      sent
        .filter((s) => s.startedAt > refusedAt)
        .every((s) => s.version === 'v2'),
    ).toBe(true);
  });

  it('moves a version to new URLs on reload: traffic follows, the old pool and its series go', async () => {
    const [old, fresh] = [await upstream(), await upstream()];
    const file = join(dir, 'routes.yaml');
    const single = (url: string) =>
      `models:\n  sentiment:\n    versions: [{name: v1, urls: ["${url}"], weight: 1}]\n`;
    await gateway(single(old.url));
    expect(await send()).toMatchObject({ status: 200, version: 'v1' });
    const changed = once(gw!.app.get(RoutesFileService).events, 'change');
    writeRoutes(single(fresh.url), file);
    await changed;
    const sent = await run(50, 5);
    expect(statusesOf(sent)).toEqual({ 200: 50 });
    expect(old.received).toHaveLength(1);
    expect(fresh.received).toHaveLength(50);
    const health = await request(gw!.url).get('/health');
    expect(
      (health.body.backends as { url: string }[]).map((b) => b.url),
    ).toEqual([fresh.url]);
    const text = await metrics();
    // No series of the retired backend is left (up, in flight, requests, durations).
    expect(text).not.toContain(`"${old.url}"`);
    expect(text).toContain(
      `gateway_backend_up{pool="sentiment/v1",backend="${fresh.url}"} 1`,
    );
  });

  it('logs the routes it loaded, and model and version on each access line (built process)', async () => {
    const [v1, v2] = [await upstream(), await upstream()];
    const proc = await spawnGateway({
      ROUTES_FILE: writeRoutes(canary(v1.url, v2.url)),
      LOG_LEVEL: 'info',
    });
    try {
      const loaded = await proc.waitForLine((l) => l.msg === 'routes loaded');
      expect(loaded.models).toEqual({
        sentiment: { versions: { v1: 90, v2: 10 } },
      });
      const res = await request(proc.url)
        .post('/models/sentiment/predict')
        .set('x-model-version', 'v2')
        .set('x-request-id', 'model-log-1')
        .send(BODY);
      expect(res.status).toBe(200);
      const line = await proc.waitForLine(
        (l) => l.request_id === 'model-log-1' && l.msg === 'request completed',
      );
      expect(line).toMatchObject({
        route: '/models/:model/predict',
        model: 'sentiment',
        version: 'v2',
        backend: v2.url,
        status: 200,
      });
    } finally {
      await proc.stop();
    }
  });

  it('refuses a bad routes file at boot with one line per problem', async () => {
    await expect(
      gateway(
        'models:\n  sentiment:\n    versions:\n      - {name: v1, urls: [nope], weight: -1}\n',
      ),
    ).rejects.toThrow(
      [
        `Invalid routes file ${join(dir, 'routes.yaml')}: models.sentiment.versions[0].urls[0]: expected an http:// or https:// URL without query or fragment`,
        `Invalid routes file ${join(dir, 'routes.yaml')}: models.sentiment.versions[0].weight: expected a weight >= 0`,
      ].join('\n'),
    );
  });
});
