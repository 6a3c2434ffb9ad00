// The wasm kernels' tasks (trainer/src/runtime/wasm/tasks.ts) compiled for this CPU: the same pieces, parameters
// and outputs, each piece computed whole by one thread in a fixed order, so the bits do not depend on how many
// threads share a task. Byte addresses and sizes arrive as a Float64Array; every operand a task would touch is
// checked against the heap before any piece runs. Compiled without contraction of a * b + c into one rounding, so
// the BatchNorm's affine map gives the bits the wasm routines give, and the ReLU mask its gradient recomputes is
// the forward's.
#include "kernels.h"
#include "lanes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

namespace zerovar {
namespace {

// ConvInfo's sizes, strides, dilations and leading padding, in tap_runs.ts's order.
struct Geometry {
  int64_t batch, H, W, oh, ow, fh, fw, sh, sw, dh, dw, padTop, padLeft;
};
constexpr int kGeometryLength = 13;

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The filter taps' runs along output rows [y0, y1): tap_runs.ts's forEachTapRun for one image, in the same order.
struct TapRun {
  int64_t y, tap, iy, x0, x1, ix0;
};

template <typename Visit>
void ForEachTapRun(const Geometry& g, int64_t y0, int64_t y1, const Visit& visit) {
  for (int64_t y = y0; y < y1; y++) {
    for (int64_t i = 0; i < g.fh; i++) {
      const int64_t iy = y * g.sh - g.padTop + i * g.dh;
      if (iy < 0 || iy >= g.H) continue;
      for (int64_t j = 0; j < g.fw; j++) {
        const int64_t offset = j * g.dw - g.padLeft;
        // Output columns whose input column x * stride + offset lies in [0, W).
        const int64_t x0 = std::max<int64_t>(0, -FloorDiv(offset, g.sw));
        const int64_t x1 = std::min(g.ow, FloorDiv(g.W - 1 - offset, g.sw) + 1);
        if (x1 > x0) visit(TapRun{y, i * g.fw + j, iy, x0, x1, x0 * g.sw + offset});
      }
    }
  }
}

// Calls fixed(std::integral_constant<int, W>{}, c0) over channels [0, c) in chunks of 64, then one chunk of 16 to 56
// (in eights), and rest(c0, width) for what is left (fewer than 16 channels, or not in eights). A loop over a fixed width keeps its running sums in registers; over a width known only at run
// time, in memory, where each addition waits for the last one's store.
constexpr int64_t kRegisterFilterChannels = 192; // the depthwise filter gradient holds its sums in registers up to this
template <typename Fixed, typename Rest>
void ForChannelChunks(int64_t c, const Fixed& fixed, const Rest& rest) {
  int64_t c0 = 0;
  const auto take = [&](auto width) {
    fixed(width, c0);
    c0 += decltype(width)::value;
  };
  while (c - c0 >= 64) take(std::integral_constant<int, 64>{});
  switch (c - c0) {
    case 16: take(std::integral_constant<int, 16>{}); break;
    case 24: take(std::integral_constant<int, 24>{}); break;
    case 32: take(std::integral_constant<int, 32>{}); break;
    case 40: take(std::integral_constant<int, 40>{}); break;
    case 48: take(std::integral_constant<int, 48>{}); break;
    case 56: take(std::integral_constant<int, 56>{}); break;
    default: break;
  }
  if (c0 < c) rest(c0, c - c0);
}

// out[k * outStep + ch] += in[k * inStep + ch] * f[ch] for k < count, ch < c: a depthwise tap's run. In chunks of
// 16 or 8 channels where c allows, the chunk's filter taps and each step's values held in vector lanes (lanes.h:
// GCC left this loop scalar, at about 11 cycles a step for 16 channels), else one loop over the channels. Each
// value's additions come in the same order.
template <int W>
void TapRunChunks(float* out, int64_t outStep, const float* in, int64_t inStep, const float* f, int64_t count, int64_t c) {
  constexpr int V = W / 8;
  for (int64_t c0 = 0; c0 < c; c0 += W) {
    Lanes8 tap[V];
    for (int v = 0; v < V; v++) tap[v] = Load8(f + c0 + 8 * v);
    float* o = out + c0;
    const float* x = in + c0;
    for (int64_t k = 0; k < count; k++, o += outStep, x += inStep)
      for (int v = 0; v < V; v++) Store8(o + 8 * v, Load8(o + 8 * v) + Load8(x + 8 * v) * tap[v]);
  }
}

void TapRunProduct(float* out, int64_t outStep, const float* in, int64_t inStep, const float* f, int64_t count, int64_t c) {
  if (c % 16 == 0) return TapRunChunks<16>(out, outStep, in, inStep, f, count, c);
  if (c % 8 == 0) return TapRunChunks<8>(out, outStep, in, inStep, f, count, c);
  float* __restrict o = out;
  const float* __restrict x = in;
  for (int64_t k = 0; k < count; k++, o += outStep, x += inStep)
    for (int64_t ch = 0; ch < c; ch++) o[ch] += x[ch] * f[ch];
}

struct Task {
  const char* name;
  int params;
  // Checks the parameters for pieces [0, total); returns an error or nullptr.
  const char* (*check)(const Heap& h, const double* p, int64_t count, int64_t total);
  void (*run)(const Heap& h, const double* p, int64_t lo, int64_t hi);
};

bool IsCount(double v) { return v >= 0 && v <= 9.0e15 && std::floor(v) == v; }
int64_t I(double v) { return static_cast<int64_t>(v); }

// A geometry whose runs stay inside the image (every size positive, strides and dilations at least 1).
bool ReadGeometry(const double* p, Geometry* g) {
  for (int k = 0; k < kGeometryLength; k++)
    if (!IsCount(p[k]) && k < 11) return false;
  *g = Geometry{I(p[0]), I(p[1]), I(p[2]), I(p[3]), I(p[4]), I(p[5]), I(p[6]), I(p[7]), I(p[8]), I(p[9]), I(p[10]), I(p[11]), I(p[12])};
  if (std::floor(p[11]) != p[11] || std::floor(p[12]) != p[12]) return false;
  return g->batch > 0 && g->H > 0 && g->W > 0 && g->oh > 0 && g->ow > 0 && g->fh > 0 && g->fw > 0 && g->sh > 0 && g->sw > 0 && g->dh > 0 && g->dw > 0 &&
         g->H < (1 << 20) && g->W < (1 << 20) && g->oh < (1 << 20) && g->ow < (1 << 20) && g->fh < 64 && g->fw < 64 && std::fabs(p[11]) < 1024 && std::fabs(p[12]) < 1024 &&
         g->sh < 1024 && g->sw < 1024 && g->dh < 1024 && g->dw < 1024;
}

// What a depthwise task's operands and pieces are: the three operands in parameter order, then its pieces (images
// for a filter gradient's slots, else rows of the input or the output), so one check serves the three tasks.
enum Extent { kInput, kOutput, kFilter, kSlots };
struct DepthwiseLayout {
  const char* name;
  Extent operands[3];
  Extent pieces;
};

// Checks a depthwise task [a, b, d, channels, ...geometry] against its layout.
const char* CheckDepthwise(const DepthwiseLayout& l, const Heap& h, const double* p, int64_t total) {
  static thread_local std::string error;
  const auto fail = [&](const char* why) { return (error = std::string(l.name) + ": " + why).c_str(); };
  Geometry g;
  if (!ReadGeometry(p + 4, &g) || !IsCount(p[3]) || p[3] < 1) return fail("bad geometry");
  const int64_t c = I(p[3]), taps = g.fh * g.fw * c;
  const int64_t pieces = l.pieces == kInput ? g.batch * g.H : l.pieces == kOutput ? g.batch * g.oh : g.batch;
  if (total > pieces) return fail("more pieces than the task has");
  const auto floats = [&](Extent e) {
    return e == kInput ? g.batch * g.H * g.W * c : e == kOutput ? g.batch * g.oh * g.ow * c : e == kFilter ? taps : total * taps;
  };
  for (int k = 0; k < 3; k++)
    if (!h.Has(p[k], floats(l.operands[k]))) return fail("operands out of the heap's bounds");
  return nullptr;
}

// depthwiseFilterImages [slots, x, dy, channels, ...geometry]: per image n, slot n (taps x channels) = x * dy summed
// along every tap run, in float32, in the runs' order.
const char* CheckDepthwiseFilter(const Heap& h, const double* p, int64_t, int64_t total) {
  return CheckDepthwise({"depthwiseFilterImages", {kSlots, kInput, kOutput}, kSlots}, h, p, total);
}

void DepthwiseFilter(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  Geometry g;
  ReadGeometry(p + 4, &g);
  const int64_t c = I(p[3]), size = g.fh * g.fw * c;
  for (int64_t n = lo; n < hi; n++) {
    float* __restrict slot = h.At(p[0]) + n * size;
    std::fill(slot, slot + size, 0.0f);
    const float* xImage = h.At(p[1]) + n * g.H * g.W * c;
    const float* yImage = h.At(p[2]) + n * g.oh * g.ow * c;
    ForEachTapRun(g, 0, g.oh, [&](const TapRun& r) {
      float* acc = slot + r.tap * c;
      const float* x0 = xImage + (r.iy * g.W + r.ix0) * c;
      const float* y0 = yImage + (r.y * g.ow + r.x0) * c;
      const int64_t xStep = g.sw * c, count = r.x1 - r.x0;
      // Each channel's sum runs along the run in order, whichever loop holds it (many channels: a long vector loop
      // hides the additions' latency by itself).
      const auto fixed = [&](auto width, int64_t c0) {
        constexpr int W = decltype(width)::value;
        float sum[W];
        for (int i = 0; i < W; i++) sum[i] = acc[c0 + i];
        const float *x = x0 + c0, *y = y0 + c0;
        for (int64_t k = 0; k < count; k++, x += xStep, y += c)
          for (int i = 0; i < W; i++) sum[i] += x[i] * y[i];
        for (int i = 0; i < W; i++) acc[c0 + i] = sum[i];
      };
      const auto rest = [&](int64_t c0, int64_t width) {
        float* __restrict a = acc + c0;
        const float* __restrict x = x0 + c0;
        const float* __restrict y = y0 + c0;
        for (int64_t k = 0; k < count; k++, x += xStep, y += c)
          for (int64_t ch = 0; ch < width; ch++) a[ch] += x[ch] * y[ch];
      };
      if (c <= kRegisterFilterChannels) ForChannelChunks(c, fixed, rest);
      else rest(0, c);
    });
  }
}

// depthwiseInputRows [dx, dy, filter, channels, ...geometry]: input rows [lo, hi) of the batch (row n * H + iy),
// zeroed, then dy * filter added along every tap run that lands in them, in the runs' order.
const char* CheckDepthwiseInput(const Heap& h, const double* p, int64_t, int64_t total) {
  return CheckDepthwise({"depthwiseInputRows", {kInput, kOutput, kFilter}, kInput}, h, p, total);
}

// Calls pass(std::integral_constant<int, U>{}, c0) over channels [0, c), c a multiple of 8: blocks of 32 channels
// (U = 4 lanes of 8), then one of 8 to 24, the lanes a depthwise pass holds per column.
template <typename Pass>
void ForLaneBlocks(int64_t c, const Pass& pass) {
  int64_t c0 = 0;
  for (; c - c0 >= 32; c0 += 32) pass(std::integral_constant<int, 4>{}, c0);
  if (c - c0 == 24) pass(std::integral_constant<int, 3>{}, c0);
  if (c - c0 == 16) pass(std::integral_constant<int, 2>{}, c0);
  if (c - c0 == 8) pass(std::integral_constant<int, 1>{}, c0);
}

// The filter's taps along one axis that land inside [0, size) from position `base` (tap k at base + k * step):
// [first, end), empty where none does.
inline void TapRange(int64_t base, int64_t step, int64_t taps, int64_t size, int64_t* first, int64_t* end) {
  *first = base >= 0 ? 0 : (-base + step - 1) / step;
  *end = base > size - 1 ? 0 : std::min(taps, (size - 1 - base) / step + 1);
  if (*end < *first) *end = *first;
}

// X consecutive input-gradient values of a stride-1 depthwise conv (columns ix0 .. ix0 + X - 1 of input row iy;
// X > 1 only where every filter column reaches dy), channels [c0, c0 + 8U): each the sum of dy * filter over the
// taps that reach it, in the runs' order (output rows ascending, so filter rows descending, then filter columns
// ascending), held in vector lanes and stored once. `dyImage` and `w` point at channel c0.
template <int U, int X>
inline void DepthwiseInputs(float* dx, const float* dyImage, const float* w, const Geometry& g, int64_t c, int64_t iy, int64_t ix0) {
  Lanes8 acc[X][U] = {};
  for (int64_t i = g.fh - 1; i >= 0; i--) {
    const int64_t y = iy + g.padTop - i * g.dh;
    if (y < 0 || y >= g.oh) continue;
    const float* dyRow = dyImage + y * g.ow * c;
    for (int64_t j = 0; j < g.fw; j++) {
      const int64_t x = ix0 + g.padLeft - j * g.dw;
      if (X == 1 && (x < 0 || x >= g.ow)) continue;
      Lanes8 f[U];
      for (int u = 0; u < U; u++) f[u] = Load8(w + (i * g.fw + j) * c + 8 * u);
      const float* d = dyRow + x * c;
      for (int k = 0; k < X; k++)
        for (int u = 0; u < U; u++) acc[k][u] = acc[k][u] + Load8(d + k * c + 8 * u) * f[u];
    }
  }
  for (int k = 0; k < X; k++)
    for (int u = 0; u < U; u++) Store8(dx + k * c + 8 * u, acc[k][u]);
}

// One input row's gradient of a stride-1 depthwise conv, channels [c0, c0 + 8U), every column: X columns at a time
// where every filter column reaches dy, one at a time at the edges.
template <int U>
void DepthwiseInputRow(float* dx, const float* dyImage, const float* w, const Geometry& g, int64_t c, int64_t c0, int64_t iy) {
  constexpr int X = U >= 3 ? 2 : 4;
  // 0 <= ix + padLeft - j * dw <= ow - 1 for every j.
  const int64_t first = std::min(g.W, std::max<int64_t>(0, (g.fw - 1) * g.dw - g.padLeft));
  const int64_t end = std::max(first, std::min(g.W, g.ow - g.padLeft));
  int64_t ix = 0;
  for (; ix < first; ix++) DepthwiseInputs<U, 1>(dx + ix * c + c0, dyImage + c0, w + c0, g, c, iy, ix);
  for (; ix + X <= end; ix += X) DepthwiseInputs<U, X>(dx + ix * c + c0, dyImage + c0, w + c0, g, c, iy, ix);
  for (; ix < g.W; ix++) DepthwiseInputs<U, 1>(dx + ix * c + c0, dyImage + c0, w + c0, g, c, iy, ix);
}

void DepthwiseInput(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  Geometry g;
  ReadGeometry(p + 4, &g);
  const int64_t c = I(p[3]), rowSize = g.W * c;
  float* dx = h.At(p[0]);
  const float* dy = h.At(p[1]);
  const float* w = h.At(p[2]);
  if (c % 8 == 0 && g.sh == 1 && g.sw == 1) {
    // Each value gathered from the taps that reach it and stored once, in the runs' order (the same bits as below),
    // where the runs read and wrote every value once per tap. At stride 2 a tap reaches every other column, and
    // finding which costs more than the runs do.
    for (int64_t row = lo; row < hi; row++) {
      const float* dyImage = dy + (row / g.H) * g.oh * g.ow * c;
      float* d = dx + row * rowSize;
      ForLaneBlocks(c, [&](auto lanes, int64_t c0) { DepthwiseInputRow<decltype(lanes)::value>(d, dyImage, w, g, c, c0, row % g.H); });
    }
    return;
  }
  std::fill(dx + lo * rowSize, dx + hi * rowSize, 0.0f);
  for (int64_t n = lo / g.H; n <= (hi - 1) / g.H; n++) {
    ForEachTapRun(g, 0, g.oh, [&](const TapRun& r) {
      const int64_t row = n * g.H + r.iy;
      if (row < lo || row >= hi) return;
      TapRunProduct(dx + row * rowSize + r.ix0 * c, g.sw * c, dy + ((n * g.oh + r.y) * g.ow + r.x0) * c, c, w + r.tap * c, r.x1 - r.x0, c);
    });
  }
}

// depthwiseForwardRows [out, x, filter, channels, ...geometry]: output rows [lo, hi) of the batch (row n * oh + y)
// = the sum over the filter's taps of x * filter, tap by tap in the runs' order.
const char* CheckDepthwiseForward(const Heap& h, const double* p, int64_t, int64_t total) {
  return CheckDepthwise({"depthwiseForwardRows", {kOutput, kInput, kFilter}, kOutput}, h, p, total);
}

// X consecutive outputs (columns x0 .. x0 + X - 1 of one output row), channels [c0, c0 + 8U): each the sum over the
// filter rows [i0, i1) and columns [j0, j1), tap by tap in the runs' order, held in vector lanes and stored once.
// `xTap` is the input under tap (i0, j0) of column x0, channel c0.
template <int U, int X>
inline void DepthwiseOutputs(float* out, const float* xTap, const float* w, const Geometry& g, int64_t c, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  Lanes8 acc[X][U] = {};
  for (int64_t i = i0; i < i1; i++, xTap += g.dh * g.W * c) {
    for (int64_t j = j0; j < j1; j++) {
      Lanes8 f[U];
      for (int u = 0; u < U; u++) f[u] = Load8(w + (i * g.fw + j) * c + 8 * u);
      const float* xp = xTap + (j - j0) * g.dw * c;
      for (int k = 0; k < X; k++)
        for (int u = 0; u < U; u++) acc[k][u] = acc[k][u] + Load8(xp + k * g.sw * c + 8 * u) * f[u];
    }
  }
  for (int k = 0; k < X; k++)
    for (int u = 0; u < U; u++) Store8(out + k * c + 8 * u, acc[k][u]);
}

// One output row's channels [c0, c0 + 8U) for every column: X columns at a time where every filter column lies
// inside the image, one at a time (with its own columns) at the edges.
template <int U>
void DepthwiseOutputRow(float* out, const float* xImage, const float* w, const Geometry& g, int64_t c, int64_t c0, int64_t y) {
  constexpr int X = U >= 3 ? 2 : 4; // the sums of X columns x U lanes in registers
  int64_t i0, i1;
  TapRange(y * g.sh - g.padTop, g.dh, g.fh, g.H, &i0, &i1);
  if (i0 == i1) {
    for (int64_t x = 0; x < g.ow; x++) DepthwiseOutputs<U, 1>(out + x * c + c0, xImage, w + c0, g, c, 0, 0, 0, 0);
    return;
  }
  const float* xRows = xImage + (y * g.sh - g.padTop + i0 * g.dh) * g.W * c + c0;
  const auto one = [&](int64_t x) {
    int64_t j0, j1;
    const int64_t base = x * g.sw - g.padLeft;
    TapRange(base, g.dw, g.fw, g.W, &j0, &j1);
    DepthwiseOutputs<U, 1>(out + x * c + c0, xRows + std::max<int64_t>(0, base + j0 * g.dw) * c, w + c0, g, c, i0, i1, j0, j1);
  };
  // Columns whose every tap is inside: x * sw - padLeft >= 0 and x * sw - padLeft + (fw - 1) * dw <= W - 1.
  const int64_t inFirst = std::min(g.ow, (g.padLeft + g.sw - 1 > 0 ? (g.padLeft + g.sw - 1) / g.sw : 0));
  const int64_t lastIn = g.W - 1 - (g.fw - 1) * g.dw + g.padLeft;
  const int64_t inEnd = std::max(inFirst, std::min(g.ow, lastIn < 0 ? 0 : lastIn / g.sw + 1));
  int64_t x = 0;
  for (; x < inFirst; x++) one(x);
  for (; x + X <= inEnd; x += X) DepthwiseOutputs<U, X>(out + x * c + c0, xRows + (x * g.sw - g.padLeft) * c, w + c0, g, c, i0, i1, 0, g.fw);
  for (; x < g.ow; x++) one(x);
}

void DepthwiseForward(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  Geometry g;
  ReadGeometry(p + 4, &g);
  const int64_t c = I(p[3]), rowSize = g.ow * c;
  float* out = h.At(p[0]);
  const float* x = h.At(p[1]);
  const float* w = h.At(p[2]);
  if (c % 8 == 0) {
    // Each output's taps summed in registers and stored once, in the runs' order (the same bits as below), where
    // the runs read and wrote every output once per tap.
    for (int64_t row = lo; row < hi; row++) {
      const float* xImage = x + (row / g.oh) * g.H * g.W * c;
      float* o = out + row * rowSize;
      ForLaneBlocks(c, [&](auto lanes, int64_t c0) { DepthwiseOutputRow<decltype(lanes)::value>(o, xImage, w, g, c, c0, row % g.oh); });
    }
    return;
  }
  std::fill(out + lo * rowSize, out + hi * rowSize, 0.0f);
  for (int64_t row = lo; row < hi; row++) {
    const int64_t n = row / g.oh;
    ForEachTapRun(g, row % g.oh, row % g.oh + 1, [&](const TapRun& r) {
      TapRunProduct(out + row * rowSize + r.x0 * c, c, x + ((n * g.H + r.iy) * g.W + r.ix0) * c, g.sw * c, w + r.tap * c, r.x1 - r.x0, c);
    });
  }
}

// stemImages [slots, x, dy, cin, cout, ...geometry]: per image n, slot n (taps x cin x cout) = x^T dy along every tap
// run: a k x k conv's filter gradient over that image.
const char* CheckStem(const Heap& h, const double* p, int64_t, int64_t total) {
  Geometry g;
  if (!ReadGeometry(p + 5, &g) || !IsCount(p[3]) || !IsCount(p[4]) || p[3] < 1 || p[4] < 1) return "stemImages: bad geometry";
  const int64_t cin = I(p[3]), cout = I(p[4]);
  if (total > g.batch) return "stemImages: more pieces than images";
  if (!h.Has(p[0], total * g.fh * g.fw * cin * cout) || !h.Has(p[1], g.batch * g.H * g.W * cin) || !h.Has(p[2], g.batch * g.oh * g.ow * cout))
    return "stemImages: operands out of the heap's bounds";
  return nullptr;
}

// One tap run of the stem's filter gradient with A input and 8 * V output channels: the tap's A x 8V sums held in
// vector lanes along the run, where the plain loop read and wrote them back at every step (each sum still runs
// along the run in order, so the bits are the plain loop's).
template <int A, int V>
void StemRegisterRun(float* tapOut, const float* x, int64_t xStep, const float* y, int64_t count) {
  Lanes8 acc[A][V];
  for (int a = 0; a < A; a++)
    for (int v = 0; v < V; v++) acc[a][v] = Load8(tapOut + a * 8 * V + 8 * v);
  for (int64_t k = 0; k < count; k++, x += xStep, y += 8 * V)
    for (int v = 0; v < V; v++) {
      const Lanes8 yv = Load8(y + 8 * v);
      for (int a = 0; a < A; a++) acc[a][v] = acc[a][v] + x[a] * yv;
    }
  for (int a = 0; a < A; a++)
    for (int v = 0; v < V; v++) Store8(tapOut + a * 8 * V + 8 * v, acc[a][v]);
}

using StemRunFn = void (*)(float*, const float*, int64_t, const float*, int64_t);

// The register run for an RGB stem with 8 to 32 output channels (MobileNets'), else none.
StemRunFn StemRegisterRunFor(int64_t cin, int64_t cout) {
  if (cin != 3 || cout % 8 != 0) return nullptr;
  switch (cout / 8) {
    case 1: return StemRegisterRun<3, 1>;
    case 2: return StemRegisterRun<3, 2>;
    case 3: return StemRegisterRun<3, 3>;
    case 4: return StemRegisterRun<3, 4>;
    default: return nullptr;
  }
}

void Stem(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  Geometry g;
  ReadGeometry(p + 5, &g);
  const int64_t cin = I(p[3]), cout = I(p[4]), size = g.fh * g.fw * cin * cout;
  const StemRunFn registerRun = StemRegisterRunFor(cin, cout);
  for (int64_t n = lo; n < hi; n++) {
    float* slot = h.At(p[0]) + n * size;
    std::fill(slot, slot + size, 0.0f);
    const float* xImage = h.At(p[1]) + n * g.H * g.W * cin;
    const float* yImage = h.At(p[2]) + n * g.oh * g.ow * cout;
    ForEachTapRun(g, 0, g.oh, [&](const TapRun& r) {
      float* tapOut = slot + r.tap * cin * cout;
      const float* x = xImage + (r.iy * g.W + r.ix0) * cin;
      const float* y = yImage + (r.y * g.ow + r.x0) * cout;
      if (registerRun) return registerRun(tapOut, x, g.sw * cin, y, r.x1 - r.x0);
      for (int64_t k = 0; k < r.x1 - r.x0; k++, x += g.sw * cin, y += cout)
        for (int64_t a = 0; a < cin; a++) {
          float* __restrict out = tapOut + a * cout;
          const float* __restrict yr = y;
          const float xa = x[a];
          for (int64_t q = 0; q < cout; q++) out[q] += xa * yr[q];
        }
    });
  }
}

// scaleShiftRows [out, x, a, b, channels] and scaleShiftClipRows [out, x, a, b, channels, lo, hi]: rows [lo, hi) of
// out = x * a + b (then clipped to [lo, hi]), a and b per channel.
const char* CheckRows(const Heap& h, const double* p, int64_t, int64_t total) {
  if (!IsCount(p[4]) || p[4] < 1) return "scaleShift: bad channel count";
  const int64_t c = I(p[4]);
  if (!h.Has(p[0], total * c) || !h.Has(p[1], total * c) || !h.Has(p[2], c) || !h.Has(p[3], c)) return "scaleShift: operands out of the heap's bounds";
  return nullptr;
}

void ScaleShift(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  const int64_t c = I(p[4]);
  const float* __restrict a = h.At(p[2]);
  const float* __restrict b = h.At(p[3]);
  for (int64_t r = lo; r < hi; r++) {
    float* __restrict out = h.At(p[0]) + r * c;
    const float* __restrict x = h.At(p[1]) + r * c;
    for (int64_t ch = 0; ch < c; ch++) out[ch] = x[ch] * a[ch] + b[ch];
  }
}

void ScaleShiftClip(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  const int64_t c = I(p[4]);
  const float* __restrict a = h.At(p[2]);
  const float* __restrict b = h.At(p[3]);
  const float min = static_cast<float>(p[5]), max = static_cast<float>(p[6]);
  for (int64_t r = lo; r < hi; r++) {
    float* __restrict out = h.At(p[0]) + r * c;
    const float* __restrict x = h.At(p[1]) + r * c;
    for (int64_t ch = 0; ch < c; ch++) {
      const float z = x[ch] * a[ch] + b[ch];
      out[ch] = std::min(std::max(z, min), max);
    }
  }
}

// scaleShiftClipGradBlocks [dx, dz, x, a, b, slots, rows, channels, block, lo, hi]: per block k of rows, those rows of
// dx = g * a with g = dz where lo <= x * a + b <= hi (else 0), and slot k (2 x channels) = the sums of g and g * x.
const char* CheckClipGrad(const Heap& h, const double* p, int64_t, int64_t total) {
  if (!IsCount(p[6]) || !IsCount(p[7]) || !IsCount(p[8]) || p[7] < 1 || p[8] < 1) return "scaleShiftClipGradBlocks: bad sizes";
  const int64_t rows = I(p[6]), c = I(p[7]), block = I(p[8]);
  if (total > (rows + block - 1) / block) return "scaleShiftClipGradBlocks: more pieces than blocks";
  if (!h.Has(p[0], rows * c) || !h.Has(p[1], rows * c) || !h.Has(p[2], rows * c) || !h.Has(p[3], c) || !h.Has(p[4], c) || !h.Has(p[5], total * 2 * c))
    return "scaleShiftClipGradBlocks: operands out of the heap's bounds";
  return nullptr;
}

// One value's g: dz where the BatchNorm's output x * a + b lay in [min, max], else 0.
inline float MaskedGrad(float x, float dz, float a, float b, float min, float max) {
  const float z = x * a + b;
  return ((z >= min) & (z <= max)) ? dz : 0.0f;
}

// One row of ClipGrad, apart so that the compiler sees the operands cannot overlap (and vectorizes it).
void ClipGradRow(float* __restrict dx, const float* __restrict dz, const float* __restrict x, const float* __restrict a, const float* __restrict b,
                 float* __restrict sumG, float* __restrict sumGX, int64_t c, float min, float max) {
  for (int64_t ch = 0; ch < c; ch++) {
    const float g = MaskedGrad(x[ch], dz[ch], a[ch], b[ch], min, max);
    dx[ch] = g * a[ch];
    sumG[ch] += g;
    sumGX[ch] += g * x[ch];
  }
}

// The same for `rows` rows of channels [0, W) (rows c floats apart), the sums held in vector lanes across the rows:
// each channel's rows still summed in order, so the bits are ClipGradRow's, where summing into memory row by row
// waited on the last row's store (3-6x slower at 16 to 48 channels). Wider than 32 channels, in halves: the sums,
// scales and offsets of 32 channels fill the vector registers.
template <int W>
void ClipGradColumns(float* __restrict dx, const float* __restrict dz, const float* __restrict x, const float* __restrict a, const float* __restrict b,
                     float* __restrict sumG, float* __restrict sumGX, int64_t rows, int64_t c, float min, float max) {
  if constexpr (W > 32) {
    ClipGradColumns<32>(dx, dz, x, a, b, sumG, sumGX, rows, c, min, max);
    ClipGradColumns<W - 32>(dx + 32, dz + 32, x + 32, a + 32, b + 32, sumG + 32, sumGX + 32, rows, c, min, max);
  } else {
    constexpr int V = W / 8;
    Lanes8 sg[V], sgx[V], av[V], bv[V];
    for (int v = 0; v < V; v++) sg[v] = Load8(sumG + 8 * v), sgx[v] = Load8(sumGX + 8 * v), av[v] = Load8(a + 8 * v), bv[v] = Load8(b + 8 * v);
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * c, *dr = dz + r * c;
      float* o = dx + r * c;
      for (int v = 0; v < V; v++) {
        const Lanes8 xv = Load8(xr + 8 * v), z = xv * av[v] + bv[v];
        // MaskedGrad: dz where min <= z <= max, else +0 (a NaN z fails both).
        const Lanes8 g = ((z >= min) & (z <= max)) ? Load8(dr + 8 * v) : Lanes8{};
        Store8(o + 8 * v, g * av[v]);
        sg[v] = sg[v] + g;
        sgx[v] = sgx[v] + g * xv;
      }
    }
    for (int v = 0; v < V; v++) Store8(sumG + 8 * v, sg[v]), Store8(sumGX + 8 * v, sgx[v]);
  }
}

void ClipGrad(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  const int64_t rows = I(p[6]), c = I(p[7]), block = I(p[8]);
  const float min = static_cast<float>(p[9]), max = static_cast<float>(p[10]);
  for (int64_t k = lo; k < hi; k++) {
    float* sums = h.At(p[5]) + k * 2 * c;
    std::fill(sums, sums + 2 * c, 0.0f);
    const int64_t r0 = k * block, n = std::min(rows, r0 + block) - r0;
    float* dx = h.At(p[0]) + r0 * c;
    const float *dz = h.At(p[1]) + r0 * c, *x = h.At(p[2]) + r0 * c, *a = h.At(p[3]), *b = h.At(p[4]);
    ForChannelChunks(
        c,
        [&](auto width, int64_t c0) {
          ClipGradColumns<decltype(width)::value>(dx + c0, dz + c0, x + c0, a + c0, b + c0, sums + c0, sums + c + c0, n, c, min, max);
        },
        [&](int64_t c0, int64_t width) {
          for (int64_t r = 0; r < n; r++) ClipGradRow(dx + r * c + c0, dz + r * c + c0, x + r * c + c0, a + c0, b + c0, sums + c0, sums + c + c0, width, min, max);
        });
  }
}

// columnBlocks [slots, a, b, bStep, rows, channels, block]: per block k of rows, slot k (channels) = the per-channel
// sum of a * b over those rows (b's rows bStep bytes apart: 0 for one row used by all).
const char* CheckColumns(const Heap& h, const double* p, int64_t, int64_t total) {
  if (!IsCount(p[3]) || !IsCount(p[4]) || !IsCount(p[5]) || !IsCount(p[6]) || p[5] < 1 || p[6] < 1 || I(p[3]) % 4 != 0) return "columnBlocks: bad sizes";
  const int64_t bStep = I(p[3]) / 4, rows = I(p[4]), c = I(p[5]), block = I(p[6]);
  if (total > (rows + block - 1) / block) return "columnBlocks: more pieces than blocks";
  if (!h.Has(p[0], total * c) || !h.Has(p[1], rows * c) || !h.Has(p[2], std::max<int64_t>(rows - 1, 0) * bStep + c)) return "columnBlocks: operands out of the heap's bounds";
  return nullptr;
}

void Columns(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  const int64_t bStep = I(p[3]) / 4, rows = I(p[4]), c = I(p[5]), block = I(p[6]);
  for (int64_t k = lo; k < hi; k++) {
    float* __restrict slot = h.At(p[0]) + k * c;
    std::fill(slot, slot + c, 0.0f);
    for (int64_t r = k * block; r < std::min(rows, (k + 1) * block); r++) {
      const float* __restrict a = h.At(p[1]) + r * c;
      const float* __restrict b = h.At(p[2]) + r * bStep;
      for (int64_t ch = 0; ch < c; ch++) slot[ch] += a[ch] * b[ch];
    }
  }
}

// padRows [out, x, value, d, inner, inLen, outLen, before, then (inDim, outDim, before) for each dim < d]: output
// rows [lo, hi) of a constant padding, as tasks.ts's padRows: the input row copied between runs of `value`, or a
// row of `value` where it lies in an outer dimension's padding.
const char* CheckPad(const Heap& h, const double* p, int64_t count, int64_t total) {
  for (int k = 3; k < 8; k++)
    if (!IsCount(p[k])) return "padRows: bad sizes";
  const int64_t d = I(p[3]), inner = I(p[4]), inLen = I(p[5]), outLen = I(p[6]), before = I(p[7]);
  if (d > 4 || count < 8 + 3 * d || before + inLen > outLen) return "padRows: bad sizes";
  int64_t inRows = 1, outRows = 1;
  for (int64_t i = 0; i < d; i++) {
    const double* dim = p + 8 + 3 * i;
    if (!IsCount(dim[0]) || !IsCount(dim[1]) || !IsCount(dim[2]) || dim[2] + dim[0] > dim[1]) return "padRows: bad sizes";
    inRows *= I(dim[0]);
    outRows *= I(dim[1]);
  }
  if (total > outRows) return "padRows: more pieces than output rows";
  if (!h.Has(p[0], outRows * outLen * inner) || !h.Has(p[1], inRows * inLen * inner)) return "padRows: operands out of the heap's bounds";
  return nullptr;
}

void Pad(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  const int64_t d = I(p[3]), inner = I(p[4]), inLen = I(p[5]), outLen = I(p[6]), before = I(p[7]);
  const float value = static_cast<float>(p[2]);
  const int64_t outRow = outLen * inner, inRow = inLen * inner, head = before * inner;
  for (int64_t r = lo; r < hi; r++) {
    float* o = h.At(p[0]) + r * outRow;
    int64_t rest = r, src = 0, stride = 1;
    bool inside = true;
    for (int64_t i = d - 1; i >= 0 && inside; i--) {
      const int64_t inDim = I(p[8 + 3 * i]), outDim = I(p[9 + 3 * i]), b = I(p[10 + 3 * i]);
      const int64_t c = rest % outDim;
      rest /= outDim;
      inside = c >= b && c - b < inDim;
      src += (c - b) * stride;
      stride *= inDim;
    }
    if (!inside) {
      std::fill(o, o + outRow, value);
      continue;
    }
    std::fill(o, o + head, value);
    std::memcpy(o + head, h.At(p[1]) + src * inRow, static_cast<size_t>(inRow) * sizeof(float));
    std::fill(o + head + inRow, o + outRow, value);
  }
}

// adamBlocks [value, m, v, g, newValue, newM, newV, count, block, beta1, 1 - beta1, beta2, 1 - beta2,
// 1 - beta1^t, 1 - beta2^t, epsilon, -rate]: per block k of `block` values, tfjs's Adam update (AdamOptimizer's
// applyGradients) op by op in float32, each product, sum, quotient and root rounded as its own kernel rounds it,
// so the bits are the fourteen ops'; one pass where those ops were fourteen kernel calls per variable.
const char* CheckAdam(const Heap& h, const double* p, int64_t, int64_t total) {
  if (!IsCount(p[7]) || !IsCount(p[8]) || p[8] < 1) return "adamBlocks: bad sizes";
  const int64_t count = I(p[7]), block = I(p[8]);
  if (total > (count + block - 1) / block) return "adamBlocks: more pieces than blocks";
  for (int k = 0; k < 7; k++)
    if (!h.Has(p[k], count)) return "adamBlocks: operands out of the heap's bounds";
  return nullptr;
}

// Values [0, n) of the update, apart so that the compiler sees the outputs (new tensors) cannot overlap the inputs
// and vectorizes the loop: each lane's operations, sqrt and division included, rounded as the scalar ones.
void AdamRun(const float* __restrict value, const float* __restrict m, const float* __restrict v, const float* __restrict g, float* __restrict outValue,
             float* __restrict outM, float* __restrict outV, int64_t n, const float (&k)[8]) {
  const float b1 = k[0], ob1 = k[1], b2 = k[2], ob2 = k[3], oab1 = k[4], oab2 = k[5], eps = k[6], rate = k[7];
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float mNew = m[i] * b1 + gi * ob1;
    const float vNew = v[i] * b2 + (gi * gi) * ob2;
    const float step = (mNew / oab1) / (std::sqrt(vNew / oab2) + eps);
    outM[i] = mNew;
    outV[i] = vNew;
    outValue[i] = step * rate + value[i];
  }
}

