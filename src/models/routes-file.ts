import { z } from 'zod';
import { validatedYaml } from '../common/validated-yaml.js';
import { httpUrl } from '../config/backend.config.js';
import { backendPath, jsonPointer } from '../config/batching.config.js';

const name = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    'a name of letters, digits, ".", "_" or "-" (up to 63)',
  );

const urls = z
  .array(httpUrl, 'a list of backend URLs')
  .min(1, 'at least one URL')
  .refine(
    (list) => new Set(list.map(normalizeUrl)).size === list.length,
    'distinct URLs',
  )
  .transform((list) => list.map(normalizeUrl));

/** The version's batch endpoint, where it differs from BATCH_PATH, BATCH_ITEM, BATCH_ITEMS, BATCH_RESULTS. */
const batching = z.strictObject({
  path: backendPath.optional(),
  item: jsonPointer.optional(),
  items: jsonPointer.optional(),
  results: jsonPointer.optional(),
});

const version = z.strictObject({
  name,
  urls,
  weight: z
    .number('a number from 0 to 1000000')
    .min(0, 'a weight >= 0')
    .max(1_000_000, 'a weight <= 1000000'),
  batching: batching.optional(),
});

const mirror = z.strictObject({
  name,
  urls,
  percent: z
    .number('a percentage from 0 to 100')
    .min(0, 'a percentage >= 0')
    .max(100, 'a percentage <= 100'),
  /** JSON fields (dotted paths) compared; empty: the bodies must be byte-equal. */
  compare: z.array(z.string().min(1), 'a list of JSON field names').default([]),
  /** Send the client's Authorization / X-API-Key to the shadow too. */
  forwardCredentials: z.boolean('true or false').default(false),
});

const model = z
  .strictObject({
    default: z.boolean('true or false').default(false),
    versions: z
      .array(version, 'a list of versions')
      .min(1, 'at least one version'),
    // null: no mirror (how a Helm values file removes one set earlier).
    mirror: mirror.nullish().transform((value) => value ?? undefined),
  })
  .superRefine((value, ctx) => {
    const seen = new Set<string>();
    for (const [i, v] of value.versions.entries()) {
      if (seen.has(v.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['versions', i, 'name'],
          message: `a name not used by another version of the model (${v.name} is)`,
        });
      }
      seen.add(v.name);
    }
    if (value.mirror && seen.has(value.mirror.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['mirror', 'name'],
        message: `a name other than the versions' (${value.mirror.name} is a version)`,
      });
    }
    if (!value.versions.some((v) => v.weight > 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['versions'],
        message: 'at least one version with a weight above 0',
      });
    }
  });

const routes = z
  .strictObject({
    models: z
      .record(name, model, 'a map of model names to models')
      .refine((m) => Object.keys(m).length > 0, 'at least one model'),
  })
  .superRefine((value, ctx) => {
    const defaults = Object.entries(value.models).filter(([, m]) => m.default);
    if (defaults.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['models'],
        message: `at most one model with default: true (${defaults.map(([n]) => n).join(', ')} are)`,
      });
    }
  });

export type RoutesSpec = z.infer<typeof routes>;
export type ModelSpec = RoutesSpec['models'][string];
export type VersionSpec = ModelSpec['versions'][number];
export type MirrorSpec = NonNullable<ModelSpec['mirror']>;

/** A routes file that cannot be used; `errors` holds one line per problem. */
export class RoutesFileError extends Error {
  constructor(
    readonly file: string,
    readonly errors: string[],
  ) {
    super(
      errors.map((line) => `Invalid routes file ${file}: ${line}`).join('\n'),
    );
  }
}

/** Parses and validates a routes file's text; throws RoutesFileError with every problem found. */
export function parseRoutes(text: string, file: string): RoutesSpec {
  const result = validatedYaml(text, routes);
  if (result.errors) throw new RoutesFileError(file, result.errors);
  return result.value;
}

function normalizeUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}
