// Plain SVG chart builders for the report: no dependencies, deterministic output, text escaped. The same strings
// are inlined into the HTML report and rendered to PNG figures.

export const FONT_FAMILY = 'DejaVu Sans, Arial, Helvetica, sans-serif';
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export const colorAt = (i: number): string => PALETTE[i % PALETTE.length];

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** Short, readable number: integers as is, others with up to 3 significant digits. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

/** About `count` round tick values covering [min, max] (steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return [];
  if (max === min) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[0] > min) ticks.unshift(Number((ticks[0] - step).toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function svgOpen(width: number, height: number, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="${FONT_FAMILY}" font-size="12" role="img" aria-label="${escapeXml(title)}">` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>` +
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`
  );
}

const truncate = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
}

function legend(names: string[], x: number, y: number, dashed: boolean[] = []): string {
  return names
    .map((name, i) => {
      const yy = y + i * 18;
      const dash = dashed[i] ? ' stroke-dasharray="5 3"' : '';
      return (
        `<line x1="${x}" y1="${yy}" x2="${x + 20}" y2="${yy}" stroke="${colorAt(i)}" stroke-width="2.5"${dash}/>` +
        `<text x="${x + 26}" y="${yy + 4}">${escapeXml(truncate(name, 28))}</text>`
      );
    })
    .join('');
}

function axes(frame: Frame, xTicks: { v: number; px: number; label: string }[], yTicks: { px: number; label: string }[],
  xLabel: string, yLabel: string): string {
  const { left, top, width, height } = frame;
  const bottom = top + height;
  let s = `<g stroke="#e5e5e5" stroke-width="1">`;
  for (const t of yTicks) s += `<line x1="${left}" y1="${t.px}" x2="${left + width}" y2="${t.px}"/>`;
  s += `</g><g stroke="#333" stroke-width="1">`;
  s += `<line x1="${left}" y1="${bottom}" x2="${left + width}" y2="${bottom}"/><line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/>`;
  for (const t of xTicks) s += `<line x1="${t.px}" y1="${bottom}" x2="${t.px}" y2="${bottom + 5}"/>`;
  for (const t of yTicks) s += `<line x1="${left - 5}" y1="${t.px}" x2="${left}" y2="${t.px}"/>`;
  s += `</g><g fill="#333">`;
  for (const t of xTicks) s += `<text x="${t.px}" y="${bottom + 18}" text-anchor="middle">${escapeXml(t.label)}</text>`;
  for (const t of yTicks) s += `<text x="${left - 8}" y="${t.px + 4}" text-anchor="end">${escapeXml(t.label)}</text>`;
  s += `</g>`;
  s += `<text x="${left + width / 2}" y="${bottom + 38}" text-anchor="middle">${escapeXml(xLabel)}</text>`;
  s += `<text x="16" y="${top + height / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + height / 2})">${escapeXml(yLabel)}</text>`;
  return s;
}

const noData = (frame: Frame): string =>
  `<text x="${frame.left + frame.width / 2}" y="${frame.top + frame.height / 2}" text-anchor="middle" fill="#888">no data</text>`;

export interface LineSeries {
  name: string;
  x: number[];
  y: number[];
  dashed?: boolean;
  /** A short text beside each point (staggered up and down so that neighbours stay legible). */
  labels?: string[];
}

export interface LineChartOptions {
  series: LineSeries[];
  xLabel: string;
  yLabel: string;
  title: string;
  width?: number;
  height?: number;
  /** Fixed y range (e.g. [0, 1] for accuracies); default: the data's range. */
  yDomain?: [number, number];
  /** Vertical reference lines, e.g. the chosen k or the best epoch. */
  markers?: { x: number; label: string }[];
  /** Draw a dot on every point (for short series). Default: when a series has at most 40 points. */
  points?: boolean;
}

