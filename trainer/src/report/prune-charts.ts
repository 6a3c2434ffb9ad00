// The report's figure of the variance-threshold sweep: what each relative threshold removes (share of the
// parameters) against the pruned network's validation accuracy, beside the unpruned accuracy and the auto rule's
// floor (0.5 pt below it). Points are numbered; a key under the plot gives each one's threshold, size and the
// measured max |pruned - unpruned| on validation (labels beside the points would pile up where they cluster).
import { escapeXml, FONT_FAMILY, formatNumber, lineChart } from './charts.js';

export interface SweepPointLike {
  threshold: number;
  paramsRemoved: number;
  valAccuracy: number;
  maxAbsDiff: number;
}

export function thresholdSweepChart(points: SweepPointLike[], paramsBefore: number, baseline: number, chosen: number, tolerance = 0.005): string {
  const sorted = [...points].sort((a, b) => a.threshold - b.threshold);
  const pct = (p: SweepPointLike) => (100 * p.paramsRemoved) / paramsBefore;
  const x = sorted.map(pct);
  const xs = x.length > 0 ? [Math.min(...x), Math.max(...x)] : [0, 1];
  const pick = sorted.find((p) => p.threshold === chosen);
  const width = 760;
  const plotHeight = 380;
  const plot = lineChart({
    title: 'Variance threshold sweep (relative to each layer): size against validation accuracy',
    xLabel: 'parameters removed (%)',
    yLabel: 'validation accuracy (softmax head)',
    width,
    height: plotHeight,
    series: [
      { name: 'pruned (numbered)', x, y: sorted.map((p) => p.valAccuracy), labels: sorted.map((_, i) => String(i + 1)) },
      { name: 'unpruned', x: xs, y: [baseline, baseline], dashed: true },
      { name: 'unpruned - 0.5 pt', x: xs, y: [baseline - tolerance, baseline - tolerance], dashed: true },
    ],
    markers: pick ? [{ x: pct(pick), label: `chosen ${formatNumber(chosen)}` }] : [],
  });
  const rows = Math.ceil(sorted.length / 2);
  const height = plotHeight + 24 + rows * 16;
  const key = sorted
    .map((p, i) => {
      const col = i < rows ? 0 : 1;
      const row = i < rows ? i : i - rows;
      const text =
        `${i + 1}: t=${formatNumber(p.threshold)} · ${pct(p).toFixed(1)} % removed · acc ${p.valAccuracy.toFixed(3)} · ` +
        `max diff ${p.maxAbsDiff.toExponential(1)}${p.threshold === chosen ? ' (chosen)' : ''}`;
      return `<text x="${24 + col * 370}" y="${plotHeight + 16 + row * 16}" font-size="11">${escapeXml(text)}</text>`;
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>${plot.replace('<svg ', `<svg x="0" y="0" `)}${key}</svg>`
  );
}
