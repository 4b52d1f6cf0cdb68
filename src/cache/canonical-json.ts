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

// Character codes: the scanner compares numbers, not one-character strings.
const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const QUOTE = 34;
const COMMA = 44;
const LBRACKET = 91;
const BACKSLASH = 92;
const RBRACKET = 93;
const LBRACE = 123;
const RBRACE = 125;

function isSpace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

function skip(r: Reader): void {
  while (isSpace(r.text.charCodeAt(r.at))) r.at++;
}

// The text is valid JSON (checked above), so each branch may trust its shape.
function value(r: Reader): string {
  skip(r);
  const c = r.text.charCodeAt(r.at);
  if (c === LBRACE) return object(r);
  if (c === LBRACKET) return array(r);
  if (c === QUOTE) return string(r);
  // A number, true, false or null: up to the next delimiter.
  const start = r.at;
  for (;;) {
    const d = r.text.charCodeAt(++r.at);
    if (
      Number.isNaN(d) ||
      d === COMMA ||
      d === RBRACE ||
      d === RBRACKET ||
      isSpace(d)
    )
      return r.text.slice(start, r.at);
  }
}

/** A string as written, escapes included: ends at the first quote not escaped. */
function string(r: Reader): string {
  const start = r.at;
  let quote = r.at;
  for (;;) {
    quote = r.text.indexOf('"', quote + 1);
    let backslashes = 0;
    while (r.text.charCodeAt(quote - 1 - backslashes) === BACKSLASH)
      backslashes++;
    if (backslashes % 2 === 0) break;
  }
  r.at = quote + 1;
  return r.text.slice(start, r.at);
}

function object(r: Reader): string {
  r.at++;
  skip(r);
  if (r.text.charCodeAt(r.at) === RBRACE) {
    r.at++;
    return '{}';
  }
  const members: [string, string][] = [];
  for (;;) {
    skip(r);
    const key = string(r);
    skip(r);
    r.at++; // ':'
    members.push([key, value(r)]);
    skip(r);
    if (r.text.charCodeAt(r.at++) === RBRACE) break; // else ','
  }
  if (members.length > 1)
    members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let out = '{';
  for (let i = 0; i < members.length; i++)
    out += `${i === 0 ? '' : ','}${members[i][0]}:${members[i][1]}`;
  return `${out}}`;
}

function array(r: Reader): string {
  r.at++;
  skip(r);
  if (r.text.charCodeAt(r.at) === RBRACKET) {
    r.at++;
    return '[]';
  }
  let out = '[';
  for (;;) {
    out += value(r);
    skip(r);
    if (r.text.charCodeAt(r.at++) === RBRACKET) break;
    out += ',';
  }
  return `${out}]`;
}
