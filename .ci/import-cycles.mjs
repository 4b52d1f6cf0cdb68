#!/usr/bin/env node
// Import cycles, type-only imports included (`npm run lint` runs this):
//  - between files of src/ and test/;
//  - between the top-level folders of src/ (each top-level file of src/, such
//    as main.ts, counts as a node of its own);
//  - the layering below: a folder listed in LAYERING imports from no folder
//    of src/ (nor top-level file) but the ones listed for it.
// Every import form counts: `import`, `import type`, `import { type X }`,
// `export ... from`, `import x = require()`, `import()` and `import('x').T`
// types. Module specifiers are resolved by TypeScript itself with the
// project's tsconfig.json (nodenext: './x.js' names './x.ts').
// import-x/no-cycle (eslint.config.mjs) skips type-only imports by design and
// has no option to count them, hence this script.
// Exit code 1 when anything is found. `--json` prints the findings as JSON;
// `--graph` prints the folder graph of src/ (who imports whom) as well.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// ---------------------------------------------------------------------------
// The intended layering, in one place. Key: a top-level folder of src/ (or a
// top-level file, by its file name, e.g. 'version.ts'). Value: the only
// folders / top-level files it may import from. A folder that is not a key
// may import from anything, as long as no folder cycle results (checked for
// every folder). Type imports count like any other.
export const LAYERING = {
  common: ['config'],
};
// Folders scanned for file cycles; the folder graph is built from src/ alone.
const SCANNED = ['src', 'test'];
// Most cycles printed per level (file, folder) before "... and N more".
const MAX_CYCLES = 200;
// ---------------------------------------------------------------------------

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asJson = process.argv.includes('--json');
const showGraph = process.argv.includes('--graph');
const started = performance.now();
const rel = (f) => relative(root, f).split(sep).join('/');

function listTs(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out = out.concat(listTs(p));
    else if (/\.(c|m)?tsx?$/.test(e.name) && !e.name.endsWith('.d.ts'))
      out.push(p);
  }
  return out;
}

const configPath = join(root, 'tsconfig.json');
const parsed = ts.parseJsonConfigFileContent(
  ts.readConfigFile(configPath, ts.sys.readFile).config,
  ts.sys,
  root,
);
const options = parsed.options;
const host = ts.createCompilerHost(options);
const cache = ts.createModuleResolutionCache(
  root,
  host.getCanonicalFileName,
  options,
);

const files = SCANNED.flatMap((d) => listTs(join(root, d))).sort();
const known = new Set(files);

/** @type {Map<string, {to: string, line: number, text: string, type: boolean}[]>} */
const imports = new Map();

for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const mode = ts.getImpliedNodeFormatForFile(
    /** @type {ts.Path} */ (file),
    cache.getPackageJsonInfoCache(),
    host,
    options,
  );
  const edges = [];
  const add = (specNode, type, stmt) => {
    if (!specNode || !ts.isStringLiteralLike(specNode)) return;
    const r = ts.resolveModuleName(
      specNode.text,
      file,
      options,
      host,
      cache,
      undefined,
      mode,
    ).resolvedModule;
    if (!r || !known.has(r.resolvedFileName)) return;
    const line = sf.getLineAndCharacterOfPosition(stmt.getStart(sf)).line + 1;
    let oneLine = stmt.getText(sf).replace(/\s+/g, ' ').replace(/, }/g, ' }');
    if (oneLine.length > 140) oneLine = `${oneLine.slice(0, 137)}...`;
    edges.push({ to: r.resolvedFileName, line, text: oneLine, type });
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const typeOnly =
        !!c &&
        (c.isTypeOnly ||
          (!c.name &&
            !!c.namedBindings &&
            ts.isNamedImports(c.namedBindings) &&
            c.namedBindings.elements.length > 0 &&
            c.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, typeOnly, node);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const typeOnly =
        node.isTypeOnly ||
        (!!node.exportClause &&
          ts.isNamedExports(node.exportClause) &&
          node.exportClause.elements.length > 0 &&
          node.exportClause.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier, typeOnly, node);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference)
    ) {
      add(node.moduleReference.expression, node.isTypeOnly, node);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword
    ) {
      add(node.arguments[0], false, node);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument)
    ) {
      add(node.argument.literal, true, node);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  imports.set(file, edges);
}

