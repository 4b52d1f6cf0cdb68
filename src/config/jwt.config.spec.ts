import { jwtConfig } from './jwt.config.js';

function read(env: Record<string, string>) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return jwtConfig();
  } finally {
    process.env = saved;
  }
}

const SOURCE = {
  JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
  JWT_ISSUER: 'https://idp.example/',
  JWT_AUDIENCE: 'api-gateway, other',
};

describe('JWT configuration', () => {
  it('is off without a key source; defaults RS256,ES256, 30 s, sub', () => {
    expect(read({})).toMatchObject({
      jwksUrl: undefined,
      publicKeyFile: undefined,
      algorithms: ['RS256', 'ES256'],
      clockToleranceSeconds: 30,
      tenantClaim: 'sub',
    });
    expect(read(SOURCE)).toMatchObject({
      issuers: ['https://idp.example/'],
      audiences: ['api-gateway', 'other'],
    });
  });

  it.each([
    [{ JWT_ALGORITHMS: 'none' }, 'JWT_ALGORITHMS="none"'],
    [{ JWT_ALGORITHMS: 'RS256,HS256' }, 'JWT_ALGORITHMS="RS256,HS256"'],
    [{ JWT_ALGORITHMS: ' , ' }, 'JWT_ALGORITHMS=" , "'],
    [{ JWT_ISSUER: '' }, 'JWT_ISSUER=(unset)'],
    [{ JWT_PUBLIC_KEY_FILE: '/k.pem' }, 'JWT_PUBLIC_KEY_FILE="/k.pem"'],
    [{ JWT_JWKS_URL: 'ftp://idp/jwks' }, 'JWT_JWKS_URL="ftp://idp/jwks"'],
    [{ JWT_CLOCK_TOLERANCE_S: '-1' }, 'JWT_CLOCK_TOLERANCE_S="-1"'],
  ])('refuses %j with one line naming it', (env, named) => {
    expect(() => read({ ...SOURCE, ...env })).toThrow(
      new RegExp(
        `^Invalid configuration: ${named.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}; allowed: `,
      ),
    );
  });
});
