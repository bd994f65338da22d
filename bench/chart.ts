/**
 * Two small SVG chart kinds drawn by hand (no charting dependency for two pictures): lines on log-log axes
 * (latency against facts stored) and grouped bars (writes acknowledged vs lost).
 */

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
  /** Drawn dashed (a floor, not a system). */
  readonly dashed?: boolean;
}

const W = 720;
const H = 420;
const M = { left: 80, right: 200, top: 50, bottom: 60 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function decades(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

function fmt(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(v);
}

/** Lines on log-log axes. */
export function lineChartSvg(o: { title: string; xLabel: string; yLabel: string; series: readonly Series[] }): string {
  const pts = o.series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.y));
  const xs = decades(Math.min(...pts.map((p) => p.x)), Math.max(...pts.map((p) => p.x)));
  const ys = decades(Math.min(...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y)));
  const [x0, x1] = [Math.log10(xs[0]!), Math.log10(xs[xs.length - 1]!)];
  const [y0, y1] = [Math.log10(ys[0]!), Math.log10(ys[ys.length - 1]!)];
  const px = (x: number): number => M.left + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y: number): number => H - M.bottom - ((Math.log10(y) - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2 - M.right / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  ];
  for (const x of xs) {
    parts.push(`<line x1="${px(x)}" y1="${M.top}" x2="${px(x)}" y2="${H - M.bottom}" stroke="#ddd"/>`);
    parts.push(`<text x="${px(x)}" y="${H - M.bottom + 18}" text-anchor="middle">${fmt(x)}</text>`);
  }
  for (const y of ys) {
    parts.push(`<line x1="${M.left}" y1="${py(y)}" x2="${W - M.right}" y2="${py(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${M.left - 8}" y="${py(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 18}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(20 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, k) => {
    const sp = s.points.filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.y));
    if (sp.length === 0) return;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${sp.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of sp) parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
    const ly = M.top + 10 + k * 22;
    parts.push(`<line x1="${W - M.right + 14}" y1="${ly}" x2="${W - M.right + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${W - M.right + 46}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export interface BarGroup {
  readonly name: string;
  readonly bars: readonly { readonly label: string; readonly value: number; readonly color: string }[];
}

/** Grouped vertical bars on a linear axis, each labelled with its value. */
export function barChartSvg(o: { title: string; yLabel: string; groups: readonly BarGroup[] }): string {
  const max = Math.max(1, ...o.groups.flatMap((g) => g.bars.map((b) => b.value)));
  const plotW = W - M.left - 40;
  const plotH = H - M.top - M.bottom;
  const groupW = plotW / o.groups.length;
  const py = (v: number): number => H - M.bottom - (v / max) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - 40}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text transform="translate(20 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  ];
  o.groups.forEach((g, gi) => {
    const bw = (groupW * 0.7) / g.bars.length;
    const gx = M.left + gi * groupW + groupW * 0.15;
    g.bars.forEach((b, bi) => {
      const x = gx + bi * bw;
      parts.push(`<rect x="${x.toFixed(1)}" y="${py(b.value).toFixed(1)}" width="${(bw - 6).toFixed(1)}" height="${(H - M.bottom - py(b.value)).toFixed(1)}" fill="${b.color}"/>`);
      parts.push(`<text x="${(x + (bw - 6) / 2).toFixed(1)}" y="${(py(b.value) - 6).toFixed(1)}" text-anchor="middle">${b.value}</text>`);
      parts.push(`<text x="${(x + (bw - 6) / 2).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${esc(b.label)}</text>`);
    });
    parts.push(`<text x="${(M.left + gi * groupW + groupW / 2).toFixed(1)}" y="${H - M.bottom + 38}" text-anchor="middle" font-weight="bold">${esc(g.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
