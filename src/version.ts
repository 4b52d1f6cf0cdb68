import { readFileSync } from 'node:fs';

/** The gateway's version (package.json), read once: `dist/` and the bundle both sit one level down. */
export const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };
