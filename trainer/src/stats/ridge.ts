// Ridge regression toward a prior, in float64: the least-squares refit of a dense layer after pruning
// (train/head-refit.ts). Browser-safe, no tensors: the systems are at most a few thousand wide.

/**
 * Solves G X = B for symmetric positive definite G (m x m, row-major) and B (m x p, row-major) by Cholesky
 * (G = L L^T), in place of neither. Throws when G is not positive definite (a zero or negative pivot).
 */
export function choleskySolve(G: Float64Array, m: number, B: Float64Array, p: number): Float64Array {
  if (G.length !== m * m) throw new Error(`choleskySolve: G has ${G.length} entries, expected ${m} x ${m}`);
  if (B.length !== m * p) throw new Error(`choleskySolve: B has ${B.length} entries, expected ${m} x ${p}`);
  const L = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let s = G[i * m + j];
      for (let k = 0; k < j; k++) s -= L[i * m + k] * L[j * m + k];
      if (i === j) {
        if (!(s > 0)) throw new Error(`choleskySolve: the matrix is not positive definite (pivot ${i}: ${s})`);
        L[i * m + i] = Math.sqrt(s);
      } else {
        L[i * m + j] = s / L[j * m + j];
      }
    }
  }
  // L Y = B (forward), then L^T X = Y (backward); rows of p right-hand sides at once.
  const X = Float64Array.from(B);
  for (let i = 0; i < m; i++) {
    const xi = X.subarray(i * p, (i + 1) * p);
    for (let k = 0; k < i; k++) {
      const l = L[i * m + k];
      if (l === 0) continue;
      const xk = X.subarray(k * p, (k + 1) * p);
      for (let c = 0; c < p; c++) xi[c] -= l * xk[c];
    }
    const d = L[i * m + i];
    for (let c = 0; c < p; c++) xi[c] /= d;
  }
  for (let i = m - 1; i >= 0; i--) {
    const xi = X.subarray(i * p, (i + 1) * p);
    for (let k = i + 1; k < m; k++) {
      const l = L[k * m + i];
      if (l === 0) continue;
      const xk = X.subarray(k * p, (k + 1) * p);
      for (let c = 0; c < p; c++) xi[c] -= l * xk[c];
    }
    const d = L[i * m + i];
    for (let c = 0; c < p; c++) xi[c] /= d;
  }
  return X;
}

/**
 * argmin_W ||Xc W - Zc||^2 + lambda ||W - W0||^2 from the centred Gram matrix G = Xc^T Xc (m x m) and cross
 * products C = Xc^T Zc (m x p): W = (G + lambda I)^-1 (C + lambda W0). Shrinking toward W0 (the weights the
 * mean fold left) rather than toward zero keeps a layer whose inputs barely moved where it was.
 */
export function ridgeToward(G: Float64Array, C: Float64Array, W0: ArrayLike<number>, m: number, p: number, lambda: number): Float64Array {
  if (!(lambda > 0)) throw new Error(`ridgeToward: lambda must be > 0, got ${lambda}`);
  const A = Float64Array.from(G);
  for (let i = 0; i < m; i++) A[i * m + i] += lambda;
  const B = new Float64Array(m * p);
  for (let i = 0; i < m * p; i++) B[i] = C[i] + lambda * W0[i];
  return choleskySolve(A, m, B, p);
}
