import { tracingConfig } from './tracing.config.js';

function withEnv<T>(env: Record<string, string>, read: () => T): T {
  const saved = { ...process.env };
  for (const key of Object.keys(process.env))
    if (key.startsWith('OTEL_')) delete process.env[key];
  Object.assign(process.env, env);
  try {
    return read();
  } finally {
    process.env = saved;
  }
}

describe('tracing configuration', () => {
  it('is off without an endpoint, with the issue defaults', () => {
    expect(withEnv({}, () => tracingConfig())).toMatchObject({
      enabled: false,
      protocol: 'http/protobuf',
      serviceName: 'api-gateway',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.1,
    });
  });

  it('adds /v1/traces to the base endpoint, takes the traces endpoint as is, decodes resource attributes', () => {
    const base = withEnv(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_RESOURCE_ATTRIBUTES:
          'deployment.environment.name=prod,team=ml%20ops',
      },
      () => tracingConfig(),
    );
    expect(base).toMatchObject({
      enabled: true,
      url: 'http://collector:4318/v1/traces',
      resourceAttributes: {
        'deployment.environment.name': 'prod',
        team: 'ml ops',
      },
    });
    expect(
      withEnv(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://jaeger:4318/otlp/traces',
        },
        () => tracingConfig(),
      ).url,
    ).toBe('http://jaeger:4318/otlp/traces');
  });

  it('refuses a bad value with one line naming it', () => {
    expect(() =>
      withEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, () => tracingConfig()),
    ).toThrow(
      /^Invalid configuration: OTEL_TRACES_SAMPLER="jaeger_remote"; allowed: one of always_on, /,
    );
    expect(() =>
      withEnv({ OTEL_TRACES_SAMPLER_ARG: '1.5' }, () => tracingConfig()),
    ).toThrow(
      'Invalid configuration: OTEL_TRACES_SAMPLER_ARG="1.5"; allowed: a number from 0 to 1',
    );
    expect(() =>
      withEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, () => tracingConfig()),
    ).toThrow('OTEL_EXPORTER_OTLP_PROTOCOL="grpc"');
  });
});
