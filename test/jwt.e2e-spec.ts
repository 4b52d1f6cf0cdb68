import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { JwtVerifier } from '../src/auth/jwt-verifier.service.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import {
  AUDIENCE,
  claims,
  ecKey,
  hmacWithPublicKey,
  ISSUER,
  JwksServer,
  now,
  rsaKey,
  signJwt,
  unsignedJwt,
  withPayload,
} from './support/jwt.js';
import { freePort } from './support/net.js';
import { spawnGateway } from './support/process.js';
import { Upstream } from './support/upstream.js';
import { sleep, until } from './support/wait.js';

const JWT_ENV = { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };
const BODY = '{"request":{"text":"hello"}}';

function predict(gw: RunningGateway, headers: Record<string, string> = {}) {
  return request(gw.url)
    .post('/predict')
    .set('content-type', 'application/json')
    .set(headers)
    .send(BODY);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** 401 with RFC 6750's invalid_token challenge and the gateway's JSON error. */
function expectInvalidToken(res: request.Response, description: string) {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe(
    `Bearer realm="api-gateway", error="invalid_token", error_description="${description}"`,
  );
  expect(res.body).toEqual({
    statusCode: 401,
    error: 'Unauthorized',
    message: `invalid token: ${description}`,
    request_id: res.headers['x-request-id'],
  });
}

describe('JWT bearer tokens: a real JWKS endpoint, tokens signed in the test (e2e)', () => {
  const rsa = rsaKey('rsa-1');
  const ec = ecKey('ec-1');
  const stranger = rsaKey('not-published');
  let jwks: JwksServer;
  let upstream: Upstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    jwks = await new JwksServer([rsa, ec]).start();
    upstream = await new Upstream().start();
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      JWT_JWKS_URL: jwks.url,
      ...JWT_ENV,
    });
  });

  afterAll(async () => {
    await gw?.close();
    await upstream?.stop();
    await jwks?.stop();
  });

  it('lets a valid RS256 or ES256 token through; the backend never sees it', async () => {
    for (const key of [rsa, ec]) {
      const res = await predict(gw, bearer(signJwt(key)));
      expect(res.status).toBe(200);
      expect(res.body.text).toBe('hello');
      const received = upstream.received.at(-1)!;
      expect(received.headers.authorization).toBeUndefined();
    }
  });

  it('answers 401 with the RFC 6750 challenge and the JSON error when no credentials are sent', async () => {
    const res = await predict(gw);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="api-gateway"');
    expect(res.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'a bearer token is required (Authorization: Bearer <JWT>)',
      request_id: res.headers['x-request-id'],
    });
    const root = await request(gw.url).get('/');
    expect(root.status).toBe(401);
    const allowed = await request(gw.url)
      .get('/')
      .set(bearer(signJwt(rsa)));
    expect(allowed.status).toBe(200);
  });

  it.each([
    [
      'expired',
      () => signJwt(rsa, claims({ exp: now() - 60 })),
      'the token has expired',
    ],
    [
      'not valid yet',
      () => signJwt(rsa, claims({ nbf: now() + 120 })),
      'the token is not valid yet',
    ],
    [
      'from another issuer',
      () => signJwt(rsa, claims({ iss: 'https://evil.test/' })),
      'unexpected issuer',
    ],
    [
      'for another audience',
      () => signJwt(ec, claims({ aud: 'other-api' })),
      'unexpected audience',
    ],
    ['alg none', () => unsignedJwt(), 'algorithm not allowed'],
    [
      'HS256 signed with the public key',
      () => hmacWithPublicKey(rsa),
      'algorithm not allowed',
    ],
    [
      'its payload edited after signing',
      () => withPayload(signJwt(rsa), claims({ sub: 'admin' })),
      'invalid signature',
    ],
    [
      'signed by another key under a published kid',
      () => signJwt({ ...stranger, kid: 'rsa-1' }),
      'invalid signature',
    ],
    [
      'without exp',
      () => signJwt(rsa, { iss: ISSUER, aud: AUDIENCE, sub: 'u' }),
      'the token has no exp claim',
    ],
    [
      'without the tenant claim',
      () => signJwt(rsa, claims({ sub: undefined })),
      'the token has no sub claim',
    ],
    ['not JSON inside', () => 'bm90.anNvbg.c2ln', 'malformed token'],
  ])(
    'refuses a token %s: 401 invalid_token with why',
    async (_what, token, why) => {
      expectInvalidToken(await predict(gw, bearer(token())), why);
    },
  );

  it('accepts a token expired or not yet valid within JWT_CLOCK_TOLERANCE_S (30 s)', async () => {
    const late = signJwt(rsa, claims({ exp: now() - 10 }));
    const early = signJwt(rsa, claims({ nbf: now() + 10 }));
    expect((await predict(gw, bearer(late))).status).toBe(200);
    expect((await predict(gw, bearer(early))).status).toBe(200);
  });

  it('an unknown kid: 401, and forged tokens make at most one JWKS refetch per cooldown', async () => {
    const before = jwks.fetches;
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        predict(gw, bearer(signJwt({ ...stranger, kid: randomUUID() }))),
      ),
    );
    for (const res of answers)
      expectInvalidToken(res, 'no key matches the token');
    expect(jwks.fetches - before).toBeLessThanOrEqual(1);
    expect(upstream.received.every((r) => !r.headers.authorization)).toBe(true);
  });
});

