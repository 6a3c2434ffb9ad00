// What the addon's parts share: the wasm heap as the kernels see it, the thread pool (pool.h), the matrix products
// (gemm.cc) and the kernel tasks (tasks.cc).
#pragma once
#include <cstddef>
#include <cstdint>

#include "pool.h"

namespace zerovar {

// The wasm heap: a Float32Array over the module's whole memory. Addresses are in bytes, as the wasm kernels pass them.
struct Heap {
  float* base;
  size_t length;  // floats
  float* At(double address) const { return base + static_cast<int64_t>(address) / 4; }
  // Whether `floats` floats from byte `address` (a non-negative multiple of 4) lie inside the heap.
  bool Has(double address, int64_t floats) const;
};

// C[M, N] = op(A) op(B), row-major, on the pool (gemm.cc).
void Product(const float* a, const float* b, float* c, int M, int N, int K, bool ta, bool tb);

int TaskCount();
const char* TaskName(int task);
// Runs pieces [0, total) of a task, its `count` numbers at `params`, in `parts` contiguous slices on the pool;
// returns an error (nothing written) or nullptr.
const char* RunTask(const Heap& h, int task, const double* params, int64_t count, int64_t total, int64_t parts);

}  // namespace zerovar
