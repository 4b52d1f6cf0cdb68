import { z } from 'zod';
import { PRIORITIES } from '../common/priority.js';
import { validatedYaml } from '../common/validated-yaml.js';

/** What clients not listed get, and the name they go by. */
export const DEFAULT_TENANT = 'default';

const name = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    'a name of letters, digits, ".", "_" or "-" (up to 63)',
  )
  .refine((n) => n !== DEFAULT_TENANT, `a name other than "${DEFAULT_TENANT}"`);

const keyDigest = z
  .string('"sha256:" and the 64 hex digits of a key\'s SHA-256')
  .trim()
  .toLowerCase()
  .regex(
    /^sha256:[0-9a-f]{64}$/,
    '"sha256:" and the 64 hex digits of a key\'s SHA-256',
  )
  .transform((digest) => digest.slice('sha256:'.length));

/** A quota in items per second (a /batch_predict costs its texts) and its burst. */
const limits = {
  rps: z
    .number('a number of items per second')
    .positive('items per second > 0')
    .max(1_000_000, 'items per second <= 1000000')
    .optional(),
  burst: z
    .number('a whole number of items')
    .int('a whole number of items')
    .min(1, 'a burst >= 1')
    .max(1_000_000, 'a burst <= 1000000')
    .optional(),
  priority: z
    .enum(PRIORITIES, `one of ${PRIORITIES.join(', ')}`)
    .default('standard'),
};

const burstNeedsRps = (value: { rps?: number; burst?: number }) =>
  value.burst === undefined || value.rps !== undefined;
const BURST_NEEDS_RPS = { message: 'rps with burst', path: ['rps'] };

const defaults = z.strictObject(limits).refine(burstNeedsRps, BURST_NEEDS_RPS);

const tenant = z
  .strictObject({
    apiKeys: z
      .array(keyDigest, 'a list of "sha256:<hex>" key digests')
      .default([]),
    ...limits,
  })
  .refine(burstNeedsRps, BURST_NEEDS_RPS);

const tenantsFile = z
  .strictObject({
    default: defaults.default({ priority: 'standard' }),
    tenants: z
      .record(name, tenant, 'a map of tenant names to tenants')
      .default({}),
  })
  .superRefine((value, ctx) => {
    const owner = new Map<string, string>();
    for (const [tenantName, t] of Object.entries(value.tenants)) {
      for (const [i, digest] of t.apiKeys.entries()) {
        const other = owner.get(digest);
        if (other !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['tenants', tenantName, 'apiKeys', i],
            message: `a key no other tenant lists (${other} does)`,
          });
        owner.set(digest, tenantName);
      }
    }
  });

/** An empty file is a file with no tenants. */
const document = z.preprocess((value) => value ?? {}, tenantsFile);

export type TenantsSpec = z.infer<typeof tenantsFile>;
export type TenantSpec = TenantsSpec['tenants'][string];

/** A tenants file that cannot be used; `errors` holds one line per problem. */
export class TenantsFileError extends Error {
  constructor(
    readonly file: string,
    readonly errors: string[],
  ) {
    super(
      errors.map((line) => `Invalid tenants file ${file}: ${line}`).join('\n'),
    );
  }
}

/** Parses and validates a tenants file's text; throws TenantsFileError with every problem found. */
export function parseTenants(text: string, file: string): TenantsSpec {
  const result = validatedYaml(text, document);
  if (result.errors) throw new TenantsFileError(file, result.errors);
  return result.value;
}
