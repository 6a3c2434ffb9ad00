// The out-of-distribution guard every bundle carries: is this image like the frontal chest radiographs the model
// was trained on? A classifier answers for anything it is shown (a lateral view, a CT slice, a photo all come out
// "COVID" at 99 %), so the answer is only shown when the guard accepts the image.
//
// Method (chosen by measurement on lateral X-rays, CT slices and synthetic images, see the bundle README): the
// Mahalanobis distance (Lee et al. 2018) of the image's mean-pooled activations at the Grad-CAM layer to the
// nearest class mean, under one covariance shared by the classes. The covariance of 1,000+ channels from ~2,000
// images is rank-deficient, so it is modelled as probabilistic PCA: `r` principal directions with their own
// variances plus one isotropic variance for the rest (Tipping & Bishop 1999). The threshold is the score that
// accepts a set fraction (95 %) of the validation split, never the test split. Browser-safe.
import * as tf from '@tensorflow/tfjs';

/** The fitted guard, as its numbers (stored in the bundle as a binary file beside the manifest's summary). */
export interface OodGuard {
  /** Layer whose output is mean-pooled over the spatial grid into the feature vector. */
  layer: string;
  /** Class means, [classes][dims]. */
  means: Float32Array[];
  /** Orthonormal principal directions of the within-class scatter, [components][dims]. */
  components: Float32Array[];
  /** Variance along each direction. */
  variances: Float32Array;
  /** Mean variance of the remaining directions. */
  residualVariance: number;
  /** Scores above this are flagged. */
  threshold: number;
  /** Fraction of the validation split the threshold accepts. */
  acceptance: number;
}

export interface OodVerdict {
  score: number;
  threshold: number;
  flagged: boolean;
}

/** Squared PPCA-Mahalanobis distance of `x` to the nearest class mean. */
export function oodScore(g: Pick<OodGuard, 'means' | 'components' | 'variances' | 'residualVariance'>, x: ArrayLike<number>): number {
  const d = x.length;
  const diff = new Float64Array(d);
  let best = Infinity;
  for (const mean of g.means) {
    let total = 0;
    for (let j = 0; j < d; j++) {
      diff[j] = x[j] - mean[j];
      total += diff[j] * diff[j];
    }
    let inPlane = 0;
    let projected = 0;
    for (let c = 0; c < g.components.length; c++) {
      const v = g.components[c];
      let p = 0;
      for (let j = 0; j < d; j++) p += diff[j] * v[j];
      projected += p * p;
      inPlane += (p * p) / g.variances[c];
    }
    // What the principal directions leave is scored against the residual variance.
    const score = inPlane + Math.max(0, total - projected) / g.residualVariance;
    if (score < best) best = score;
  }
  return best;
}

export function oodVerdict(g: OodGuard, x: ArrayLike<number>): OodVerdict {
  const score = oodScore(g, x);
  return { score, threshold: g.threshold, flagged: !(score <= g.threshold) };
}

/** The value below which `q` of `values` lie (linear interpolation between order statistics, as numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (pos - lo) * (s[hi] - s[lo]);
}

/**
 * Top `r` eigenpairs of a symmetric positive semi-definite matrix by orthogonal (subspace) iteration with a
 * Rayleigh-Ritz step at the end; the matrix is a tensor so the products run on the backend.
 */
function topEigen(cov: tf.Tensor2D, r: number, iterations = 60): { vectors: Float32Array[]; values: Float32Array } {
  const d = cov.shape[0];
  // Deterministic start: a fixed pseudo-random matrix, so the same data always give the same guard.
  let seed = 12345;
  const start = new Float32Array(d * r).map(() => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 4294967296 - 0.5;
  });
  let q = tf.tidy(() => orthonormalColumns(tf.tensor2d(start, [d, r])));
  for (let it = 0; it < iterations; it++) {
    const next = tf.tidy(() => orthonormalColumns(tf.matMul(cov, q)));
    q.dispose();
    q = next;
  }
  const small = tf.tidy(() => tf.matMul(tf.matMul(q, cov, true, false), q));
  const { vectors: w, values } = jacobiEigen(small.arraySync() as number[][]);
  small.dispose();
  const qa = q.arraySync() as number[][];
  q.dispose();
  const order = Array.from(values.keys()).sort((a, b) => values[b] - values[a]);
  return {
    vectors: order.map((k) => Float32Array.from({ length: d }, (_, i) => qa[i].reduce((s, qi, j) => s + qi * w[j][k], 0))),
    values: Float32Array.from(order, (k) => Math.max(values[k], 0)),
  };
}

/** Gram-Schmidt (modified, twice for stability) on the columns of a small-width matrix. */
function orthonormalColumns(m: tf.Tensor2D): tf.Tensor2D {
  const [d, r] = m.shape;
  const cols = (m.transpose().arraySync() as number[][]).map((c) => Float64Array.from(c));
  for (let pass = 0; pass < 2; pass++) {
    for (let k = 0; k < r; k++) {
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += cols[k][i] * cols[j][i];
        for (let i = 0; i < d; i++) cols[k][i] -= dot * cols[j][i];
      }
      let norm = 0;
      for (let i = 0; i < d; i++) norm += cols[k][i] * cols[k][i];
      norm = Math.sqrt(norm) || 1;
      for (let i = 0; i < d; i++) cols[k][i] /= norm;
    }
  }
  const flat = new Float32Array(d * r);
  for (let k = 0; k < r; k++) for (let i = 0; i < d; i++) flat[i * r + k] = cols[k][i];
  return tf.tensor2d(flat, [d, r]);
}

/** Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations; vectors are columns. */
function jacobiEigen(a: number[][]): { vectors: number[][]; values: number[] } {
  const n = a.length;
  const m = a.map((row) => row.slice());
  const v: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += m[i][j] * m[i][j];
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(m[p][q]) < 1e-300) continue;
        const theta = (m[q][q] - m[p][p]) / (2 * m[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k][p];
          const mkq = m[k][q];
          m[k][p] = c * mkp - s * mkq;
          m[k][q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p][k];
          const mqk = m[q][k];
          m[p][k] = c * mpk - s * mqk;
          m[q][k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { vectors: v, values: m.map((row, i) => row[i]) };
}

export interface OodFitOptions {
  /** Principal directions kept (default 32). */
  components?: number;
  /** Fraction of the validation split to accept (default 0.95). */
  acceptance?: number;
}

/**
 * Fits the class means and the shared PPCA covariance on training features, then sets the threshold on
 * validation features so that `acceptance` of them pass.
 */
export function fitOodGuard(
  layer: string,
  train: ArrayLike<number>[],
  labels: ArrayLike<number>,
  validation: ArrayLike<number>[],
  opts: OodFitOptions = {},
): OodGuard {
  if (train.length === 0 || validation.length === 0) throw new Error('the out-of-distribution guard needs training and validation features');
  const d = train[0].length;
  const classes = Math.max(...Array.from(labels)) + 1;
  const sums = Array.from({ length: classes }, () => new Float64Array(d));
  const counts = new Array<number>(classes).fill(0);
  train.forEach((x, i) => {
    const c = labels[i];
    counts[c]++;
    for (let j = 0; j < d; j++) sums[c][j] += x[j];
  });
  const means = sums.map((s, c) => Float32Array.from(s, (v) => v / Math.max(1, counts[c])));
  const centred = new Float32Array(train.length * d);
  train.forEach((x, i) => {
    const mean = means[labels[i]];
    for (let j = 0; j < d; j++) centred[i * d + j] = x[j] - mean[j];
  });
  const r = Math.max(1, Math.min(opts.components ?? 32, d - 1, train.length - 1));
  const cov = tf.tidy(() => {
    const x = tf.tensor2d(centred, [train.length, d]);
    return tf.div(tf.matMul(x, x, true, false), train.length) as tf.Tensor2D;
  });
  let trace = 0;
  try {
    trace = tf.tidy(() => tf.sum(tf.mul(cov, tf.eye(d))).dataSync()[0]);
    const { vectors, values } = topEigen(cov, r);
    const explained = values.reduce((s, v) => s + v, 0);
    // A floor keeps a near-constant feature set from dividing by ~0.
    const residualVariance = Math.max((trace - explained) / Math.max(1, d - r), 1e-6 * (trace / d) + 1e-12);
    const variances = values.map((v) => Math.max(v, residualVariance));
    const guard: OodGuard = { layer, means, components: vectors, variances, residualVariance, threshold: Infinity, acceptance: opts.acceptance ?? 0.95 };
    guard.threshold = quantile(validation.map((x) => oodScore(guard, x)), guard.acceptance);
    return guard;
  } finally {
    cov.dispose();
  }
}

/** The guard's numbers as one little-endian float32 file: means, then components, then variances. */
export function encodeOodGuard(g: OodGuard): Uint8Array {
  const d = g.means[0].length;
  const out = new Float32Array((g.means.length + g.components.length) * d + g.variances.length);
  let o = 0;
  for (const row of [...g.means, ...g.components]) {
    out.set(row, o);
    o += d;
  }
  out.set(g.variances, o);
  return new Uint8Array(out.buffer);
}

/** Shape and scalars of a stored guard, as the manifest records them. */
export interface OodGuardHeader {
  layer: string;
  dims: number;
  classes: number;
  components: number;
  residualVariance: number;
  threshold: number;
  acceptance: number;
}

export function decodeOodGuard(h: OodGuardHeader, bytes: Uint8Array): OodGuard {
  const n = (h.classes + h.components) * h.dims + h.components;
  if (bytes.byteLength !== n * 4) throw new Error(`the guard file holds ${bytes.byteLength} bytes, expected ${n * 4} for its recorded shape`);
  const all = new Float32Array(bytes.slice().buffer);
  const row = (k: number) => all.slice(k * h.dims, (k + 1) * h.dims);
  return {
    layer: h.layer,
    means: Array.from({ length: h.classes }, (_, k) => row(k)),
    components: Array.from({ length: h.components }, (_, k) => row(h.classes + k)),
    variances: all.slice((h.classes + h.components) * h.dims),
    residualVariance: h.residualVariance,
    threshold: h.threshold,
    acceptance: h.acceptance,
  };
}

export function oodGuardHeader(g: OodGuard): OodGuardHeader {
  return {
    layer: g.layer,
    dims: g.means[0].length,
    classes: g.means.length,
    components: g.components.length,
    residualVariance: g.residualVariance,
    threshold: g.threshold,
    acceptance: g.acceptance,
  };
}
