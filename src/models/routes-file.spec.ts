import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { parseRoutes, RoutesFileError } from './routes-file.js';

const GOOD = `
models:
  sentiment:
    default: true
    versions:
      - name: v1
        urls: [http://sentiment-v1:80/]
        weight: 90
      - name: v2
        urls: [http://sentiment-v2:80, http://sentiment-v2b:80]
        weight: 10
    mirror:
      name: v3
      urls: [http://sentiment-v3:80]
      percent: 20
      compare: [sentiment]
`;

function errors(text: string): string[] {
  try {
    parseRoutes(text, 'routes.yaml');
  } catch (err) {
    if (err instanceof RoutesFileError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('routes file', () => {
  it('reads the shape of the issue, with defaults and normalized URLs', () => {
    const spec = parseRoutes(GOOD, 'routes.yaml');
    expect(spec.models.sentiment).toEqual({
      default: true,
      versions: [
        {
          name: 'v1',
          urls: ['http://sentiment-v1:80'],
          weight: 90,
        },
        {
          name: 'v2',
          urls: ['http://sentiment-v2:80', 'http://sentiment-v2b:80'],
          weight: 10,
        },
      ],
      mirror: {
        name: 'v3',
        urls: ['http://sentiment-v3:80'],
        percent: 20,
        compare: ['sentiment'],
        forwardCredentials: false,
      },
    });
  });

  it("accepts the Helm chart's example routes value", () => {
    const values = parse(
      readFileSync('helm/api-gateway/ci/routes-values.yaml', 'utf8'),
    ) as { routes: unknown };
    const spec = parseRoutes(stringify(values.routes), 'chart');
    expect(Object.keys(spec.models)).toEqual(['sentiment']);
  });

  it('takes mirror: null as no mirror', () => {
    const spec = parseRoutes(
      GOOD.replace(/ {4}mirror:[\s\S]*$/, '    mirror: null\n'),
      'routes.yaml',
    );
    expect(spec.models.sentiment.mirror).toBeUndefined();
  });

  it('names every problem on its own line', () => {
    const bad = GOOD.replace('weight: 90', 'weight: -1')
      .replace('percent: 20', 'percent: 120')
      .replace('http://sentiment-v2b:80', 'ftp://x')
      .replace('name: v3', 'name: v1');
    expect(errors(bad)).toEqual([
      'Invalid routes file routes.yaml: models.sentiment.versions[0].weight: expected a weight >= 0',
      'Invalid routes file routes.yaml: models.sentiment.versions[1].urls[1]: expected an http:// or https:// URL without query or fragment',
      'Invalid routes file routes.yaml: models.sentiment.mirror.percent: expected a percentage <= 100',
      "Invalid routes file routes.yaml: models.sentiment.mirror.name: expected a name other than the versions' (v1 is a version)",
    ]);
  });

  it('refuses duplicate names, all-zero weights, unknown keys, two defaults and broken YAML', () => {
    expect(errors(GOOD.replace('name: v2', 'name: v1'))).toEqual([
      'Invalid routes file routes.yaml: models.sentiment.versions[1].name: expected a name not used by another version of the model (v1 is)',
    ]);
    expect(
      errors(
        GOOD.replace('weight: 90', 'weight: 0').replace(
          'weight: 10',
          'weight: 0',
        ),
      ),
    ).toEqual([
      'Invalid routes file routes.yaml: models.sentiment.versions: expected at least one version with a weight above 0',
    ]);
    expect(errors(GOOD.replace('weight: 10', 'wieght: 10'))).toHaveLength(2);
    expect(
      errors(
        `models:\n  a: {default: true, versions: [{name: v, urls: ["http://a"], weight: 1}]}\n  b: {default: true, versions: [{name: v, urls: ["http://b"], weight: 1}]}\n`,
      ),
    ).toEqual([
      'Invalid routes file routes.yaml: models: expected at most one model with default: true (a, b are)',
    ]);
    expect(errors(GOOD.replace('sentiment:', 'bad model:'))).toEqual([
      'Invalid routes file routes.yaml: models.bad model: expected a name of letters, digits, ".", "_" or "-" (up to 63)',
    ]);
    expect(errors('models: [')).toEqual([
      expect.stringMatching(/^Invalid routes file routes.yaml: not valid YAML/),
    ]);
    expect(errors('')).toHaveLength(1);
  });
});
