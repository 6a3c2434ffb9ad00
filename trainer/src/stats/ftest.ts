// ANOVA F-test per feature (scikit-learn's f_classif) and top-k selection (SelectKBest), browser-safe.
//
// Feature matrices throughout the classifier code are `number[][]`, rows = samples, columns = features;
// labels are class indices 0..nClasses-1.

export interface FTestResult {
  /** F statistic per feature; NaN for a constant feature (0/0), +Infinity when only the groups' means differ. */
  F: Float64Array;
  /** p-value per feature: survival function of F(nClasses-1, nSamples-nClasses) at F; NaN where F is NaN. */
  p: Float64Array;
}

/**
 * One-way ANOVA F-test of every feature against the class labels, the same statistic as scikit-learn's
 * `f_classif` (between-group mean square over within-group mean square). Sums of squares are computed around the
 * group and overall means (two passes) rather than with sklearn's raw-moment formula: the same value, without
 * its cancellation on features with a large offset. Classes are the distinct labels present in y.
 */
export function fClassif(X: ArrayLike<number>[], y: ArrayLike<number>): FTestResult {
  const n = X.length;
  if (n === 0) throw new Error('fClassif: no samples');
  if (y.length !== n) throw new Error(`fClassif: ${n} samples but ${y.length} labels`);
  const d = X[0].length;

  // Group labels into dense indices in order of appearance.
  const groupOf = new Int32Array(n);
  const index = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    let g = index.get(y[i]);
    if (g === undefined) {
      g = index.size;
      index.set(y[i], g);
    }
    groupOf[i] = g;
  }
  const k = index.size;
  if (k < 2) throw new Error('fClassif: needs at least two classes');
  if (n <= k) throw new Error('fClassif: needs more samples than classes');

  const counts = new Float64Array(k);
  for (let i = 0; i < n; i++) counts[groupOf[i]]++;
  const sums = new Float64Array(k * d);
  const total = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const row = X[i];
    if (row.length !== d) throw new Error(`fClassif: row ${i} has ${row.length} features, expected ${d}`);
    const off = groupOf[i] * d;
    for (let j = 0; j < d; j++) {
      sums[off + j] += row[j];
      total[j] += row[j];
    }
  }
  const means = sums.map((s, t) => s / counts[Math.floor(t / d)]);
  const grand = total.map((s) => s / n);

  const ssWithin = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const row = X[i];
    const off = groupOf[i] * d;
    for (let j = 0; j < d; j++) {
      const e = row[j] - means[off + j];
      ssWithin[j] += e * e;
    }
  }
  const dfBetween = k - 1;
  const dfWithin = n - k;
  const F = new Float64Array(d);
  const p = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let ssBetween = 0;
    for (let g = 0; g < k; g++) {
      const e = means[g * d + j] - grand[j];
      ssBetween += counts[g] * e * e;
    }
    F[j] = ssBetween / dfBetween / (ssWithin[j] / dfWithin);
    p[j] = fSurvival(F[j], dfBetween, dfWithin);
  }
  return { F, p };
}

/**
 * Indices of the k highest scores, in ascending index order. NaN ranks lowest. Ties are broken as sklearn's
 * SelectKBest does (stable ascending sort, keep the last k): among equal scores the higher indices are kept.
 */
export function selectKBest(scores: ArrayLike<number>, k: number): number[] {
  const n = scores.length;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`selectKBest: k must be an integer in 0..${n}, got ${k}`);
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Number.MAX_VALUE : scores[i]);
  // Array.prototype.sort is stable: ascending by score, then by index.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => key(a) - key(b) || a - b);
  return order.slice(n - k).sort((a, b) => a - b);
}

/** P(F(d1, d2) > f): the regularised incomplete beta I_x(d2/2, d1/2) with x = d2 / (d2 + d1 f). */
export function fSurvival(f: number, d1: number, d2: number): number {
  if (Number.isNaN(f)) return NaN;
  if (f <= 0) return 1;
  if (f === Infinity) return 0;
  const denom = d2 + d1 * f;
  // Both x and 1 - x are formed directly so neither suffers cancellation.
  return regularizedBeta(d2 / 2, d1 / 2, d2 / denom, (d1 * f) / denom);
}

/** Regularised incomplete beta I_x(a, b), given x and y = 1 - x (continued fraction, modified Lentz). */
export function regularizedBeta(a: number, b: number, x: number, y = 1 - x): number {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const logFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(y);
  // The continued fraction converges fast for x below the mean of the distribution; use symmetry above it.
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(a, b, x)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(b, a, y)) / b;
}

function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  const eps = 1e-16;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 100000; m++) {
    const m2 = 2 * m;
    // Even step.
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    // Odd step.
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < eps) return h;
  }
  throw new Error(`incomplete beta: continued fraction did not converge (a=${a}, b=${b}, x=${x})`);
}

// Stirling-series coefficients B_2k / (2k (2k-1)) for ln Gamma.
const STIRLING = [1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156, -3617 / 122400];
const HALF_LN_2PI = 0.5 * Math.log(2 * Math.PI);

/** ln Gamma(x) for x > 0: Stirling's series at x >= 10 (error < 1e-16), shifted up by the recurrence below. */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new Error(`lnGamma: x must be > 0, got ${x}`);
  let shift = 0;
  let prod = 1;
  while (x < 10) {
    prod *= x;
    x += 1;
    shift++;
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  let series = 0;
  for (let i = STIRLING.length - 1; i >= 0; i--) series = series * inv2 + STIRLING[i];
  const lg = (x - 0.5) * Math.log(x) - x + HALF_LN_2PI + series * inv;
  return shift > 0 ? lg - Math.log(prod) : lg;
}
