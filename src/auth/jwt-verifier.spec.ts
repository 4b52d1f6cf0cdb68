import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigType } from '@nestjs/config';
import type { jwtConfig } from '../config/jwt.config.js';
import { JwtVerifier, TokenRejected } from './jwt-verifier.service.js';
import { keysOf } from './jwt-keys.js';

const part = (v: unknown) =>
  Buffer.from(JSON.stringify(v)).toString('base64url');

describe('JwtVerifier', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
  });
  const token = (payload: Record<string, unknown>) => {
    const input = `${part({ alg: 'ES256' })}.${part(payload)}`;
    const signature = sign('sha256', Buffer.from(input), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${input}.${signature.toString('base64url')}`;
  };
  const file = join(mkdtempSync(join(tmpdir(), 'jwt-')), 'key.pem');
  writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
  const config: ConfigType<typeof jwtConfig> = {
    jwksUrl: undefined,
    publicKeyFile: file,
    issuers: ['iss'],
    audiences: ['aud'],
    algorithms: ['RS256', 'ES256'],
    clockToleranceSeconds: 0,
    tenantClaim: 'tenant',
    jwksCooldownMs: 30_000,
    jwksRefreshMs: 600_000,
  };
  const exp = () => Math.floor(Date.now() / 1000) + 60;

  it('remembers a verified token: the second time it answers at once, with the same client', async () => {
    const verifier = new JwtVerifier(config);
    verifier.onModuleInit();
    try {
      const jwt = token({ iss: 'iss', aud: 'aud', tenant: 7, exp: exp() });
      const first = verifier.verify(jwt);
      expect(first).toBeInstanceOf(Promise);
      const verified = await first;
      expect(verified.subject).toBe('7');
      expect(verified.id).toMatch(/^jwt:[0-9a-f]{8}$/);
      expect(verifier.verify(jwt)).toBe(verified);
      await expect(
        verifier.verify(
          token({ iss: 'iss', aud: 'aud', tenant: {}, exp: exp() }),
        ),
      ).rejects.toThrow(new TokenRejected('the tenant claim is not a string'));
    } finally {
      verifier.onModuleDestroy();
    }
  });

  it('takes a PEM key only for the algorithms that fit it, and refuses private or symmetric keys', () => {
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => keysOf(pem, ['RS256'])).toThrow(
      'a key for one of JWT_ALGORITHMS (RS256); this one is ec',
    );
    expect(() =>
      keysOf(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), [
        'ES256',
      ]),
    ).toThrow('a public key, not a private key');
    expect(() =>
      keysOf('{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', ['ES256']),
    ).toThrow('a public key set (no private or symmetric keys)');
  });
});