void Adam(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  const int64_t count = I(p[7]), block = I(p[8]);
  float k[8];
  for (int i = 0; i < 8; i++) k[i] = static_cast<float>(p[9 + i]);
  const int64_t i0 = lo * block, n = std::min(count, hi * block) - i0;
  AdamRun(h.At(p[0]) + i0, h.At(p[1]) + i0, h.At(p[2]) + i0, h.At(p[3]) + i0, h.At(p[4]) + i0, h.At(p[5]) + i0, h.At(p[6]) + i0, n, k);
}

// clipMaskQuads [out, x, dy, lo, hi]: groups of four [lo, hi) of out = lo <= x <= hi ? dy : 0.
const char* CheckClipMask(const Heap& h, const double* p, int64_t, int64_t total) {
  if (!h.Has(p[0], 4 * total) || !h.Has(p[1], 4 * total) || !h.Has(p[2], 4 * total)) return "clipMaskQuads: operands out of the heap's bounds";
  return nullptr;
}

void ClipMask(const Heap& h, const double* p, int64_t lo, int64_t hi) {
  float* __restrict out = h.At(p[0]);
  const float* __restrict x = h.At(p[1]);
  const float* __restrict dy = h.At(p[2]);
  const float min = static_cast<float>(p[3]), max = static_cast<float>(p[4]);
  for (int64_t i = 4 * lo; i < 4 * hi; i++) {
    const float d = dy[i];
    out[i] = ((x[i] >= min) & (x[i] <= max)) ? d : 0.0f;
  }
}

