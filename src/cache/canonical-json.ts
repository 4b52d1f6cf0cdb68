/** Deepest nesting canonicalised (inference payloads are shallow); deeper: raw bytes. */
export const MAX_DEPTH = 64;

/**
 * The canonical form of a JSON text: object members sorted by key, no
 * insignificant whitespace, every string and number kept exactly as written
 * (so `1` and `1.0`, which a Python backend tells apart, stay distinct).
 * Undefined when the text is not JSON, nests deeper than MAX_DEPTH, or has
 * an object with a member name twice (`"text"` and `"\u0074ext"`): parsers
 * disagree on which one wins, so such a body is keyed by its bytes.
 */
export function canonicalJson(text: string): string | undefined {
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  try {
    return value({ text, at: 0, depth: 0 });
  } catch (err) {
    if (err === NOT_CANONICAL) return undefined;
    throw err;
  }
}

interface Reader {
  text: string;
  at: number;
  depth: number;
}

/** Thrown from deep in the scan: the text has no canonical form here. */
const NOT_CANONICAL = new Error('no canonical form');

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

function enter(r: Reader): void {
  if (++r.depth > MAX_DEPTH) throw NOT_CANONICAL;
}

function object(r: Reader): string {
  enter(r);
  r.at++;
  skip(r);
  if (r.text.charCodeAt(r.at) === RBRACE) {
    r.at++;
    r.depth--;
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
  if (members.length > 1) {
    members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (hasDuplicateNames(members)) throw NOT_CANONICAL;
  }
  r.depth--;
  let out = '{';
  for (let i = 0; i < members.length; i++)
    out += `${i === 0 ? '' : ','}${members[i][0]}:${members[i][1]}`;
  return `${out}}`;
}

function array(r: Reader): string {
  enter(r);
  r.at++;
  skip(r);
  if (r.text.charCodeAt(r.at) === RBRACKET) {
    r.at++;
    r.depth--;
    return '[]';
  }
  let out = '[';
  for (;;) {
    out += value(r);
    skip(r);
    if (r.text.charCodeAt(r.at++) === RBRACKET) break;
    out += ',';
  }
  r.depth--;
  return `${out}]`;
}

/**
 * Two members with one name, as written (adjacent once sorted) or once
 * escapes are decoded (only names with a backslash need decoding).
 */
function hasDuplicateNames(sorted: [string, string][]): boolean {
  let escaped = false;
  for (let i = 0; i < sorted.length; i++) {
    if (i > 0 && sorted[i][0] === sorted[i - 1][0]) return true;
    if (sorted[i][0].includes('\\')) escaped = true;
  }
  if (!escaped) return false;
  const names = new Set<string>();
  for (const [name] of sorted) {
    const decoded = name.includes('\\')
      ? (JSON.parse(name) as string)
      : name.slice(1, -1);
    if (names.has(decoded)) return true;
    names.add(decoded);
  }
  return false;
}