/** Line chart (training curves, k sweeps). Non-finite points are skipped. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 360;
  const hasLegend = o.series.length > 1 || (o.series.length === 1 && o.series[0].name !== '');
  const frame: Frame = { left: 64, top: 34, width: width - 64 - (hasLegend ? 190 : 20), height: height - 34 - 50 };
  let s = svgOpen(width, height, o.title);
  const pts = o.series.map((se) =>
    se.x.map((x, i) => [x, se.y[i]] as [number, number]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const all = pts.flat();
  if (all.length === 0) return `${s}${axes(frame, [], [], o.xLabel, o.yLabel)}${noData(frame)}</svg>`;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xTickV = niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yTickV = o.yDomain ? niceTicks(o.yDomain[0], o.yDomain[1], 5) : niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const [x0, x1] = [xTickV[0], xTickV[xTickV.length - 1]];
  const [y0, y1] = [yTickV[0], yTickV[yTickV.length - 1]];
  const px = (x: number): number => frame.left + ((x - x0) / (x1 - x0)) * frame.width;
  const py = (y: number): number => frame.top + frame.height - ((y - y0) / (y1 - y0)) * frame.height;
  s += axes(frame, xTickV.map((v) => ({ v, px: px(v), label: formatNumber(v) })),
    yTickV.map((v) => ({ px: py(v), label: formatNumber(v) })), o.xLabel, o.yLabel);
  for (const m of o.markers ?? []) {
    if (!Number.isFinite(m.x)) continue;
    s += `<line x1="${px(m.x)}" y1="${frame.top}" x2="${px(m.x)}" y2="${frame.top + frame.height}" stroke="#888" stroke-dasharray="4 3"/>`;
    s += `<text x="${px(m.x) + 4}" y="${frame.top + 12}" fill="#555" font-size="11">${escapeXml(m.label)}</text>`;
  }
  pts.forEach((p, i) => {
    if (p.length === 0) return;
    const d = p.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    const dash = o.series[i].dashed ? ' stroke-dasharray="6 4"' : '';
    s += `<path d="${d}" fill="none" stroke="${colorAt(i)}" stroke-width="2"${dash}/>`;
    if (o.points ?? p.length <= 40) {
      for (const [x, y] of p) s += `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${colorAt(i)}"/>`;
    }
    const labels = o.series[i].labels;
    if (labels) {
      // Labels follow the series' own points (non-finite ones are skipped in both).
      const se = o.series[i];
      let j = 0;
      se.x.forEach((x, k) => {
        const y = se.y[k];
        if (!(Number.isFinite(x) && Number.isFinite(y))) return;
        const dy = j++ % 2 === 0 ? -7 : 15;
        s += `<text x="${(px(x) + 4).toFixed(1)}" y="${(py(y) + dy).toFixed(1)}" font-size="10" fill="#444">${escapeXml(labels[k] ?? '')}</text>`;
      });
    }
  });
  if (hasLegend) s += legend(o.series.map((se) => se.name), frame.left + frame.width + 16, frame.top + 8, o.series.map((se) => !!se.dashed));
  return `${s}</svg>`;
}

export interface BarChartOptions {
  categories: string[];
  series: { name: string; values: number[] }[];
  xLabel?: string;
  yLabel: string;
  title: string;
  height?: number;
}

/** Grouped vertical bars (e.g. units per layer before and after pruning); widens with the number of bars. */
export function barChart(o: BarChartOptions): string {
  const n = o.categories.length;
  const k = Math.max(1, o.series.length);
  const group = Math.max(14, 6 * k + 6);
  const longest = Math.min(24, Math.max(1, ...o.categories.map((c) => c.length)));
  const bottomPad = 30 + longest * 5.2 + (o.xLabel ? 18 : 0);
  const width = Math.max(520, 64 + 190 + n * group);
  const height = o.height ?? Math.round(280 + bottomPad);
  const frame: Frame = { left: 64, top: 34, width: width - 64 - 190, height: height - 34 - bottomPad };
  let s = svgOpen(width, height, o.title);
  const values = o.series.flatMap((se) => se.values).filter(Number.isFinite);
  if (n === 0 || values.length === 0) return `${s}${axes(frame, [], [], o.xLabel ?? '', o.yLabel)}${noData(frame)}</svg>`;
  const yTickV = niceTicks(Math.min(0, ...values), Math.max(0, ...values), 5);
  const [y0, y1] = [yTickV[0], yTickV[yTickV.length - 1]];
  const py = (y: number): number => frame.top + frame.height - ((y - y0) / (y1 - y0)) * frame.height;
  const slot = frame.width / n;
  const barW = Math.max(2, (slot - 4) / k);
  // Category labels are drawn rotated below the axis; axes() gets no x ticks.
  s += axes(frame, [], yTickV.map((v) => ({ px: py(v), label: formatNumber(v) })), '', o.yLabel);
  o.series.forEach((se, j) => {
    se.values.forEach((v, i) => {
      if (!Number.isFinite(v) || i >= n) return;
      const x = frame.left + i * slot + 2 + j * barW;
      const top = Math.min(py(v), py(0));
      const h = Math.abs(py(v) - py(0));
      s += `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${colorAt(j)}"><title>${escapeXml(`${o.categories[i]} - ${se.name}: ${formatNumber(v)}`)}</title></rect>`;
    });
  });
  const base = frame.top + frame.height;
  o.categories.forEach((c, i) => {
    const x = frame.left + (i + 0.5) * slot;
    s += `<text x="${x.toFixed(1)}" y="${base + 12}" text-anchor="end" font-size="10" transform="rotate(-60 ${x.toFixed(1)} ${base + 12})">${escapeXml(truncate(c, 24))}</text>`;
  });
  if (o.xLabel) s += `<text x="${frame.left + frame.width / 2}" y="${height - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`;
  s += o.series
    .map((se, j) => {
      const x = frame.left + frame.width + 16;
      const y = frame.top + 8 + j * 18;
      return `<rect x="${x}" y="${y - 6}" width="14" height="12" fill="${colorAt(j)}"/><text x="${x + 20}" y="${y + 4}">${escapeXml(truncate(se.name, 28))}</text>`;
    })
    .join('');
  return `${s}</svg>`;
}

