import { captureConfig, parseSinkHeaders } from './capture.config.js';

function withEnv<T>(env: Record<string, string>, read: () => T): T {
  const saved = { ...process.env };
  for (const key of Object.keys(process.env))
    if (key.startsWith('CAPTURE_')) delete process.env[key];
  Object.assign(process.env, env);
  try {
    return read();
  } finally {
    process.env = saved;
  }
}

describe('capture configuration', () => {
  it('is off by default, with the issue defaults', () => {
    expect(withEnv({}, () => captureConfig())).toEqual({
      sampleRate: 0,
      sampleKey: undefined,
      url: undefined,
      headers: {},
      headersFile: undefined,
      redisStream: undefined,
      redisMaxLen: 100_000,
      redact: [],
      maxBodyBytes: 64 * 1024,
      bufferBytes: 8 * 1024 * 1024,
      timeoutMs: 2000,
      retries: 3,
    });
  });

  it('reads a rate, a key header, sink headers and redaction pointers', () => {
    const config = withEnv(
      {
        CAPTURE_SAMPLE_RATE: '0.1',
        CAPTURE_SAMPLE_KEY: 'X-User-Id',
        CAPTURE_URL: 'https://events.example.com/capture?team=ml',
        CAPTURE_HEADERS: 'Authorization=Bearer%20abc, X-Team = ml',
        CAPTURE_REDACT: '/request/text, /text,,/a~1b',
      },
      () => captureConfig(),
    );
    expect(config).toMatchObject({
      sampleRate: 0.1,
      sampleKey: 'x-user-id',
      url: 'https://events.example.com/capture?team=ml',
      headers: { authorization: 'Bearer abc', 'x-team': 'ml' },
      redact: ['/request/text', '/text', '/a~1b'],
    });
  });

  it.each([
    [
      { CAPTURE_SAMPLE_RATE: '1.5' },
      'CAPTURE_SAMPLE_RATE="1.5"; allowed: a number from 0 to 1',
    ],
    [
      { CAPTURE_SAMPLE_RATE: '1' },
      'CAPTURE_SAMPLE_RATE="1" and CAPTURE_URL=(unset) and CAPTURE_REDIS_STREAM=(unset); allowed: a sink',
    ],
    [
      { CAPTURE_URL: 'ftp://x' },
      'CAPTURE_URL="ftp://x"; allowed: an http:// or https:// URL',
    ],
    [
      { CAPTURE_REDACT: 'request/text' },
      'CAPTURE_REDACT="request/text"; allowed: a JSON pointer',
    ],
    [
      { CAPTURE_BUFFER_BYTES: '1000' },
      'CAPTURE_BUFFER_BYTES="1000"; allowed: a value >= 65536',
    ],
    [
      { CAPTURE_SAMPLE_KEY: 'x user' },
      'CAPTURE_SAMPLE_KEY="x user"; allowed: an HTTP header name',
    ],
    [
      { CAPTURE_MAX_BODY_BYTES: '4194304' },
      'CAPTURE_BUFFER_BYTES="8388608" and CAPTURE_MAX_BODY_BYTES="4194304"; allowed: CAPTURE_BUFFER_BYTES >= 4 x CAPTURE_MAX_BODY_BYTES + 16384',
    ],
    [
      { CAPTURE_HEADERS: 'a=b', CAPTURE_HEADERS_FILE: '/f' },
      'CAPTURE_HEADERS="(hidden: it may hold a credential)" and CAPTURE_HEADERS_FILE="/f"; allowed: at most one of them',
    ],
  ])('refuses %j with one line', (env, message) => {
    expect(() => withEnv(env, () => captureConfig())).toThrow(
      `Invalid configuration: ${message}`,
    );
  });

  it('never shows sink header values in an error, and keeps the headers a sink request sets itself', () => {
    for (const text of [
      'Authorization',
      'ce-id=x',
      'Content-Type=text/plain',
      'bad name=x',
    ])
      expect(() =>
        parseSinkHeaders(`${text},X=secret`, 'CAPTURE_HEADERS'),
      ).toThrow('CAPTURE_HEADERS="(hidden: it may hold a credential)"');
    expect(
      parseSinkHeaders('Authorization=Bearer t\nX-Key=%ZZ\n', 'F'),
    ).toEqual({
      authorization: 'Bearer t',
      'x-key': '%ZZ',
    });
  });
});
