import {
  createHmac,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
} from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A signing key made in the test (node:crypto), with the `kid` its JWK carries. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function rsaKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
  });
  return { kid, alg: 'RS256', privateKey, publicKey };
}

export function ecKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
  });
  return { kid, alg: 'ES256', privateKey, publicKey };
}

/** The public JWK of `key`, as a JWKS endpoint publishes it. */
export function publicJwk(key: SigningKey): JsonWebKey {
  return {
    ...key.publicKey.export({ format: 'jwk' }),
    kid: key.kid,
    alg: key.alg,
    use: 'sig',
  };
}

const part = (value: unknown) =>
  Buffer.from(JSON.stringify(value)).toString('base64url');

export const now = () => Math.floor(Date.now() / 1000);

/** Claims the gateway under test accepts (JWT_ISSUER / JWT_AUDIENCE of the suites). */
export const ISSUER = 'https://idp.test/';
export const AUDIENCE = 'api-gateway';

export function claims(extra: Record<string, unknown> = {}) {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-1',
    iat: now(),
    exp: now() + 300,
    ...extra,
  };
}

/** A compact JWS signed with node:crypto (no JOSE library on the test side). */
export function signJwt(
  key: SigningKey,
  payload: Record<string, unknown> = claims(),
  header: Record<string, unknown> = {},
): string {
  const input = `${part({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })}.${part(payload)}`;
  const signature = sign(
    'sha256',
    Buffer.from(input),
    key.alg === 'ES256'
      ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' }
      : key.privateKey,
  );
  return `${input}.${signature.toString('base64url')}`;
}

/** `alg: none`: no signature at all. */
export function unsignedJwt(payload: Record<string, unknown> = claims()) {
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
}

/** The classic confusion attack: HS256 with the RSA public key's PEM as the HMAC secret. */
export function hmacWithPublicKey(
  key: SigningKey,
  payload: Record<string, unknown> = claims(),
) {
  const input = `${part({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${part(payload)}`;
  const pem = key.publicKey.export({ type: 'spki', format: 'pem' });
  return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
}

/** The token with its payload replaced after signing (the signature kept). */
export function withPayload(token: string, payload: Record<string, unknown>) {
  const [header, , signature] = token.split('.');
  return `${header}.${part(payload)}.${signature}`;
}

/**
 * A JWKS endpoint on 127.0.0.1 (GET /jwks.json): publishes `keys`, counts
 * its fetches, and can go down (stop) and come back on the same port.
 */
export class JwksServer {
  keys: SigningKey[];
  fetches = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(keys: SigningKey[]) {
    this.keys = keys;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/jwks.json`;
  }

  async start(port = this.port): Promise<this> {
    const server = createServer((req, res) => this.answer(req, res));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) =>
      server.listen(port, '127.0.0.1', resolve),
    );
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening and cuts every connection: the endpoint is down. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    this.fetches++;
    const body = JSON.stringify({ keys: this.keys.map(publicJwk) });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }
}
