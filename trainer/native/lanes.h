// Eight float32 lanes as one value (the GCC / Clang vector extension), for loops the compiler leaves scalar: a
// loop over a fixed chunk of channels is fully unrolled into scalar operations by GCC 12, where these lanes keep
// it in vector registers. Loads and stores are unaligned and may alias the heap's floats. Each lane's arithmetic
// is the scalar operation's, rounded the same (the build does not contract a * b + c), so the bits do not change.
#pragma once

#include <cstring>

namespace zerovar {

typedef float Lanes8 __attribute__((vector_size(32)));

inline Lanes8 Load8(const float* p) {
  Lanes8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void Store8(float* p, Lanes8 v) { std::memcpy(p, &v, sizeof v); }

}  // namespace zerovar
