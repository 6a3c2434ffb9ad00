// Single-precision matrix products for the trainer's wasm kernels, computed by the system's OpenBLAS directly on
// the wasm heap: no copy in or out. Row-major throughout, sizes in floats.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace zerovar {
namespace {

// Fixed task sizes: the tasks, and so every result bit, depend on the shapes alone, never on the thread count.
// OpenBLAS's own threading (and any split of one call into thread-sized parts) changes the last bits with the
// count, because a row's sums depend on where it falls in OpenBLAS's blocking.
constexpr int kBandRows = 128;       // rows of C per task, at least
constexpr int kReductionRows = 4096; // terms of the sum per task, where C has too few rows to share out

// Rows of C per task: enough for about a million multiply-adds, since a call on a narrow band of a skinny product
// (a narrow network's 1x1 convs: N and K of 8 to 100) costs more in OpenBLAS's setup than in arithmetic.
int BandRows(int N, int K) {
  const int64_t rows = (int64_t{1} << 20) / std::max<int64_t>(1, static_cast<int64_t>(N) * K);
  return static_cast<int>(std::clamp<int64_t>(rows / kBandRows * kBandRows, kBandRows, 16 * kBandRows));
}

}  // namespace

// Tall C (a conv's forward and input gradient: M = pixels): bands of C's rows, each one single-threaded OpenBLAS
// call. Short C with a long sum (a 1x1 filter gradient: K = pixels): the sum in fixed chunks, each chunk's product
// a task, the partial products then added in chunk order.
void Product(const float* a, const float* b, float* c, int M, int N, int K, bool ta, bool tb) {
  const int lda = ta ? M : K, ldb = tb ? K : N;
  const CBLAS_TRANSPOSE opA = ta ? CblasTrans : CblasNoTrans, opB = tb ? CblasTrans : CblasNoTrans;
  if (M >= 2 * kBandRows || K < 2 * kReductionRows) {
    const int band = BandRows(N, K);
    Pool::Get().Run((M + band - 1) / band, [&](int i) {
      const int m0 = i * band, rows = std::min(M - m0, band);
      cblas_sgemm(CblasRowMajor, opA, opB, rows, N, K, 1.0f, a + (ta ? m0 : static_cast<int64_t>(m0) * K), lda, b, ldb, 0.0f,
                  c + static_cast<int64_t>(m0) * N, N);
    });
    return;
  }
  const int chunks = (K + kReductionRows - 1) / kReductionRows;
  const int64_t size = static_cast<int64_t>(M) * N;
  std::vector<float> partial(static_cast<size_t>(chunks) * size);
  Pool::Get().Run(chunks, [&](int j) {
    const int64_t k0 = static_cast<int64_t>(j) * kReductionRows;
    const int terms = std::min<int64_t>(K - k0, kReductionRows);
    cblas_sgemm(CblasRowMajor, opA, opB, M, N, terms, 1.0f, a + (ta ? k0 * M : k0), lda, b + (tb ? k0 : k0 * N), ldb, 0.0f,
                partial.data() + j * size, N);
  });
  for (int64_t e = 0; e < size; e++) {
    float sum = partial[e];
    for (int j = 1; j < chunks; j++) sum += partial[j * size + e];
    c[e] = sum;
  }
}

}  // namespace zerovar
