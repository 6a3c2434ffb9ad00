// McNemar's exact test for two classifiers scored on the same images: only the images exactly one of them gets
// right carry information, and under "equally accurate" each of those is a fair coin.

/** Two-sided exact p-value from the discordant counts: b right only by the first, c right only by the second. */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  // P(X <= min(b, c)) for X ~ Binomial(n, 1/2), doubled; summed in log space so that large n stays finite.
  const logHalfN = -n * Math.LN2;
  let logTerm = logHalfN; // log(C(n, 0) / 2^n)
  let tail = 0;
  for (let i = 0; i <= Math.min(b, c); i++) {
    tail += Math.exp(logTerm);
    logTerm += Math.log((n - i) / (i + 1));
  }
  return Math.min(1, 2 * tail);
}
