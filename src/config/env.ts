import { z } from 'zod';

/** Thrown when an environment variable is invalid; its message is the one line printed at boot. */
export class ConfigValidationError extends Error {
  override readonly name = 'ConfigValidationError';
}

/**
 * The one line a bad setting stops the process with: each variable named
 * with its value (JSON-quoted, `(unset)` when absent), then what is allowed.
 */
export function configError(
  settings: Record<string, string | number | undefined>,
  allowed: string,
): ConfigValidationError {
  const shown = Object.entries(settings).map(
    ([name, value]) =>
      `${name}=${value === undefined ? '(unset)' : JSON.stringify(String(value))}`,
  );
  return new ConfigValidationError(
    `Invalid configuration: ${shown.join(' and ')}; allowed: ${allowed}`,
  );
}

export const intInRange = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A comma-separated list of HTTP header names, lower-cased. */
export const headerNameList = z
  .string()
  .transform((raw) =>
    raw
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  )
  .refine(
    (names) => names.every((name) => HEADER_NAME.test(name)),
    'comma-separated HTTP header names',
  );

export const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * Validates the variables named by `schema` (all strings, defaults applied
 * first) and returns their typed values. Empty strings count as unset.
 */
export function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  defaults: Partial<Record<keyof S & string, string>>,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const input: Record<string, string | undefined> = {};
  for (const name of Object.keys(shape)) {
    const raw = env[name];
    input[name] = raw === undefined || raw === '' ? defaults[name] : raw;
  }
  const result = z.object(shape).safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const name = String(issue.path[0]);
  throw configError({ [name]: input[name] }, allowedText(issue));
}

function allowedText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `one of ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'too_small':
      return `a value >= ${String(issue.minimum)}`;
    case 'too_big':
      return `a value <= ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}