const Task kTasks[] = {
    {"depthwiseFilterImages", 4 + kGeometryLength, CheckDepthwiseFilter, DepthwiseFilter},
    {"depthwiseInputRows", 4 + kGeometryLength, CheckDepthwiseInput, DepthwiseInput},
    {"depthwiseForwardRows", 4 + kGeometryLength, CheckDepthwiseForward, DepthwiseForward},
    {"stemImages", 5 + kGeometryLength, CheckStem, Stem},
    {"scaleShiftRows", 5, CheckRows, ScaleShift},
    {"scaleShiftClipRows", 7, CheckRows, ScaleShiftClip},
    {"scaleShiftClipGradBlocks", 11, CheckClipGrad, ClipGrad},
    {"columnBlocks", 7, CheckColumns, Columns},
    {"clipMaskQuads", 5, CheckClipMask, ClipMask},
    {"padRows", 8, CheckPad, Pad},
    {"adamBlocks", 17, CheckAdam, Adam},
};
constexpr int kTaskCount = sizeof(kTasks) / sizeof(kTasks[0]);

}  // namespace

bool Heap::Has(double address, int64_t floats) const {
  return IsCount(address) && I(address) % 4 == 0 && floats >= 0 && I(address) / 4 + floats <= static_cast<int64_t>(length);
}

int TaskCount() { return kTaskCount; }
const char* TaskName(int task) { return kTasks[task].name; }

const char* RunTask(const Heap& h, int task, const double* p, int64_t count, int64_t total, int64_t parts) {
  const Task& t = kTasks[task];
  if (total < 0) return "task: negative piece count";
  if (count < t.params) return "task: too few parameters";
  if (const char* why = t.check(h, p, count, total)) return why;
  if (total == 0) return nullptr;
  // Contiguous slices, as even as whole pieces allow: each piece's outputs are the same whoever computes them.
  parts = std::max<int64_t>(1, std::min(parts, total));
  Pool::Get().Run(static_cast<int>(parts), [&](int i) {
    const int64_t lo = i * total / parts, hi = (i + 1) * total / parts;
    if (hi > lo) t.run(h, p, lo, hi);
  });
  return nullptr;
}

}  // namespace zerovar