/** Confusion matrix (rows: true class, columns: predicted), shaded by the share of each true class. */
export function confusionMatrixChart(matrix: number[][], classes: string[], title = 'Confusion matrix'): string {
  const n = classes.length;
  const cell = n <= 4 ? 80 : 56;
  const labelW = Math.min(140, 20 + Math.max(...classes.map((c) => c.length), 4) * 7);
  const left = 30 + labelW;
  const top = 72;
  const width = Math.max(320, left + n * cell + 20, title.length * 8.5 + 20);
  const height = top + n * cell + 50;
  let s = svgOpen(width, height, title);
  s += `<text x="${left + (n * cell) / 2}" y="${top - 24}" text-anchor="middle" font-weight="bold">Predicted</text>`;
  s += `<text x="14" y="${top + (n * cell) / 2}" text-anchor="middle" font-weight="bold" transform="rotate(-90 14 ${top + (n * cell) / 2})">True</text>`;
  classes.forEach((c, j) => {
    s += `<text x="${left + (j + 0.5) * cell}" y="${top - 6}" text-anchor="middle" font-size="11">${escapeXml(truncate(c, 14))}</text>`;
    s += `<text x="${left - 6}" y="${top + (j + 0.5) * cell + 4}" text-anchor="end" font-size="11">${escapeXml(truncate(c, 18))}</text>`;
  });
  for (let t = 0; t < n; t++) {
    const row = matrix[t] ?? [];
    const total = row.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    for (let p = 0; p < n; p++) {
      const v = row[p] ?? 0;
      const share = total > 0 ? v / total : 0;
      // White to dark blue; text flips to white on dark cells.
      const shade = (a: number, b: number): number => Math.round(a + (b - a) * share);
      const fill = `rgb(${shade(247, 8)},${shade(251, 48)},${shade(255, 107)})`;
      const ink = share > 0.5 ? '#ffffff' : '#111111';
      const x = left + p * cell;
      const y = top + t * cell;
      s += `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#ffffff"/>`;
      s += `<text x="${x + cell / 2}" y="${y + cell / 2}" text-anchor="middle" fill="${ink}" font-size="14">${escapeXml(formatNumber(v))}</text>`;
      s += `<text x="${x + cell / 2}" y="${y + cell / 2 + 16}" text-anchor="middle" fill="${ink}" font-size="10">${(share * 100).toFixed(1)}%</text>`;
    }
  }
  return `${s}</svg>`;
}

export interface RocCurveData {
  name: string;
  fpr: number[];
  tpr: number[];
  auc: number;
}

/** ROC curves with the chance diagonal; the legend gives each curve's AUC. */
export function rocChart(curves: RocCurveData[], title = 'ROC curves'): string {
  const width = 560;
  const height = 400;
  const frame: Frame = { left: 64, top: 34, width: 316, height: 316 };
  let s = svgOpen(width, height, title);
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const px = (x: number): number => frame.left + x * frame.width;
  const py = (y: number): number => frame.top + frame.height - y * frame.height;
  s += axes(frame, ticks.map((v) => ({ v, px: px(v), label: formatNumber(v) })),
    ticks.map((v) => ({ px: py(v), label: formatNumber(v) })), 'False positive rate', 'True positive rate');
  s += `<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#aaa" stroke-dasharray="5 4"/>`;
  if (curves.length === 0) s += noData(frame);
  curves.forEach((c, i) => {
    const d = c.fpr
      .map((f, j) => [f, c.tpr[j]] as const)
      .filter(([f, t]) => Number.isFinite(f) && Number.isFinite(t))
      .map(([f, t], j) => `${j === 0 ? 'M' : 'L'}${px(f).toFixed(1)},${py(t).toFixed(1)}`)
      .join(' ');
    if (d) s += `<path d="${d}" fill="none" stroke="${colorAt(i)}" stroke-width="2"/>`;
  });
  s += legend(curves.map((c) => `${c.name} (AUC ${Number.isFinite(c.auc) ? c.auc.toFixed(3) : 'n/a'})`), frame.left + frame.width + 16, frame.top + 8);
  return `${s}</svg>`;
}
