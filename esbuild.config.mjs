// Part of `npm run build`: bundles the compiled app (dist/main.js and its
// imports, node_modules included) into dist/main.js, one ES module (whitespace and syntax minified).
// Node 20 spends most of a cold start resolving and linking the hundreds of
// ES module files of Nest 12, rxjs and friends: one file starts ~3x faster and
// holds less memory. `nest start --watch` keeps running the unbundled output.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

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

// Work a dependency does at load that the gateway never uses, deferred to
// first use. Each costs start time and resident memory on every pod
// (docs/benchmark-results.md, "Lean"): Nest's console logger formats dates
// with Intl (ICU's locale data, ~10 MB resident), axios probes the fetch
// API (Node's own undici and web streams, ~18 MB). Each patch must match:
// a dependency update that moves the code fails the build, not the budget.
const patches = [
  {
    file: /@nestjs[\\/]common[\\/]services[\\/](?:console-)?logger\.service\.js$/,
    from: 'const dateTimeFormatter = new Intl.DateTimeFormat(undefined, {',
    to: 'let dateTimeFormatterMade;\nconst dateTimeFormatter = { format: (date) => (dateTimeFormatterMade ??= new Intl.DateTimeFormat(undefined, dateTimeFormatterOptions)).format(date) };\nconst dateTimeFormatterOptions = ({',
  },
  {
    file: /axios[\\/]lib[\\/]adapters[\\/]fetch\.js$/,
    from: 'const adapter = getFetch();\n\nexport default adapter;',
    to: 'export default undefined;',
  },
  {
    file: /axios[\\/]lib[\\/]utils\.js$/,
    from: "const FormDataCtor = typeof G.FormData !== 'undefined' ? G.FormData : undefined;",
    to: 'let FormDataCtor;',
  },
  {
    file: /axios[\\/]lib[\\/]utils\.js$/,
    from: 'if (FormDataCtor && thing instanceof FormDataCtor) return true;',
    to: 'if ((FormDataCtor ??= G.FormData) && thing instanceof FormDataCtor) return true;',
  },
];
const deferred = {
  name: 'deferred-load-work',
  setup(b) {
    b.onLoad({ filter: /node_modules.*\.js$/ }, (args) => {
      const mine = patches.filter((p) => p.file.test(args.path));
      if (mine.length === 0) return undefined;
      let text = readFileSync(args.path, 'utf8');
      for (const { from, to } of mine) {
        if (!text.includes(from))
          throw new Error(`esbuild.config.mjs: ${args.path} no longer has: ${from}`);
        text = text.replace(from, to);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

// On Node 24 an ES import of node:http builds the module's ES facade from
// all its exports, getters included: its lazy WebSocket loads Node's own
// undici and web streams (~12 MB resident, ~40 ms). Imported through
// require(), http's getters stay lazy.
const httpByRequire = {
  name: 'http-by-require',
  setup(b) {
    b.onResolve({ filter: /^(?:node:)?http$/ }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: 'http', namespace: 'http-by-require' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'http-by-require' }, () => ({
      contents: "module.exports = require('node:http');",
      loader: 'js',
    }));
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
  plugins: [optionalPeers, deferred, httpByRequire],
  // ASCII only: one non-ASCII byte makes V8 hold the whole source as UTF-16 (twice
  // its size). License comments go to dist/main.js.LEGAL.txt.
  charset: 'ascii',
  legalComments: 'external',
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
renameSync('dist/main.bundle.js.LEGAL.txt', 'dist/main.js.LEGAL.txt');
rmSync('dist/main.js.map', { force: true }); // tsc's map of the unbundled entry

// COMPILE_CACHE_DIR=dir (the image's build): boot the bundle once with
// Node's compile cache there, so every start of this node on this file
// reads V8's code for it instead of parsing and compiling it again
// (Node 24: ~2x faster to the first answer, docs/benchmark-results.md).
const cacheDir = process.env.COMPILE_CACHE_DIR;
if (cacheDir) await warmCompileCache(cacheDir);

async function warmCompileCache(dir) {
  const port = await new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  const child = spawn(process.execPath, ['dist/main.js'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      NODE_COMPILE_CACHE: dir,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      BACKEND_URL: 'http://127.0.0.1:9',
      LOG_LEVEL: 'warn',
    },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const live = await fetch(`http://127.0.0.1:${port}/health/live`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (live) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('compile cache: the gateway did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGTERM'); // Node writes the cache as the process exits
  const code = await exited;
  if (code !== 0 || readdirSync(dir).length === 0)
    throw new Error(`compile cache: nothing written to ${dir} (exit ${code})`);
}