// --- graph helpers ---------------------------------------------------------

/** Strongly connected components (Tarjan), each sorted, singletons dropped
 * unless the node imports itself. @param {Map<string, Set<string>>} g */
function cyclicComponents(g) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || g.get(v)?.has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!idx.has(v)) strong(v);
  return out;
}

/** Every elementary cycle inside the components, as node lists starting at
 * their smallest node; at most `max`. */
function elementaryCycles(g, comps, max) {
  const cycles = [];
  let truncated = false;
  for (const comp of comps) {
    const inComp = new Set(comp);
    for (let s = 0; s < comp.length && !truncated; s++) {
      const start = comp[s];
      const allowed = new Set(comp.slice(s)); // nodes >= start
      const path = [start];
      const onPath = new Set(path);
      const dfs = (v) => {
        for (const w of [...(g.get(v) ?? [])].sort()) {
          if (truncated) return;
          if (!inComp.has(w) || !allowed.has(w)) continue;
          if (w === start) {
            if (cycles.length >= max) {
              truncated = true;
              return;
            }
            cycles.push([...path]);
          } else if (!onPath.has(w)) {
            path.push(w);
            onPath.add(w);
            dfs(w);
            onPath.delete(w);
            path.pop();
          }
        }
      };
      dfs(start);
    }
  }
  cycles.sort(
    (a, b) => a.length - b.length || a.join('\0').localeCompare(b.join('\0')),
  );
  return { cycles, truncated };
}

const fmtImport = (from, e) =>
  `${rel(from)}:${e.line}  ${e.text.trim()}${e.type ? '   [type-only]' : ''}`;

// --- file level ------------------------------------------------------------

const fileGraph = new Map(
  files.map((f) => [f, new Set(imports.get(f).map((e) => e.to))]),
);
const fileComps = cyclicComponents(fileGraph);
const fileCycles = elementaryCycles(fileGraph, fileComps, MAX_CYCLES);

// --- folder level (src/ only) ----------------------------------------------

const srcDir = join(root, 'src') + sep;
/** 'proxy' for src/proxy/**, 'main.ts' for src/main.ts, null outside src/. */
const nodeOf = (f) => {
  if (!f.startsWith(srcDir)) return null;
  return f.slice(srcDir.length).split(sep)[0];
};
/** @type {Map<string, Set<string>>} */
const folderGraph = new Map();
/** witnesses.get('a\0b'): the imports that make folder a depend on b. */
const witnesses = new Map();
for (const f of files) {
  const a = nodeOf(f);
  if (a === null) continue;
  if (!folderGraph.has(a)) folderGraph.set(a, new Set());
  for (const e of imports.get(f)) {
    const b = nodeOf(e.to);
    if (b === null || b === a) continue;
    folderGraph.get(a).add(b);
    const k = `${a}\0${b}`;
    if (!witnesses.has(k)) witnesses.set(k, []);
    witnesses.get(k).push({ from: f, e });
  }
}
const folderComps = cyclicComponents(folderGraph);
const folderCycles = elementaryCycles(folderGraph, folderComps, MAX_CYCLES);

// --- layering ----------------------------------------------------------------

const layering = [];
const unknownInLayering = [];
for (const [a, allowed] of Object.entries(LAYERING)) {
  for (const n of [a, ...allowed])
    if (!folderGraph.has(n) && !unknownInLayering.includes(n))
      unknownInLayering.push(n);
  for (const b of [...(folderGraph.get(a) ?? [])].sort())
    if (!allowed.includes(b))
      layering.push({
        from: a,
        to: b,
        allowed,
        via: witnesses.get(`${a}\0${b}`),
      });
}

// --- report ------------------------------------------------------------------

const ms = Math.round(performance.now() - started);
const failed =
  fileCycles.cycles.length > 0 ||
  folderCycles.cycles.length > 0 ||
  layering.length > 0;