describe('JWT key sets that change: JWKS down, key rotation, keys at boot, key files (e2e)', () => {
  let upstream: Upstream;
  let gw: RunningGateway | undefined;
  let jwks: JwksServer | undefined;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });
  afterEach(async () => {
    await gw?.close();
    await jwks?.stop();
    gw = jwks = undefined;
  });
  afterAll(() => upstream.stop());

  const start = (env: Record<string, string>) =>
    startGateway({ BACKEND_URL: upstream.url, ...JWT_ENV, ...env });

  it('JWKS down: keys already fetched keep working; forged kids make at most one fetch attempt per cooldown', async () => {
    const key = rsaKey('k1');
    jwks = await new JwksServer([key]).start();
    gw = await start({ JWT_JWKS_URL: jwks.url, JWT_JWKS_COOLDOWN_MS: '300' });
    const verifier = gw.app.get(JwtVerifier);
    expect((await predict(gw, bearer(signJwt(key)))).status).toBe(200);
    await jwks.stop();
    await sleep(350); // past the cooldown: an unknown kid may try a fetch again
    const attempts = verifier.jwksFetches;
    const stranger = rsaKey('stranger');
    const forged = await Promise.all(
      Array.from({ length: 20 }, () =>
        predict(gw!, bearer(signJwt({ ...stranger, kid: randomUUID() }))),
      ),
    );
    for (const res of forged)
      expectInvalidToken(res, 'no key matches the token');
    expect(verifier.jwksFetches - attempts).toBe(1);
    // Fresh tokens (never verified before) from the key held.
    for (let i = 0; i < 3; i++) {
      const token = signJwt(key, claims({ sub: `user-${i}` }));
      expect((await predict(gw, bearer(token))).status).toBe(200);
    }
  });

  it('key rotation: a new kid is fetched after the cooldown; a key removed stops working, remembered tokens included', async () => {
    const oldKey = rsaKey('2026-01');
    const newKey = ecKey('2026-02');
    jwks = await new JwksServer([oldKey]).start();
    gw = await start({
      JWT_JWKS_URL: jwks.url,
      JWT_JWKS_COOLDOWN_MS: '200',
      JWT_JWKS_REFRESH_MS: '1000',
    });
    const oldToken = signJwt(oldKey);
    expect((await predict(gw, bearer(oldToken))).status).toBe(200);
    jwks.keys = [oldKey, newKey];
    const newToken = signJwt(newKey);
    await until(
      async () => (await predict(gw!, bearer(newToken))).status === 200,
      5000,
      50,
    );
    jwks.keys = [newKey];
    // The old token was verified (and remembered): the next fetch forgets it.
    await until(
      async () => (await predict(gw!, bearer(oldToken))).status === 401,
      5000,
      100,
    );
    expectInvalidToken(
      await predict(gw, bearer(oldToken)),
      'no key matches the token',
    );
    expect((await predict(gw, bearer(newToken))).status).toBe(200);
  });

  it('JWKS unreachable from boot: 503 with Retry-After (never a hang), then served once it answers', async () => {
    const key = rsaKey('late');
    const port = await freePort();
    jwks = new JwksServer([key]);
    gw = await start({ JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
    const res = await predict(gw, bearer(signJwt(key)));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'the token signing keys are not available yet',
      request_id: res.headers['x-request-id'],
    });
    await jwks.start(port);
    await until(
      async () => (await predict(gw!, bearer(signJwt(key)))).status === 200,
      5000,
      100,
    );
  });

  it('JWT_PUBLIC_KEY_FILE: a PEM key, re-read when it changes (tokens of the old key then refused)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwt-key-'));
    const file = join(dir, 'key.pem');
    const first = rsaKey('any');
    const second = ecKey('any');
    const pem = (key: typeof first) =>
      key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(file, pem(first));
    gw = await start({ JWT_PUBLIC_KEY_FILE: file });
    const before = signJwt(first);
    expect((await predict(gw, bearer(before))).status).toBe(200);
    writeFileSync(file, pem(second));
    await until(
      async () => (await predict(gw!, bearer(before))).status === 401,
      5000,
      100,
    );
    expect((await predict(gw, bearer(signJwt(second)))).status).toBe(200);
    const refused = once(gw.app.get(JwtVerifier).events, 'keyFileRefused');
    writeFileSync(file, 'not a key');
    await refused;
    expect((await predict(gw, bearer(signJwt(second)))).status).toBe(200);
  });

  it('a bad key source stops the boot with one line naming the variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwt-key-'));
    const file = join(dir, 'private.pem');
    const key = rsaKey('x');
    writeFileSync(
      file,
      key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    await expect(start({ JWT_PUBLIC_KEY_FILE: file })).rejects.toThrow(
      /^Invalid configuration: JWT_PUBLIC_KEY_FILE=".*private\.pem"; allowed: a readable PEM public key, certificate or JWKS file \(a public key, not a private key\)$/,
    );
    await expect(
      startGateway({
        JWT_JWKS_URL: 'http://idp.test/jwks',
        JWT_ISSUER: ISSUER,
      }),
    ).rejects.toThrow(
      'Invalid configuration: JWT_AUDIENCE=(unset); allowed: required with JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE (comma-separated values)',
    );
    await expect(
      start({
        JWT_JWKS_URL: 'http://idp.test/jwks',
        JWT_ALGORITHMS: 'RS256,HS256',
      }),
    ).rejects.toThrow(
      /^Invalid configuration: JWT_ALGORITHMS="RS256,HS256"; allowed: .*never none or HS\*/,
    );
  });

  it('with API keys on too: three base64url parts are a JWT, anything else an API key', async () => {
    const key = rsaKey('both');
    jwks = await new JwksServer([key]).start();
    gw = await start({ JWT_JWKS_URL: jwks.url, API_KEYS: 'plain-key' });
    expect((await predict(gw, bearer(signJwt(key)))).status).toBe(200);
    expect((await predict(gw, bearer('plain-key'))).status).toBe(200);
    expect((await predict(gw, { 'x-api-key': 'plain-key' })).status).toBe(200);
    expectInvalidToken(
      await predict(gw, bearer(signJwt(rsaKey('both')))),
      'invalid signature',
    );
    const wrongKey = await predict(gw, bearer('wrong-key'));
    expect([wrongKey.status, wrongKey.body.message]).toEqual([
      401,
      'invalid API key',
    ]);
    const none = await predict(gw);
    expect([none.status, none.body.message]).toEqual([
      401,
      'credentials are required (Authorization: Bearer <JWT or API key>, or X-API-Key)',
    ]);
    expect(upstream.received.every((r) => !r.headers.authorization)).toBe(true);
    expect(upstream.received.every((r) => !r.headers['x-api-key'])).toBe(true);
  });
});

