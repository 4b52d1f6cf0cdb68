/** A JSON pointer (RFC 6901) as its reference tokens. */
export type Pointer = readonly string[];

export function parsePointer(text: string): Pointer {
  if (text === '') return [];
  return text
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value `pointer` names in `document` (undefined when there is none). */
export function valueAt(document: unknown, pointer: Pointer): unknown {
  let node = document;
  for (const token of pointer) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
      node = node[Number(token)];
    } else if (node !== null && typeof node === 'object') {
      if (!Object.hasOwn(node, token)) return undefined;
      node = (node as Record<string, unknown>)[token];
    } else return undefined;
  }
  return node;
}

/** A document holding `value` at `pointer`, objects all the way down. */
export function documentWith(pointer: Pointer, value: unknown): unknown {
  let document = value;
  for (let i = pointer.length - 1; i >= 0; i--)
    document = { [pointer[i]]: document };
  return document;
}

/** Removes the member or array item `pointer` names; false when there is none. */
export function removeAt(document: unknown, pointer: Pointer): boolean {
  if (pointer.length === 0) return false;
  const parent = valueAt(document, pointer.slice(0, -1));
  const token = pointer[pointer.length - 1];
  if (Array.isArray(parent)) {
    if (!/^(0|[1-9]\d*)$/.test(token) || Number(token) >= parent.length)
      return false;
    parent.splice(Number(token), 1);
    return true;
  }
  if (parent === null || typeof parent !== 'object') return false;
  if (!Object.hasOwn(parent, token)) return false;
  delete (parent as Record<string, unknown>)[token];
  return true;
}
