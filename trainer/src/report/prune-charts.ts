// The report's figure of the variance-threshold sweep: what each relative threshold removes (share of the
// parameters) against the pruned network's validation accuracy, each point labelled with its threshold and the
// measured max |pruned - unpruned| on validation, beside the auto rule's floor (unpruned accuracy - 0.5 pt).
import { formatNumber, lineChart } from './charts.js';

export interface SweepPointLike {
  threshold: number;
  paramsRemoved: number;
  valAccuracy: number;
  maxAbsDiff: number;
}

export function thresholdSweepChart(points: SweepPointLike[], paramsBefore: number, baseline: number, chosen: number, tolerance = 0.005): string {
  const sorted = [...points].sort((a, b) => a.threshold - b.threshold);
  const x = sorted.map((p) => (100 * p.paramsRemoved) / paramsBefore);
  const xs = x.length > 0 ? [Math.min(...x), Math.max(...x)] : [0, 1];
  const pick = sorted.find((p) => p.threshold === chosen);
  return lineChart({
    title: 'Variance threshold sweep (relative to each layer): size against validation accuracy',
    xLabel: 'parameters removed (%)',
    yLabel: 'validation accuracy (softmax head)',
    width: 760,
    height: 420,
    series: [
      {
        name: 'pruned (label: threshold, max diff)',
        x,
        y: sorted.map((p) => p.valAccuracy),
        labels: sorted.map((p) => `${formatNumber(p.threshold)}, ${p.maxAbsDiff.toExponential(1)}`),
      },
      { name: 'unpruned', x: xs, y: [baseline, baseline], dashed: true },
      { name: 'unpruned - 0.5 pt', x: xs, y: [baseline - tolerance, baseline - tolerance], dashed: true },
    ],
    markers: pick ? [{ x: (100 * pick.paramsRemoved) / paramsBefore, label: `chosen ${formatNumber(chosen)}` }] : [],
  });
}
