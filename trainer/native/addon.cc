// The trainer's native kernels, for the wasm backend's heap in Node (a Float32Array over the module's memory, no
// copies): OpenBLAS matrix products (gemm.cc) and the wasm kernels' tasks compiled for this CPU (tasks.cc), on the
// addon's own threads (pool.h). The kernels fall back to XNNPACK's matmul and the wasm routines where it is absent.
#include <node_api.h>
#include <cblas.h>

#include <cstdint>
#include <string>

#include "kernels.h"

namespace zerovar {
namespace {

bool Fail(napi_env env, const char* message) {
  napi_throw_error(env, nullptr, message);
  return false;
}

bool Int(napi_env env, napi_value v, int64_t* out) {
  return napi_get_value_int64(env, v, out) == napi_ok || Fail(env, "gemm: expected integer arguments");
}

// Exactly `n` arguments into argv, else a thrown error `message`.
bool Args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, const char* message) {
  size_t argc = n;
  return (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok && argc == n) || Fail(env, message);
}

// The data and length of `v` if it is a typed array of `type`, else a thrown error `message`.
bool TypedArray(napi_env env, napi_value v, napi_typedarray_type type, void** data, size_t* length, const char* message) {
  bool isTyped = false;
  napi_typedarray_type actual;
  if (napi_is_typedarray(env, v, &isTyped) != napi_ok || !isTyped || napi_get_typedarray_info(env, v, &actual, length, data, nullptr, nullptr) != napi_ok || actual != type)
    return Fail(env, message);
  return true;
}

// sgemm(heap, aOffset, bOffset, cOffset, M, N, K, transA, transB): C[M, N] = op(A) op(B), where op(A) is
// [M, K] (A stored [K, M] when transposed) and op(B) is [K, N] (B stored [N, K] when transposed).
napi_value Sgemm(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!Args(env, info, 9, argv, "gemm: sgemm takes 9 arguments")) return nullptr;
  size_t length = 0;
  void* data = nullptr;
  if (!TypedArray(env, argv[0], napi_float32_array, &data, &length, "gemm: the heap must be a Float32Array")) return nullptr;
  int64_t v[6];
  for (int i = 0; i < 6; i++)
    if (!Int(env, argv[i + 1], &v[i])) return nullptr;
  bool ta = false, tb = false;
  if (napi_get_value_bool(env, argv[7], &ta) != napi_ok || napi_get_value_bool(env, argv[8], &tb) != napi_ok) {
    Fail(env, "gemm: the transpose flags must be booleans");
    return nullptr;
  }
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

// threads(n): how many threads share the following products and tasks.
napi_value Threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1 || n > 64) {
    Fail(env, "gemm: threads takes a count from 1 to 64");
    return nullptr;
  }
  Pool::Get().SetThreads(n);
  return nullptr;
}

// tasks(): the names of the kernel tasks this addon runs, by index (run's `task`).
napi_value Tasks(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_array_with_length(env, TaskCount(), &out);
  for (int i = 0; i < TaskCount(); i++) {
    napi_value name;
    napi_create_string_utf8(env, TaskName(i), NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, out, i, name);
  }
  return out;
}

// run(heap, task, params, total, parts): pieces [0, total) of kernel task `task` (tasks()' index) with its numbers
// in `params` (a Float64Array), in `parts` slices on the pool's threads.
napi_value RunTaskFn(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!Args(env, info, 5, argv, "run takes 5 arguments")) return nullptr;
  size_t length = 0, count = 0;
  void* data = nullptr;
  void* params = nullptr;
  if (!TypedArray(env, argv[0], napi_float32_array, &data, &length, "run: the heap must be a Float32Array") ||
      !TypedArray(env, argv[2], napi_float64_array, &params, &count, "run: the parameters must be a Float64Array"))
    return nullptr;
  int64_t task = -1, total = 0, parts = 1;
  if (!Int(env, argv[1], &task) || !Int(env, argv[3], &total) || !Int(env, argv[4], &parts)) return nullptr;
  if (task < 0 || task >= TaskCount()) {
    Fail(env, "run: no such task");
    return nullptr;
  }
  const Heap heap{static_cast<float*>(data), length};
  if (const char* why = RunTask(heap, static_cast<int>(task), static_cast<const double*>(params), static_cast<int64_t>(count), total, parts)) Fail(env, why);
  return nullptr;
}

// config(): OpenBLAS's build description (version, core, threading), for the logs.
napi_value Config(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &out);
  return out;
}

}  // namespace
}  // namespace zerovar

NAPI_MODULE_INIT() {
  // Threads are the pool's: OpenBLAS's own would change the bits with their count, and would compete with them.
  using namespace zerovar;
  openblas_set_num_threads(1);
  const struct { const char* name; napi_callback fn; } fns[] = {{"sgemm", Sgemm}, {"threads", Threads}, {"config", Config}, {"tasks", Tasks}, {"run", RunTaskFn}};
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}