if (asJson) {
  const edge = (from, e) => ({
    from: rel(from),
    line: e.line,
    to: rel(e.to),
    typeOnly: e.type,
  });
  const fileEdges = (cycle) =>
    cycle.map((f, i) => {
      const to = cycle[(i + 1) % cycle.length];
      return imports
        .get(f)
        .filter((e) => e.to === to)
        .map((e) => edge(f, e));
    });
  const folderEdges = (cycle) =>
    cycle.map((a, i) => ({
      from: a,
      to: cycle[(i + 1) % cycle.length],
      imports: witnesses
        .get(`${a}\0${cycle[(i + 1) % cycle.length]}`)
        .map((w) => edge(w.from, w.e)),
    }));
  console.log(
    JSON.stringify(
      {
        files: files.length,
        fileCycles: fileCycles.cycles.map((c) => ({
          files: c.map(rel),
          imports: fileEdges(c),
        })),
        folderCycles: folderCycles.cycles.map((c) => ({
          folders: c,
          edges: folderEdges(c),
        })),
        layering: layering.map((l) => ({
          from: l.from,
          to: l.to,
          allowed: l.allowed,
          imports: l.via.map((w) => edge(w.from, w.e)),
        })),
        truncated: fileCycles.truncated || folderCycles.truncated,
        unknownInLayering,
        ms,
      },
      null,
      2,
    ),
  );
  process.exit(failed ? 1 : 0);
}

const out = [];
if (showGraph) {
  out.push('Folder graph of src/ (folder -> folders it imports from):');
  for (const a of [...folderGraph.keys()].sort())
    out.push(
      `  ${a} -> ${[...folderGraph.get(a)].sort().join(', ') || '(nothing)'}`,
    );
}
const arrow = (c) =>
  c.length === 2 ? `${c[0]} <-> ${c[1]}` : [...c, c[0]].join(' -> ');

if (fileCycles.cycles.length) {
  out.push(
    `\nFile import cycles (${fileCycles.cycles.length}${fileCycles.truncated ? '+' : ''}, type-only imports included):`,
  );
  for (const c of fileCycles.cycles) {
    out.push(`\n  ${arrow(c.map(rel))}`);
    c.forEach((f, i) => {
      const to = c[(i + 1) % c.length];
      for (const e of imports.get(f).filter((x) => x.to === to))
        out.push(`    ${fmtImport(f, e)}`);
    });
  }
}

if (folderCycles.cycles.length) {
  out.push(
    `\nFolder import cycles in src/ (${folderCycles.cycles.length}${folderCycles.truncated ? '+' : ''}; a file of src/ itself counts as a folder):`,
  );
  out.push(
    `  folders tied together: ${folderComps.map((c) => `{${c.join(', ')}}`).join(' ')}`,
  );
  for (const c of folderCycles.cycles) {
    out.push(`\n  ${arrow(c)}`);
    c.forEach((a, i) => {
      const b = c[(i + 1) % c.length];
      const w = witnesses.get(`${a}\0${b}`);
      out.push(
        `    ${a} -> ${b} (${w.length} import${w.length > 1 ? 's' : ''}):`,
      );
      for (const { from, e } of w) out.push(`      ${fmtImport(from, e)}`);
    });
  }
}

if (layering.length) {
  out.push(`\nLayering (LAYERING in .ci/import-cycles.mjs):`);
  for (const l of layering) {
    out.push(
      `\n  ${l.from} -> ${l.to}: ${l.from} may import only from ${l.allowed.length ? l.allowed.join(', ') : 'nothing in src/'}`,
    );
    for (const { from, e } of l.via) out.push(`    ${fmtImport(from, e)}`);
  }
}

if (unknownInLayering.length)
  out.push(
    `\nnote: LAYERING names ${unknownInLayering.join(', ')}, not found in src/ (stale entry?)`,
  );

if (fileCycles.truncated || folderCycles.truncated)
  out.push(`\n(only the first ${MAX_CYCLES} cycles of a level are listed)`);

const summary = `import-cycles: ${files.length} files, ${fileCycles.cycles.length} file cycle(s), ${folderCycles.cycles.length} folder cycle(s), ${layering.length} layering violation(s) (${ms} ms)`;
if (failed) {
  console.error(out.join('\n'));
  console.error(`\n${summary}`);
  process.exit(1);
}
if (out.length) console.log(out.join('\n'));
console.log(summary);
