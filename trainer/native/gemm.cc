// Single-precision matrix products for the trainer's wasm kernels, computed by the system's OpenBLAS directly on
// the wasm heap (a Float32Array over the module's memory): no copy in or out. Node only; the kernels fall back to
// XNNPACK's matmul when this addon is absent. Row-major throughout, offsets and sizes in floats.
#include <node_api.h>
#include <cblas.h>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

int threadCount = 1;

// Fixed task sizes: the tasks, and so every result bit, depend on the shapes alone, never on the thread count.
// OpenBLAS's own threading (and any split of one call into thread-sized parts) changes the last bits with the
// count, because a row's sums depend on where it falls in OpenBLAS's blocking.
constexpr int kBandRows = 128;       // rows of C per task
constexpr int kReductionRows = 4096; // terms of the sum per task, where C has too few rows to share out

// Runs task(0..count-1) on up to threadCount threads (the caller's included), each task exactly once.
template <typename Task>
void RunTasks(int count, const Task& task) {
  const int threads = std::min(threadCount, count);
  if (threads <= 1) {
    for (int i = 0; i < count; i++) task(i);
    return;
  }
  std::atomic<int> next{0};
  auto worker = [&] {
    for (int i; (i = next.fetch_add(1)) < count;) task(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; t++) pool.emplace_back(worker);
  worker();
  for (auto& w : pool) w.join();
}

// C[M, N] = op(A) op(B), row-major. Tall C (a conv's forward and input gradient: M = pixels): bands of C's rows,
// each one single-threaded OpenBLAS call. Short C with a long sum (a 1x1 filter gradient: K = pixels): the sum in
// fixed chunks, each chunk's product a task, the partial products then added in chunk order.
void Product(const float* a, const float* b, float* c, int M, int N, int K, bool ta, bool tb) {
  const int lda = ta ? M : K, ldb = tb ? K : N;
  const CBLAS_TRANSPOSE opA = ta ? CblasTrans : CblasNoTrans, opB = tb ? CblasTrans : CblasNoTrans;
  if (M >= 2 * kBandRows || K < 2 * kReductionRows) {
    RunTasks((M + kBandRows - 1) / kBandRows, [&](int i) {
      const int m0 = i * kBandRows, rows = std::min(M - m0, kBandRows);
      cblas_sgemm(CblasRowMajor, opA, opB, rows, N, K, 1.0f, a + (ta ? m0 : static_cast<int64_t>(m0) * K), lda, b, ldb, 0.0f,
                  c + static_cast<int64_t>(m0) * N, N);
    });
    return;
  }
  const int chunks = (K + kReductionRows - 1) / kReductionRows;
  const int64_t size = static_cast<int64_t>(M) * N;
  std::vector<float> partial(static_cast<size_t>(chunks) * size);
  RunTasks(chunks, [&](int j) {
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

bool Fail(napi_env env, const char* message) {
  napi_throw_error(env, nullptr, message);
  return false;
}

bool Int(napi_env env, napi_value v, int64_t* out) {
  return napi_get_value_int64(env, v, out) == napi_ok || Fail(env, "gemm: expected integer arguments");
}

// sgemm(heap, aOffset, bOffset, cOffset, M, N, K, transA, transB): C[M, N] = op(A) op(B), where op(A) is
// [M, K] (A stored [K, M] when transposed) and op(B) is [K, N] (B stored [N, K] when transposed).
napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 9) {
    Fail(env, "gemm: sgemm takes 9 arguments");
    return nullptr;
  }
  bool isTyped = false;
  napi_is_typedarray(env, argv[0], &isTyped);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (!isTyped || napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
    Fail(env, "gemm: the heap must be a Float32Array");
    return nullptr;
  }
  int64_t v[6];
  for (int i = 0; i < 6; i++)
    if (!Int(env, argv[i + 1], &v[i])) return nullptr;
  bool ta = false, tb = false;
  napi_get_value_bool(env, argv[7], &ta);
  napi_get_value_bool(env, argv[8], &tb);
  const int64_t aOff = v[0], bOff = v[1], cOff = v[2], m = v[3], n = v[4], k = v[5];
  const int64_t len = static_cast<int64_t>(length);
  // A wrong offset would write anywhere in the heap: every operand must lie inside it.
  if (m <= 0 || n <= 0 || k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || aOff < 0 || bOff < 0 || cOff < 0 ||
      aOff + m * k > len || bOff + k * n > len || cOff + m * n > len) {
    Fail(env, "gemm: operands out of the heap's bounds");
    return nullptr;
  }
  float* f = static_cast<float*>(data);
  Product(f + aOff, f + bOff, f + cOff, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), ta, tb);
  return nullptr;
}

// threads(n): how many threads share the following products.
napi_value Threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1 || n > 64) {
    Fail(env, "gemm: threads takes a count from 1 to 64");
    return nullptr;
  }
  threadCount = n;
  return nullptr;
}

// config(): OpenBLAS's build description (version, core, threading), for the logs.
napi_value Config(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &out);
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  // Threads are this file's: OpenBLAS's own would change the bits with their count, and would compete with them.
  openblas_set_num_threads(1);
  const struct { const char* name; napi_callback fn; } fns[] = {{"sgemm", Sgemm}, {"threads", Threads}, {"config", Config}};
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}
