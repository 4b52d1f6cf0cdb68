#!/usr/bin/env node
// Prints the Markdown values table of helm/api-gateway from the `# --`
// comments of values.yaml (helm-docs convention), for the README.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const file = join(
  dirname(fileURLToPath(import.meta.url)),
  '../helm/api-gateway/values.yaml',
);
const text = readFileSync(file, 'utf8');
const values = parse(text);
const rows = [];
const path = [];
let comment = null;

for (const line of text.split('\n')) {
  const doc = /^(\s*)# -- (.*)$/.exec(line);
  if (doc) {
    comment = doc[2];
    continue;
  }
  const more = /^\s*# (.*)$/.exec(line);
  if (more && comment !== null) {
    comment += ` ${more[1]}`;
    continue;
  }
  const key = /^(\s*)([A-Za-z0-9_]+):/.exec(line);
  if (!key) continue;
  const depth = key[1].length / 2;
  path.length = depth;
  path[depth] = key[2];
  if (comment !== null) {
    const value = path.reduce((v, k) => v?.[k], values);
    let shown = JSON.stringify(value);
    if (shown.length > 60) shown = Array.isArray(value) ? '[…]' : '{…}';
    rows.push(
      `| \`${path.join('.')}\` | \`${shown}\` | ${comment.replace(/\|/g, '\\|')} |`,
    );
    comment = null;
  }
}

console.log('| Key | Default | Description |\n|---|---|---|');
console.log(rows.join('\n'));
