import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { parseTenants, TenantsFileError } from './tenants-file.js';

const hex = 'ab'.repeat(32);

describe('tenants file', () => {
  it("reads the issue's example, with defaults: standard priority, no quota, no keys", () => {
    const spec = parseTenants(
      `default: { rps: 50, burst: 100, priority: standard }
tenants:
  checkout:
    apiKeys: ["sha256:${hex.toUpperCase()}"]
    rps: 500
    burst: 1000
    priority: critical
  backfill: { rps: 200, burst: 200, priority: sheddable }
  plain: {}
`,
      'tenants.yaml',
    );
    expect(spec).toEqual({
      default: { rps: 50, burst: 100, priority: 'standard' },
      tenants: {
        checkout: {
          apiKeys: [hex],
          rps: 500,
          burst: 1000,
          priority: 'critical',
        },
        backfill: { apiKeys: [], rps: 200, burst: 200, priority: 'sheddable' },
        plain: { apiKeys: [], priority: 'standard' },
      },
    });
    expect(parseTenants('', 'empty.yaml')).toEqual({
      default: { priority: 'standard' },
      tenants: {},
    });
  });

  it('refuses a key listed by two tenants, unknown fields and broken YAML, one line each', () => {
    const errors = (text: string) => {
      try {
        parseTenants(text, 't.yaml');
      } catch (err) {
        if (err instanceof TenantsFileError) return err.errors;
        throw err;
      }
      return [];
    };
    expect(
      errors(
        `tenants:\n  a: { apiKeys: ["sha256:${hex}"] }\n  b: { apiKeys: ["sha256:${hex}"] }\n`,
      ),
    ).toEqual([
      'tenants.b.apiKeys[0]: expected a key no other tenant lists (a does)',
    ]);
    expect(errors('tenants:\n  a: { rps: 0, quota: 1 }\n')).toEqual([
      'tenants.a.rps: expected items per second > 0',
      'tenants.a: expected no "quota" field (a misspelling?)',
    ]);
    expect(errors('tenants: [')).toEqual([
      expect.stringMatching(/^not valid YAML/),
    ]);
  });

  it("accepts the Helm chart's example tenants value", () => {
    const values = parse(
      readFileSync('helm/api-gateway/ci/all-on-values.yaml', 'utf8'),
    ) as { tenants: unknown };
    const spec = parseTenants(stringify(values.tenants), 'chart');
    expect(Object.keys(spec.tenants)).toEqual(['checkout', 'backfill']);
  });
});