describe('JWT in the logs (e2e, the built gateway as a process)', () => {
  it('never writes a token, valid or not: the access line names the client by a short hash and its tenant', async () => {
    const key = rsaKey('log');
    const jwks = await new JwksServer([key]).start();
    const upstream = await new Upstream().start();
    const dir = mkdtempSync(join(tmpdir(), 'tenants-'));
    const tenants = join(dir, 'tenants.yaml');
    writeFileSync(tenants, 'tenants:\n  checkout: { priority: critical }\n');
    const gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      JWT_JWKS_URL: jwks.url,
      TENANTS_FILE: tenants,
      ...JWT_ENV,
    });
    try {
      const good = signJwt(key, claims({ sub: 'checkout' }));
      const expired = signJwt(key, claims({ exp: now() - 600 }));
      const ok = await request(gw.url)
        .post('/predict')
        .set('content-type', 'application/json')
        .set(bearer(good))
        .send(BODY);
      const refused = await request(gw.url)
        .post('/predict')
        .set('content-type', 'application/json')
        .set(bearer(expired))
        .send(BODY);
      expect([ok.status, refused.status]).toEqual([200, 401]);
      const line = await gw.waitForLine(
        (l) => l.request_id === ok.headers['x-request-id'],
      );
      expect(line).toMatchObject({
        status: 200,
        tenant: 'checkout',
        key_id: expect.stringMatching(/^jwt:[0-9a-f]{8}$/) as string,
      });
      await gw.waitForLine(
        (l) => l.request_id === refused.headers['x-request-id'],
      );
      const text = JSON.stringify(gw.lines);
      for (const token of [good, expired]) {
        expect(text).not.toContain(token.split('.')[2]);
        expect(text).not.toContain(token.split('.')[1]);
      }
    } finally {
      await gw.stop();
      await upstream.stop();
      await jwks.stop();
    }
  });
});
