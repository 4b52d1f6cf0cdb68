import { isDeepStrictEqual } from 'node:util';

/**
 * Whether a shadow's answer agrees with the client's: the same status and,
 * with `fields`, the same JSON values at those (dotted) paths; without, the
 * same bytes.
 */
export function sameAnswer(
  primary: { status: number; body: Buffer },
  shadow: { status: number; body: Buffer },
  fields: readonly string[],
): boolean {
  if (primary.status !== shadow.status) return false;
  if (fields.length === 0) return primary.body.equals(shadow.body);
  let a: unknown;
  let b: unknown;
  try {
    a = JSON.parse(primary.body.toString('utf8'));
    b = JSON.parse(shadow.body.toString('utf8'));
  } catch {
    return false;
  }
  return fields.every((field) =>
    isDeepStrictEqual(valueAt(a, field), valueAt(b, field)),
  );
}

function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
