// The report's figures for the out-of-distribution guard and the calibration: how the guard's scores of the
// in-distribution test images and of each out-of-distribution set fall around its threshold, and the reliability
// diagram of the test split before and after calibration (confidence against accuracy, the diagonal is honest).
import type { ReliabilityBin } from '../stats/calibration.js';
import { lineChart } from './charts.js';

/** Score histograms (as frequency polygons on a log scale, one per set, each summing to 1) with the threshold. */
export function oodScoreChart(scores: Record<string, number[]>, threshold: number, bins = 30): string {
  const logs = Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, v.filter((s) => s > 0).map((s) => Math.log10(s))]));
  const all = Object.values(logs).flat();
  const lo = Math.min(...all, Math.log10(threshold));
  const hi = Math.max(...all, Math.log10(threshold));
  const width = (hi - lo) / bins || 1;
  const centres = Array.from({ length: bins }, (_, b) => lo + (b + 0.5) * width);
  const series = Object.entries(logs).map(([name, v]) => {
    const counts = new Array<number>(bins).fill(0);
    for (const s of v) counts[Math.min(bins - 1, Math.floor((s - lo) / width))]++;
    return { name: `${name} (${v.length})`, x: centres, y: counts.map((c) => c / Math.max(1, v.length)), dashed: name !== 'test' && name !== 'validation' };
  });
  return lineChart({
    title: 'Guard score by set (flagged right of the threshold)',
    xLabel: 'log10 score',
    yLabel: 'fraction of the set',
    series,
    markers: [{ x: Math.log10(threshold), label: 'threshold' }],
    points: false,
  });
}

/** Reliability diagram: accuracy per confidence bin before and after calibration, against the diagonal. */
export function reliabilityChart(before: ReliabilityBin[], after: ReliabilityBin[], eceBefore: number, eceAfter: number): string {
  const line = (bins: ReliabilityBin[]) => ({ x: bins.map((b) => b.confidence), y: bins.map((b) => b.accuracy) });
  return lineChart({
    title: `Reliability on the test split: ECE ${eceBefore.toFixed(3)} before, ${eceAfter.toFixed(3)} after calibration`,
    xLabel: 'confidence (top class)',
    yLabel: 'accuracy',
    yDomain: [0, 1],
    series: [
      { name: 'perfectly calibrated', x: [0, 1], y: [0, 1], dashed: true },
      { name: 'before', ...line(before) },
      { name: 'after calibration', ...line(after) },
    ],
  });
}
