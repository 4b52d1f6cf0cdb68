// Part of `npm run build`: bundles the compiled app (dist/main.js and its
// imports, node_modules included) into dist/main.js, one minified ES module.
// Node 20 spends most of a cold start resolving and linking the hundreds of
// ES module files of Nest 12, rxjs and friends: one file starts ~3x faster and
// holds less memory. `nest start --watch` keeps running the unbundled output.
import { build } from 'esbuild';
import { renameSync, rmSync } from 'node:fs';

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

await build({
  entryPoints: ['dist/main.js'],
  outfile: 'dist/main.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  keepNames: true, // Nest reports and resolves providers by class name
  external,
  plugins: [optionalPeers],
  // CommonJS dependencies (fastify, pino, prom-client) call require().
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
renameSync('dist/main.bundle.js', 'dist/main.js');
rmSync('dist/main.js.map', { force: true }); // tsc's map of the unbundled entry
