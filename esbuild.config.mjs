// Part of `npm run build`: bundles the compiled app (dist/main.js and its
// imports, node_modules included) into dist/main.js, one ES module (whitespace and syntax minified).
// Node 20 spends most of a cold start resolving and linking the hundreds of
// ES module files of Nest 12, rxjs and friends: one file starts ~3x faster and
// holds less memory. `nest start --watch` keeps running the unbundled output.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

// Optional peers Nest loads only when used (microservices, multipart, ...) and
// packages that locate files beside themselves (pino's transport worker) stay
// out of the bundle and load from node_modules if ever needed. OpenTelemetry
// too: src/tracing imports it with import() only when tracing is on, so a
// gateway without tracing neither parses nor loads it.
const external = ['thread-stream', 'pino-pretty', '@opentelemetry/*'];
const optionalPeers = {
  name: 'optional-peers',
  setup(b) {
    b.onResolve({ filter: /^[@a-z]/ }, async (args) => {
      if (args.kind === 'entry-point' || args.pluginData) return undefined;
      const result = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: true });
      return result.errors.length > 0 ? { path: args.path, external: true } : result;
    });
  },
};

// Names are not minified, and esbuild's keepNames is off: it wraps every
// function in a helper that redefines its `name` (~6,000 sites, a dozen of
// them run per request on fresh closures), and each such closure gets a map
// of its own that turns the call sites it meets megamorphic. The gateway cost
// ~25 % more CPU per request with it (docs/benchmark-results.md). Unminified, a
// function's name is its source name without the helper.
await build({
  entryPoints: ['dist/main.js'],
  outfile: 'dist/main.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  external,
  plugins: [optionalPeers],
  // CommonJS dependencies (fastify, pino, prom-client) call require().
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
// Two kinds of class come out with another name, which Nest's and our log
// contexts would show: a class that refers to itself is emitted as
// `X=class _X{...}` (Nest's `_RoutesResolver`), and a decorated one that
// does (TypeScript's `let X = X_1 = class X`) as `X=X_1=class{...}`, named
// X_1. Each gets its source name back, once, when the class is defined.
const named = (name) =>
  `{static{Object.defineProperty(this,"name",{value:"${name}"})}`;
const bundle = readFileSync('dist/main.bundle.js', 'utf8')
  .replace(
    /\b([A-Za-z$][\w$]*)=class _\1\b((?: extends [\w$.]+)?)\{/g,
    (_, name, heritage) => `${name}=class _${name}${heritage}${named(name)}`,
  )
  .replace(
    /\b([A-Za-z$][\w$]*)_1=class((?: extends [\w$.]+)?)\{/g,
    (_, name, heritage) => `${name}_1=class${heritage}${named(name)}`,
  );
writeFileSync('dist/main.js', bundle);
rmSync('dist/main.bundle.js');
rmSync('dist/main.js.map', { force: true }); // tsc's map of the unbundled entry
