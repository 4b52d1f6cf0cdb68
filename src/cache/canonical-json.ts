/**
 * The canonical form of a JSON text: object members sorted by key, no
 * insignificant whitespace, every string and number kept exactly as written
 * (so `1` and `1.0`, which a Python backend tells apart, stay distinct).
 * Undefined when the text is not JSON.
 */
export function canonicalJson(text: string): string | undefined {
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  const reader = { text, at: 0 };
  return value(reader);
}

interface Reader {
  text: string;
  at: number;
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

function skip(r: Reader): void {
  while (WHITESPACE.has(r.text[r.at])) r.at++;
}

// The text is valid JSON (checked above), so each branch may trust its shape.
function value(r: Reader): string {
  skip(r);
  const c = r.text[r.at];
  if (c === '{') return object(r);
  if (c === '[') return array(r);
  if (c === '"') return string(r);
  const start = r.at;
  while (r.at < r.text.length && !/[\s,\]}]/.test(r.text[r.at])) r.at++;
  return r.text.slice(start, r.at);
}

function string(r: Reader): string {
  const start = r.at++;
  while (r.text[r.at] !== '"') r.at += r.text[r.at] === '\\' ? 2 : 1;
  r.at++;
  return r.text.slice(start, r.at);
}

function object(r: Reader): string {
  r.at++;
  const members: [string, string][] = [];
  skip(r);
  if (r.text[r.at] === '}') {
    r.at++;
    return '{}';
  }
  for (;;) {
    skip(r);
    const key = string(r);
    skip(r);
    r.at++; // ':'
    members.push([key, value(r)]);
    skip(r);
    if (r.text[r.at++] === '}') break; // else ','
  }
  members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${members.map(([k, v]) => `${k}:${v}`).join(',')}}`;
}

function array(r: Reader): string {
  r.at++;
  const items: string[] = [];
  skip(r);
  if (r.text[r.at] === ']') {
    r.at++;
    return '[]';
  }
  for (;;) {
    items.push(value(r));
    skip(r);
    if (r.text[r.at++] === ']') break;
  }
  return `[${items.join(',')}]`;
}
