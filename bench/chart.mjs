// SVG chart of a bench report: throughput (top row) and p50/p99 latency (bottom row) per scenario and target.
// Usage: node bench/chart.mjs [bench/results/latest.json]  -> writes the .svg next to it.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const COLORS = {
  direct: '#8c8c8c',
  nginx: '#2e9e44',
  bare: '#2f6fdb',
  go: '#00a3c4',
  gateway: '#e8730c',
  'gateway-before': '#9c4a00',
  variant: '#f5b77a',
};
const LABELS = {
  direct: 'upstream direct',
  nginx: 'nginx',
  bare: 'bare Node proxy',
  go: 'Go gateway (workshop)',
  gateway: 'gateway',
  'gateway-before': 'gateway before (BENCH_BASELINE_DIST)',
  variant: 'gateway + one feature',
};
// gateway+ratelimit, gateway+cache...: one colour, the bar labelled by the feature.
const colorOf = (t) =>
  COLORS[t] ?? (t.startsWith('gateway+') ? COLORS.variant : '#999');
const barLabel = (t) =>
  t.startsWith('gateway+') ? t.slice(7) : t === 'gateway-before' ? 'before' : t;
const esc = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}
const short = (v) =>
  v >= 10_000
    ? `${(v / 1000).toFixed(1)}k`
    : v >= 100
      ? v.toFixed(0)
      : v >= 10
        ? v.toFixed(1)
        : v.toFixed(2);

export function renderChart(report) {
  const ids = Object.keys(report.scenarios);
  // A panel per scenario, wider when it has many bars (the feature variants).
  const widths = ids.map((id) =>
    Math.max(250, 80 + 34 * Object.keys(report.scenarios[id].targets).length),
  );
  const H = 210;
  const padL = 48;
  const width = widths.reduce((a, w) => a + w, 0) + 20;
  const height = 2 * (H + 50) + 70;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  const m = report.machine;
  out.push(
    `<text x="10" y="20" font-size="14" font-weight="bold">api-gateway benchmark: throughput and latency per target</text>`,
  );
  out.push(
    `<text x="10" y="38" fill="#444">${esc(`${report.date.slice(0, 16).replace('T', ' ')} UTC, ${m.cores} x ${m.cpu}, ${m.distro ?? ''}, Node ${report.versions.node}, ${report.loadTool}, ${report.config.rounds} x ${report.config.duration} s, median, load avg ${m.loadavg?.[0]?.toFixed(1) ?? '?'}`)}</text>`,
  );
  let lx = 10;
  const shown = new Set(
    ids.flatMap((id) =>
      Object.keys(report.scenarios[id].targets).map((t) =>
        t.startsWith('gateway+') ? 'variant' : t,
      ),
    ),
  );
  for (const [t, c] of Object.entries(COLORS)) {
    if (!shown.has(t)) continue;
    out.push(
      `<rect x="${lx}" y="48" width="12" height="12" fill="${c}"/><text x="${lx + 16}" y="58">${LABELS[t]}</text>`,
    );
    lx += 24 + LABELS[t].length * 6;
  }
  out.push(
    `<text x="${lx}" y="58" fill="#444">latency (log scale): solid p50, light p99</text>`,
  );

  ids.forEach((id, col) => {
    const sc = report.scenarios[id];
    const targets = Object.keys(sc.targets);
    const W = widths[col];
    const x0 = 10 + widths.slice(0, col).reduce((a, w) => a + w, 0);
    // throughput
    const label = sc.label ?? id;
    panel(
      x0,
      W,
      80,
      `${label}: req/s`,
      'req/s',
      targets.map((t) => ({ t, vals: [sc.targets[t].median.rps] })),
    );
    // latency
    panel(
      x0,
      W,
      80 + H + 50,
      `${label}: p50 / p99 ms`,
      'ms',
      targets.map((t) => ({
        t,
        vals: [sc.targets[t].median.p50, sc.targets[t].median.p99],
      })),
    );
  });

  // Throughput on a linear axis; latency on a log axis, so that 0.07 ms and 100 ms both read.
  function panel(x0, W, y0, title, unit, bars) {
    const plotW = W - padL - 10;
    const plotH = H - 40;
    const top = y0 + 22;
    const values = bars.flatMap((b) => b.vals).filter((v) => v > 0);
    const log = unit === 'ms';
    const lo = log ? 10 ** Math.floor(Math.log10(Math.min(...values))) : 0;
    const hi = log
      ? 10 ** Math.ceil(Math.log10(Math.max(...values)))
      : niceMax(Math.max(...values));
    const scale = (v) =>
      log
        ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) /
          (Math.log10(hi) - Math.log10(lo))
        : v / hi;
    out.push(
      `<text x="${x0 + 4}" y="${y0 + 10}" font-weight="bold">${esc(title.length > 42 ? title.slice(0, 41) + '…' : title)}</text>`,
    );
    const ticks = log
      ? Array.from(
          { length: Math.round(Math.log10(hi / lo)) + 1 },
          (_, i) => lo * 10 ** i,
        )
      : [0, 1, 2, 3, 4].map((i) => (hi * i) / 4);
    for (const t of ticks) {
      const y = top + plotH - plotH * scale(t);
      out.push(
        `<line x1="${x0 + padL}" x2="${x0 + padL + plotW}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`,
      );
      out.push(
        `<text x="${x0 + padL - 4}" y="${y + 4}" text-anchor="end" fill="#555">${log ? +t.toPrecision(1) : short(t)}</text>`,
      );
    }
    const slot = plotW / Math.max(bars.length, 1);
    bars.forEach(({ t, vals }, i) => {
      const bw = (slot * 0.7) / vals.length;
      vals.forEach((v, j) => {
        const h = plotH * scale(v || 0);
        const x = x0 + padL + i * slot + slot * 0.15 + j * bw;
        out.push(
          `<rect x="${x.toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${colorOf(t)}" fill-opacity="${j === 0 ? 1 : 0.45}"><title>${esc(`${t} ${short(v)} ${unit}`)}</title></rect>`,
        );
        out.push(
          `<text x="${(x + bw / 2).toFixed(1)}" y="${(top + plotH - h - 3).toFixed(1)}" text-anchor="middle" font-size="9">${short(v)}</text>`,
        );
      });
      out.push(
        `<text x="${(x0 + padL + i * slot + slot / 2).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle"${bars.length > 6 ? ' font-size="9"' : ''}>${esc(barLabel(t))}</text>`,
      );
    });
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file =
    process.argv[2] ??
    path.join(
      path.dirname(fileURLToPath(import.meta.url)),
      'results',
      'latest.json',
    );
  const svg = file.replace(/\.json$/, '.svg');
  fs.writeFileSync(svg, renderChart(JSON.parse(fs.readFileSync(file, 'utf8'))));
  console.log(`wrote ${svg}`);
}
