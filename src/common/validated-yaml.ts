import { parse, YAMLParseError } from 'yaml';
import type { z } from 'zod';

/**
 * A YAML file's text checked against `schema`: its value, or one line per
 * problem (`path: expected …`), for the files the gateway re-reads live
 * (ROUTES_FILE, TENANTS_FILE).
 */
export function validatedYaml<T>(
  text: string,
  schema: z.ZodType<T>,
): { value: T; errors?: undefined } | { errors: string[] } {
  let document: unknown;
  try {
    document = parse(text, { prettyErrors: false });
  } catch (err) {
    const message =
      err instanceof YAMLParseError
        ? `${err.code} at line ${err.linePos?.[0].line ?? '?'}`
        : 'unreadable YAML';
    return { errors: [`not valid YAML (${message})`] };
  }
  const result = schema.safeParse(document);
  if (result.success) return { value: result.data };
  return {
    errors: result.error.issues.map(
      (issue) => `${pathText(issue.path)}: expected ${expected(issue)}`,
    ),
  };
}

/** What was expected: for a map's bad key, what a key must be (not what the map is). */
function expected(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key' && issue.issues.length > 0)
    return issue.issues[0].message;
  if (issue.code === 'unrecognized_keys')
    return `no ${issue.keys.map((key) => JSON.stringify(key)).join(', ')} field (a misspelling?)`;
  return issue.message;
}

function pathText(path: PropertyKey[]): string {
  let text = '';
  for (const key of path) {
    text +=
      typeof key === 'number' ? `[${key}]` : `${text ? '.' : ''}${String(key)}`;
  }
  return text || '(top level)';
}
