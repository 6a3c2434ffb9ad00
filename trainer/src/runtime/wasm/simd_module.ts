// The hand-assembled wasm SIMD module the kernels run on the wasm backend's own heap (no copies), four floats at a
// time. Each routine's bytes follow its listing in the WebAssembly text format (folded: an instruction's operands
// are the expressions nested in it, so the bytes are the listing read inside out); the listings together are the
// whole module, which a text-format assembler turns into exactly these bytes (the single-threaded build's; the
// threaded build imports its shared memory as `(memory 0 65536 shared)`). All pointers, steps and offsets are in
// bytes; loads and stores are unaligned (align=1), as tensors on the heap are only 4-byte aligned. A unit test
// (wasm-simd-listing) assembles the listed functions and compares them with these bytes.
//
//   (module
//     (type (func (param i32 i32 i32 i32 i32 i32 i32 i32)))   ;; 0: fma
//     (type (func (param i32 i32 i32 i32 f32 f32)))           ;; 1: clipMask
//     (type (func (param i32 i32 i32 i32 i32 i32)))           ;; 2: scaleShift
//     (type (func (param i32 i32 i32 i32 i32 i32 i32 i32)))   ;; 3: outerAcc
//     (type (func (param i32 i32 i32 i32 i32 i32 i32)))       ;; 4: diagAcc
//     (type (func (param i32 i32 i32 i32 i32 i32 f32 f32)))   ;; 5: scaleShiftClip
//     (type (func (param i32 i32 i32 i32 i32 i32 i32 i32 f32 f32)))   ;; 6: scaleShiftClipBack
//     (import "env" "memory" (memory 0))
//     ...the seven functions below, in this order...
//     (export "fma" (func 0)) (export "clipMask" (func 1)) (export "scaleShift" (func 2))
//     (export "outerAcc" (func 3)) (export "diagAcc" (func 4)) (export "scaleShiftClip" (func 5))
//     (export "scaleShiftClipBack" (func 6)))

// Opcodes and short sequences the bodies are written with.
const get = (i: number) => [0x20, i]; // local.get
const set = (i: number) => [0x21, i]; // local.set
const i32 = (v: number) => [0x41, v]; // i32.const, small non-negative constants only (< 64)
const add = 0x6a; // i32.add
const v128Load = [0xfd, 0x00, 0x00, 0x00]; // v128.load align=1
const v128Store = [0xfd, 0x0b, 0x00, 0x00]; // v128.store align=1
const f32Load = [0x2a, 0x02, 0x00]; // f32.load
const f32Store = [0x38, 0x02, 0x00]; // f32.store
const load = (offset: number) => [0xfd, 0x00, 0x00, ...uleb(offset)]; // v128.load offset=... align=1
const store = (offset: number) => [0xfd, 0x0b, 0x00, ...uleb(offset)]; // v128.store offset=... align=1
const mulAdd = [0xfd, 0xe6, 0x01, 0xfd, 0xe4, 0x01]; // f32x4.mul then f32x4.add

// fma(out, outStep, a, aStep, b, bStep, rows, C): for each of `rows` rows, out[c] += a[c] * b[c] for c < C, then
// every pointer moves on by its step. A step of 0 keeps a pointer in place (an accumulator row, a filter row).
//
//   (func $fma (type 0) (param $out i32) (param $outStep i32) (param $a i32) (param $aStep i32)
//       (param $b i32) (param $bStep i32) (param $rows i32) (param $C i32)
//     (local $c i32) (local $cEnd4 i32) (local $cEnd i32)
//     (local.set $cEnd (i32.shl (local.get $C) (i32.const 2)))
//     (local.set $cEnd4 (i32.shl (i32.and (local.get $C) (i32.const -4)) (i32.const 2)))
//     (block (loop                                                   ;; rows
//       (br_if 1 (i32.eqz (local.get $rows)))
//       (local.set $c (i32.const 0))
//       (block (loop                                                 ;; four floats at a time
//         (br_if 1 (i32.ge_u (local.get $c) (local.get $cEnd4)))
//         (v128.store align=1 (i32.add (local.get $out) (local.get $c))
//           (f32x4.add (v128.load align=1 (i32.add (local.get $out) (local.get $c)))
//             (f32x4.mul (v128.load align=1 (i32.add (local.get $a) (local.get $c)))
//                        (v128.load align=1 (i32.add (local.get $b) (local.get $c))))))
//         (local.set $c (i32.add (local.get $c) (i32.const 16)))
//         (br 0)))
//       (block (loop                                                 ;; scalar tail
//         (br_if 1 (i32.ge_u (local.get $c) (local.get $cEnd)))
//         (f32.store (i32.add (local.get $out) (local.get $c))
//           (f32.add (f32.load (i32.add (local.get $out) (local.get $c)))
//             (f32.mul (f32.load (i32.add (local.get $a) (local.get $c)))
//                      (f32.load (i32.add (local.get $b) (local.get $c))))))
//         (local.set $c (i32.add (local.get $c) (i32.const 4)))
//         (br 0)))
//       (local.set $out (i32.add (local.get $out) (local.get $outStep)))
//       (local.set $a (i32.add (local.get $a) (local.get $aStep)))
//       (local.set $b (i32.add (local.get $b) (local.get $bStep)))
//       (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
//       (br 0))))
const ptr = (p: number) => [...get(p), ...get(8), add]; // base + c
const fmaBody = [
  0x01, 0x03, 0x7f, // locals 8..10: i32 c, cEnd4, cEnd (byte offsets)
  ...get(7), ...i32(2), 0x74, ...set(10), // cEnd = C << 2
  ...get(7), 0x41, 0x7c, 0x71, ...i32(2), 0x74, ...set(9), // cEnd4 = (C & -4) << 2
  0x02, 0x40, 0x03, 0x40, // block, loop (rows)
  ...get(6), 0x45, 0x0d, 0x01, // if rows == 0 break
  ...i32(0), ...set(8),
  0x02, 0x40, 0x03, 0x40, // vector loop
  ...get(8), ...get(9), 0x4f, 0x0d, 0x01, // c >= cEnd4: leave
  ...ptr(0), ...ptr(0), ...v128Load, ...ptr(2), ...v128Load, ...ptr(4), ...v128Load,
  0xfd, 0xe6, 0x01, 0xfd, 0xe4, 0x01, ...v128Store, // out = out + a * b (f32x4.mul, f32x4.add)
  ...get(8), ...i32(16), add, ...set(8),
  0x0c, 0x00, 0x0b, 0x0b,
  0x02, 0x40, 0x03, 0x40, // scalar tail
  ...get(8), ...get(10), 0x4f, 0x0d, 0x01,
  ...ptr(0), ...ptr(0), ...f32Load, ...ptr(2), ...f32Load, ...ptr(4), ...f32Load, 0x94, 0x92, ...f32Store,
  ...get(8), ...i32(4), add, ...set(8),
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(0), ...get(1), add, ...set(0),
  ...get(2), ...get(3), add, ...set(2),
  ...get(4), ...get(5), add, ...set(4),
  ...get(6), ...i32(1), 0x6b, ...set(6),
  0x0c, 0x00, 0x0b, 0x0b, // next row; end loop, end block
  0x0b, // end function
];

// clipMask(out, x, dy, bytes, lo, hi): out = lo <= x <= hi ? dy : 0 over `bytes` (a multiple of 16; the caller
// finishes the tail), the ReLU6 gradient in one pass: the comparisons give all-ones lanes where true, so a
// bitwise and with dy keeps it there and zeroes it elsewhere (a NaN x compares false: 0). Written flat where the
// bytes hold a nop (0x01) after each one-byte SIMD compare and `and` opcode: harmless, and kept so the module's
// bytes stay the ones every result so far was computed with.
//
//   (func $clipMask (type 1) (param $out i32) (param $x i32) (param $dy i32) (param $bytes i32)
//       (param $lo f32) (param $hi f32)
//     (local $i i32) (local $lo4 v128) (local $hi4 v128)
//     (local.set $lo4 (f32x4.splat (local.get $lo)))
//     (local.set $hi4 (f32x4.splat (local.get $hi)))
//     (block (loop
//       (br_if 1 (i32.ge_u (local.get $i) (local.get $bytes)))
//       (i32.add (local.get $out) (local.get $i))                 ;; where the result goes
//       (v128.load align=1 (i32.add (local.get $dy) (local.get $i)))
//       (f32x4.ge (v128.load align=1 (i32.add (local.get $x) (local.get $i))) (local.get $lo4))
//       nop
//       (f32x4.le (v128.load align=1 (i32.add (local.get $x) (local.get $i))) (local.get $hi4))
//       nop
//       v128.and nop                                               ;; (x >= lo) & (x <= hi)
//       v128.and nop                                               ;; dy & that
//       v128.store align=1
//       (local.set $i (i32.add (local.get $i) (i32.const 16)))
//       (br 0))))
const at = (p: number) => [...get(p), ...get(6), add]; // base + offset
const clipBody = [
  0x02, 0x01, 0x7f, 0x02, 0x7b, // locals 6: i32 offset; 7, 8: v128 lo, hi
  ...get(4), 0xfd, 0x13, ...set(7), // f32x4.splat
  ...get(5), 0xfd, 0x13, ...set(8),
  0x02, 0x40, 0x03, 0x40,
  ...get(6), ...get(3), 0x4f, 0x0d, 0x01, // offset >= bytes: leave
  ...at(0),
  ...at(2), ...v128Load,
  ...at(1), ...v128Load, ...get(7), 0xfd, 0x46, 0x01, // f32x4.ge, nop
  ...at(1), ...v128Load, ...get(8), 0xfd, 0x45, 0x01, // f32x4.le, nop
  0xfd, 0x4e, 0x01, 0xfd, 0x4e, 0x01, ...v128Store, // v128.and, nop, v128.and, nop: dy & (x >= lo) & (x <= hi)
  ...get(6), ...i32(16), add, ...set(6),
  0x0c, 0x00, 0x0b, 0x0b,
  0x0b,
];

// scaleShift(out, x, a, b, rows, C): out[r][c] = x[r][c] * a[c] + b[c], a per-channel affine map (inference-mode
// BatchNorm) with a scalar tail per row.
//
//   (func $scaleShift (type 2) (param $out i32) (param $x i32) (param $a i32) (param $b i32)
//       (param $rows i32) (param $C i32)
//     (local $c i32) (local $cEnd4 i32) (local $cEnd i32)
//     (local.set $cEnd (i32.shl (local.get $C) (i32.const 2)))
//     (local.set $cEnd4 (i32.shl (i32.and (local.get $C) (i32.const -4)) (i32.const 2)))
//     (block (loop                                                   ;; rows
//       (br_if 1 (i32.eqz (local.get $rows)))
//       (local.set $c (i32.const 0))
//       (block (loop                                                 ;; four channels at a time
//         (br_if 1 (i32.ge_u (local.get $c) (local.get $cEnd4)))
//         (v128.store align=1 (i32.add (local.get $out) (local.get $c))
//           (f32x4.add
//             (f32x4.mul (v128.load align=1 (i32.add (local.get $x) (local.get $c)))
//                        (v128.load align=1 (i32.add (local.get $a) (local.get $c))))
//             (v128.load align=1 (i32.add (local.get $b) (local.get $c)))))
//         (local.set $c (i32.add (local.get $c) (i32.const 16)))
//         (br 0)))
//       (block (loop                                                 ;; scalar tail
//         (br_if 1 (i32.ge_u (local.get $c) (local.get $cEnd)))
//         (f32.store (i32.add (local.get $out) (local.get $c))
//           (f32.add
//             (f32.mul (f32.load (i32.add (local.get $x) (local.get $c)))
//                      (f32.load (i32.add (local.get $a) (local.get $c))))
//             (f32.load (i32.add (local.get $b) (local.get $c)))))
//         (local.set $c (i32.add (local.get $c) (i32.const 4)))
//         (br 0)))
//       (local.set $out (i32.add (local.get $out) (local.get $cEnd)))     ;; next row of out and x
//       (local.set $x (i32.add (local.get $x) (local.get $cEnd)))
//       (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
//       (br 0))))
const col = (p: number) => [...get(p), ...get(6), add];
const scaleShiftBody = [
  0x01, 0x03, 0x7f,
  ...get(5), ...i32(2), 0x74, ...set(8), // cEnd = C << 2
  ...get(5), 0x41, 0x7c, 0x71, ...i32(2), 0x74, ...set(7), // cEnd4 = (C & -4) << 2
  0x02, 0x40, 0x03, 0x40, // rows
  ...get(4), 0x45, 0x0d, 0x01,
  ...i32(0), ...set(6),
  0x02, 0x40, 0x03, 0x40, // vector loop
  ...get(6), ...get(7), 0x4f, 0x0d, 0x01,
  ...col(0), ...col(1), ...v128Load, ...col(2), ...v128Load, 0xfd, 0xe6, 0x01, ...col(3), ...v128Load, 0xfd, 0xe4, 0x01, ...v128Store,
  ...get(6), ...i32(16), add, ...set(6),
  0x0c, 0x00, 0x0b, 0x0b,
  0x02, 0x40, 0x03, 0x40, // scalar tail
  ...get(6), ...get(8), 0x4f, 0x0d, 0x01,
  ...col(0), ...col(1), ...f32Load, ...col(2), ...f32Load, 0x94, ...col(3), ...f32Load, 0x92, ...f32Store,
  ...get(6), ...i32(4), add, ...set(6),
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(0), ...get(8), add, ...set(0), // next row of out and x
  ...get(1), ...get(8), add, ...set(1),
  ...get(4), ...i32(1), 0x6b, ...set(4),
  0x0c, 0x00, 0x0b, 0x0b,
  0x0b,
];

// outerAcc(out, x, xStride, y, yStride, rows, P, Q): out[p][q] += sum over rows of x[r][p] * y[r][q] (Q a multiple
// of 4; x and y rows `xStride` / `yStride` bytes apart): x^T y for a tall x and y, with no transposed or packed
// copy. Sixteen columns of out stay in four registers while x[r][p], broadcast, multiplies y's row; then four.
//
//   (func $outerAcc (type 3) (param $out i32) (param $x i32) (param $xStride i32) (param $y i32)
//       (param $yStride i32) (param $rows i32) (param $P i32) (param $Q i32)
//     (local $p i32) (local $q i32) (local $r i32) (local $xp i32) (local $yp i32) (local $op i32)
//     (local $outRow i32) (local $qEnd16 i32)
//     (local $s v128) (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
//     (local.set $outRow (i32.shl (local.get $Q) (i32.const 2)))
//     (local.set $qEnd16 (i32.shl (i32.and (local.get $Q) (i32.const -16)) (i32.const 2)))
//     (block (loop                                         ;; rows p of out ($p starts at 0, as every local)
//       (br_if 1 (i32.ge_u (local.get $p) (local.get $P)))
//       (local.set $q (i32.const 0))
//       (block (loop                                       ;; sixteen columns at a time
//         (br_if 1 (i32.ge_u (local.get $q) (local.get $qEnd16)))
//         (local.set $op (i32.add (i32.add (local.get $out) (i32.mul (local.get $p) (local.get $outRow)))
//                                 (local.get $q)))
//         (local.set $acc0 (v128.load align=1 (local.get $op)))
//         (local.set $acc1 (v128.load offset=16 align=1 (local.get $op)))
//         (local.set $acc2 (v128.load offset=32 align=1 (local.get $op)))
//         (local.set $acc3 (v128.load offset=48 align=1 (local.get $op)))
//         (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $p) (i32.const 2))))
//         (local.set $yp (i32.add (local.get $y) (local.get $q)))
//         (local.set $r (local.get $rows))
//         (block (loop                                     ;; down the rows of x and y
//           (br_if 1 (i32.eqz (local.get $r)))
//           (local.set $s (f32x4.splat (f32.load (local.get $xp))))
//           (local.set $acc0 (f32x4.add (local.get $acc0)
//             (f32x4.mul (local.get $s) (v128.load align=1 (local.get $yp)))))
//           (local.set $acc1 (f32x4.add (local.get $acc1)
//             (f32x4.mul (local.get $s) (v128.load offset=16 align=1 (local.get $yp)))))
//           (local.set $acc2 (f32x4.add (local.get $acc2)
//             (f32x4.mul (local.get $s) (v128.load offset=32 align=1 (local.get $yp)))))
//           (local.set $acc3 (f32x4.add (local.get $acc3)
//             (f32x4.mul (local.get $s) (v128.load offset=48 align=1 (local.get $yp)))))
//           (local.set $xp (i32.add (local.get $xp) (local.get $xStride)))
//           (local.set $yp (i32.add (local.get $yp) (local.get $yStride)))
//           (local.set $r (i32.sub (local.get $r) (i32.const 1)))
//           (br 0)))
//         (v128.store align=1 (local.get $op) (local.get $acc0))
//         (v128.store offset=16 align=1 (local.get $op) (local.get $acc1))
//         (v128.store offset=32 align=1 (local.get $op) (local.get $acc2))
//         (v128.store offset=48 align=1 (local.get $op) (local.get $acc3))
//         (local.set $q (i32.add (local.get $q) (i32.const 64)))
//         (br 0)))
//       (block (loop                                       ;; then four columns at a time
//         (br_if 1 (i32.ge_u (local.get $q) (local.get $outRow)))
//         (local.set $op (i32.add (i32.add (local.get $out) (i32.mul (local.get $p) (local.get $outRow)))
//                                 (local.get $q)))
//         (local.set $acc0 (v128.load align=1 (local.get $op)))
//         (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $p) (i32.const 2))))
//         (local.set $yp (i32.add (local.get $y) (local.get $q)))
//         (local.set $r (local.get $rows))
//         (block (loop
//           (br_if 1 (i32.eqz (local.get $r)))
//           (local.set $acc0 (f32x4.add (local.get $acc0)
//             (f32x4.mul (f32x4.splat (f32.load (local.get $xp))) (v128.load align=1 (local.get $yp)))))
//           (local.set $xp (i32.add (local.get $xp) (local.get $xStride)))
//           (local.set $yp (i32.add (local.get $yp) (local.get $yStride)))
//           (local.set $r (i32.sub (local.get $r) (i32.const 1)))
//           (br 0)))
//         (v128.store align=1 (local.get $op) (local.get $acc0))
//         (local.set $q (i32.add (local.get $q) (i32.const 16)))
//         (br 0)))
//       (local.set $p (i32.add (local.get $p) (i32.const 1)))
//       (br 0))))
// params 0 out, 1 x, 2 xStride, 3 y, 4 yStride, 5 rows, 6 P, 7 Q (strides in bytes); i32 locals 8 p, 9 q (bytes),
// 10 r, 11 xp, 12 yp, 13 op, 14 outRow (bytes), 15 qEnd16 (bytes); v128 locals 16 s, 17..20 accumulators
const setOut = [...get(0), ...get(8), ...get(14), 0x6c, add, ...get(9), add, ...set(13)]; // op = out + p*outRow + q
const startRows = [
  ...get(1), ...get(8), ...i32(2), 0x74, add, ...set(11), // xp = x + 4p
  ...get(3), ...get(9), add, ...set(12), // yp = y + q
  ...get(5), ...set(10), // r = rows
];
const nextRow = [...get(11), ...get(2), add, ...set(11), ...get(12), ...get(4), add, ...set(12), ...get(10), ...i32(1), 0x6b, ...set(10)];
const splatX = [...get(11), ...f32Load, 0xfd, 0x13];
const outerBody = [
  0x02, 0x08, 0x7f, 0x05, 0x7b,
  ...get(7), ...i32(2), 0x74, ...set(14),
  ...get(7), 0x41, 0x70, 0x71, ...i32(2), 0x74, ...set(15), // (Q & -16) << 2
  0x02, 0x40, 0x03, 0x40, // p loop
  ...get(8), ...get(6), 0x4f, 0x0d, 0x01,
  ...i32(0), ...set(9),
  0x02, 0x40, 0x03, 0x40, // sixteen columns at a time
  ...get(9), ...get(15), 0x4f, 0x0d, 0x01,
  ...setOut,
  ...get(13), ...load(0), ...set(17), ...get(13), ...load(16), ...set(18), ...get(13), ...load(32), ...set(19), ...get(13), ...load(48), ...set(20),
  ...startRows,
  0x02, 0x40, 0x03, 0x40,
  ...get(10), 0x45, 0x0d, 0x01,
  ...splatX, ...set(16),
  ...get(17), ...get(16), ...get(12), ...load(0), ...mulAdd, ...set(17),
  ...get(18), ...get(16), ...get(12), ...load(16), ...mulAdd, ...set(18),
  ...get(19), ...get(16), ...get(12), ...load(32), ...mulAdd, ...set(19),
  ...get(20), ...get(16), ...get(12), ...load(48), ...mulAdd, ...set(20),
  ...nextRow,
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(13), ...get(17), ...store(0), ...get(13), ...get(18), ...store(16), ...get(13), ...get(19), ...store(32), ...get(13), ...get(20), ...store(48),
  ...get(9), 0x41, 0xc0, 0x00, add, ...set(9), // q += 64 bytes
  0x0c, 0x00, 0x0b, 0x0b,
  0x02, 0x40, 0x03, 0x40, // then four columns at a time
  ...get(9), ...get(14), 0x4f, 0x0d, 0x01,
  ...setOut,
  ...get(13), ...load(0), ...set(17),
  ...startRows,
  0x02, 0x40, 0x03, 0x40,
  ...get(10), 0x45, 0x0d, 0x01,
  ...get(17), ...splatX, ...get(12), ...load(0), ...mulAdd, ...set(17),
  ...nextRow,
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(13), ...get(17), ...store(0),
  ...get(9), ...i32(16), add, ...set(9),
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(8), ...i32(1), add, ...set(8),
  0x0c, 0x00, 0x0b, 0x0b,
  0x0b,
];

// diagAcc(out, x, xStride, y, yStride, rows, C): out[c] += sum over rows of x[r][c] * y[r][c] (C a multiple of 4),
// sixteen channels at a time in registers, then four: the depthwise filter gradient along an image row.
//
//   (func $diagAcc (type 4) (param $out i32) (param $x i32) (param $xStride i32) (param $y i32)
//       (param $yStride i32) (param $rows i32) (param $C i32)
//     (local $q i32) (local $r i32) (local $xp i32) (local $yp i32) (local $op i32) (local $qEnd16 i32)
//     (local $cBytes i32)
//     (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
//     (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
//     (local.set $qEnd16 (i32.shl (i32.and (local.get $C) (i32.const -16)) (i32.const 2)))
//     (block (loop                                         ;; sixteen channels at a time ($q starts at 0)
//       (br_if 1 (i32.ge_u (local.get $q) (local.get $qEnd16)))
//       (local.set $op (i32.add (local.get $out) (local.get $q)))
//       (local.set $acc0 (v128.load align=1 (local.get $op)))
//       (local.set $acc1 (v128.load offset=16 align=1 (local.get $op)))
//       (local.set $acc2 (v128.load offset=32 align=1 (local.get $op)))
//       (local.set $acc3 (v128.load offset=48 align=1 (local.get $op)))
//       (local.set $xp (i32.add (local.get $x) (local.get $q)))
//       (local.set $yp (i32.add (local.get $y) (local.get $q)))
//       (local.set $r (local.get $rows))
//       (block (loop                                       ;; down the rows of x and y
//         (br_if 1 (i32.eqz (local.get $r)))
//         (local.set $acc0 (f32x4.add (local.get $acc0)
//           (f32x4.mul (v128.load align=1 (local.get $xp)) (v128.load align=1 (local.get $yp)))))
//         (local.set $acc1 (f32x4.add (local.get $acc1)
//           (f32x4.mul (v128.load offset=16 align=1 (local.get $xp)) (v128.load offset=16 align=1 (local.get $yp)))))
//         (local.set $acc2 (f32x4.add (local.get $acc2)
//           (f32x4.mul (v128.load offset=32 align=1 (local.get $xp)) (v128.load offset=32 align=1 (local.get $yp)))))
//         (local.set $acc3 (f32x4.add (local.get $acc3)
//           (f32x4.mul (v128.load offset=48 align=1 (local.get $xp)) (v128.load offset=48 align=1 (local.get $yp)))))
//         (local.set $xp (i32.add (local.get $xp) (local.get $xStride)))
//         (local.set $yp (i32.add (local.get $yp) (local.get $yStride)))
//         (local.set $r (i32.sub (local.get $r) (i32.const 1)))
//         (br 0)))
//       (v128.store align=1 (local.get $op) (local.get $acc0))
//       (v128.store offset=16 align=1 (local.get $op) (local.get $acc1))
//       (v128.store offset=32 align=1 (local.get $op) (local.get $acc2))
//       (v128.store offset=48 align=1 (local.get $op) (local.get $acc3))
//       (local.set $q (i32.add (local.get $q) (i32.const 64)))
//       (br 0)))
//     (block (loop                                         ;; then four at a time
//       (br_if 1 (i32.ge_u (local.get $q) (local.get $cBytes)))
//       (local.set $op (i32.add (local.get $out) (local.get $q)))
//       (local.set $acc0 (v128.load align=1 (local.get $op)))
//       (local.set $xp (i32.add (local.get $x) (local.get $q)))
//       (local.set $yp (i32.add (local.get $y) (local.get $q)))
//       (local.set $r (local.get $rows))
//       (block (loop
//         (br_if 1 (i32.eqz (local.get $r)))
//         (local.set $acc0 (f32x4.add (local.get $acc0)
//           (f32x4.mul (v128.load align=1 (local.get $xp)) (v128.load align=1 (local.get $yp)))))
//         (local.set $xp (i32.add (local.get $xp) (local.get $xStride)))
//         (local.set $yp (i32.add (local.get $yp) (local.get $yStride)))
//         (local.set $r (i32.sub (local.get $r) (i32.const 1)))
//         (br 0)))
//       (v128.store align=1 (local.get $op) (local.get $acc0))
//       (local.set $q (i32.add (local.get $q) (i32.const 16)))
//       (br 0))))
// params 0 out, 1 x, 2 xStride, 3 y, 4 yStride, 5 rows, 6 C; i32 locals 7 q (bytes), 8 r, 9 xp, 10 yp, 11 op,
// 12 qEnd16, 13 cBytes; v128 locals 14..17 accumulators
const diagStart = [...get(1), ...get(7), add, ...set(9), ...get(3), ...get(7), add, ...set(10), ...get(5), ...set(8)];
const diagNext = [...get(9), ...get(2), add, ...set(9), ...get(10), ...get(4), add, ...set(10), ...get(8), ...i32(1), 0x6b, ...set(8)];
const diagTerm = (acc: number, offset: number) => [...get(acc), ...get(9), ...load(offset), ...get(10), ...load(offset), ...mulAdd, ...set(acc)];
const diagBody = [
  0x02, 0x07, 0x7f, 0x04, 0x7b,
  ...get(6), ...i32(2), 0x74, ...set(13),
  ...get(6), 0x41, 0x70, 0x71, ...i32(2), 0x74, ...set(12),
  0x02, 0x40, 0x03, 0x40, // sixteen channels at a time
  ...get(7), ...get(12), 0x4f, 0x0d, 0x01,
  ...get(0), ...get(7), add, ...set(11),
  ...get(11), ...load(0), ...set(14), ...get(11), ...load(16), ...set(15), ...get(11), ...load(32), ...set(16), ...get(11), ...load(48), ...set(17),
  ...diagStart,
  0x02, 0x40, 0x03, 0x40,
  ...get(8), 0x45, 0x0d, 0x01,
  ...diagTerm(14, 0), ...diagTerm(15, 16), ...diagTerm(16, 32), ...diagTerm(17, 48),
  ...diagNext,
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(11), ...get(14), ...store(0), ...get(11), ...get(15), ...store(16), ...get(11), ...get(16), ...store(32), ...get(11), ...get(17), ...store(48),
  ...get(7), 0x41, 0xc0, 0x00, add, ...set(7),
  0x0c, 0x00, 0x0b, 0x0b,
  0x02, 0x40, 0x03, 0x40, // then four at a time
  ...get(7), ...get(13), 0x4f, 0x0d, 0x01,
  ...get(0), ...get(7), add, ...set(11),
  ...get(11), ...load(0), ...set(14),
  ...diagStart,
  0x02, 0x40, 0x03, 0x40,
  ...get(8), 0x45, 0x0d, 0x01,
  ...diagTerm(14, 0),
  ...diagNext,
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(11), ...get(14), ...store(0),
  ...get(7), ...i32(16), add, ...set(7),
  0x0c, 0x00, 0x0b, 0x0b,
  0x0b,
];

// scaleShiftClip(out, x, a, b, rows, C, lo, hi): out[r][c] = min(max(x[r][c] * a[c] + b[c], lo), hi) (C a multiple
// of 4): an inference-mode BatchNorm and the ReLU after it in one pass, the affine part computed exactly as
// scaleShift computes it.
//
//   (func $scaleShiftClip (type 5) (param $out i32) (param $x i32) (param $a i32) (param $b i32)
//       (param $rows i32) (param $C i32) (param $lo f32) (param $hi f32)
//     (local $c i32) (local $cEnd i32) (local $lo4 v128) (local $hi4 v128)
//     (local.set $cEnd (i32.shl (local.get $C) (i32.const 2)))
//     (local.set $lo4 (f32x4.splat (local.get $lo)))
//     (local.set $hi4 (f32x4.splat (local.get $hi)))
//     (block (loop                                                   ;; rows
//       (br_if 1 (i32.eqz (local.get $rows)))
//       (local.set $c (i32.const 0))
//       (block (loop                                                 ;; four channels at a time
//         (br_if 1 (i32.ge_u (local.get $c) (local.get $cEnd)))
//         (v128.store align=1 (i32.add (local.get $out) (local.get $c))
//           (f32x4.min
//             (f32x4.max
//               (f32x4.add
//                 (f32x4.mul (v128.load align=1 (i32.add (local.get $x) (local.get $c)))
//                            (v128.load align=1 (i32.add (local.get $a) (local.get $c))))
//                 (v128.load align=1 (i32.add (local.get $b) (local.get $c))))
//               (local.get $lo4))
//             (local.get $hi4)))
//         (local.set $c (i32.add (local.get $c) (i32.const 16)))
//         (br 0)))
//       (local.set $out (i32.add (local.get $out) (local.get $cEnd)))     ;; next row of out and x
//       (local.set $x (i32.add (local.get $x) (local.get $cEnd)))
//       (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
//       (br 0))))
// params 0 out, 1 x, 2 a, 3 b, 4 rows, 5 C, 6 lo, 7 hi; i32 locals 8 c, 9 cEnd (bytes); v128 locals 10 lo4, 11 hi4
const f32x4 = { mul: [0xfd, 0xe6, 0x01], add: [0xfd, 0xe4, 0x01], min: [0xfd, 0xe8, 0x01], max: [0xfd, 0xe9, 0x01], ge: [0xfd, 0x46], le: [0xfd, 0x45] };
const v128And = [0xfd, 0x4e];
const ch = (p: number) => [...get(p), ...get(8), add];
const scaleShiftClipBody = [
  0x02, 0x02, 0x7f, 0x02, 0x7b,
  ...get(5), ...i32(2), 0x74, ...set(9), // cEnd = C << 2
  ...get(6), 0xfd, 0x13, ...set(10), // lo4, hi4: f32x4.splat
  ...get(7), 0xfd, 0x13, ...set(11),
  0x02, 0x40, 0x03, 0x40, // rows
  ...get(4), 0x45, 0x0d, 0x01,
  ...i32(0), ...set(8),
  0x02, 0x40, 0x03, 0x40, // four channels at a time
  ...get(8), ...get(9), 0x4f, 0x0d, 0x01,
  ...ch(0), ...ch(1), ...v128Load, ...ch(2), ...v128Load, ...f32x4.mul, ...ch(3), ...v128Load, ...f32x4.add,
  ...get(10), ...f32x4.max, ...get(11), ...f32x4.min, ...v128Store,
  ...get(8), ...i32(16), add, ...set(8),
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(0), ...get(9), add, ...set(0), // next row of out and x
  ...get(1), ...get(9), add, ...set(1),
  ...get(4), ...i32(1), 0x6b, ...set(4),
  0x0c, 0x00, 0x0b, 0x0b,
  0x0b,
];

// scaleShiftClipBack(dx, dz, x, a, b, sums, rows, C, lo, hi): the gradient of scaleShiftClip in one pass (C a
// multiple of 4). y = x * a + b is recomputed as the forward computed it; g = lo <= y <= hi ? dz : 0 (the mask as
// clipMask makes it); dx = g * a; and two accumulator rows, sums[c] += g and sums[C + c] += g * x (the BatchNorm's
// offset and scale gradients). The bits of g and of the sums are those of clipMask then fma (columnBlocks) on the
// same values: g * 1 is g.
//
//   (func $scaleShiftClipBack (type 6) (param $dx i32) (param $dz i32) (param $x i32) (param $a i32) (param $b i32)
//       (param $sums i32) (param $rows i32) (param $C i32) (param $lo f32) (param $hi f32)
//     (local $c i32) (local $cEnd i32) (local $lo4 v128) (local $hi4 v128) (local $xv v128) (local $g v128)
//     (local.set $cEnd (i32.shl (local.get $C) (i32.const 2)))
//     (local.set $lo4 (f32x4.splat (local.get $lo)))
//     (local.set $hi4 (f32x4.splat (local.get $hi)))
//     (block (loop                                                   ;; rows
//       (br_if 1 (i32.eqz (local.get $rows)))
//       (local.set $c (i32.const 0))
//       (block (loop                                                 ;; four channels at a time
//         (br_if 1 (i32.ge_u (local.get $c) (local.get $cEnd)))
//         (local.set $xv (v128.load align=1 (i32.add (local.get $x) (local.get $c))))
//         (local.set $g                                              ;; y
//           (f32x4.add (f32x4.mul (local.get $xv) (v128.load align=1 (i32.add (local.get $a) (local.get $c))))
//                      (v128.load align=1 (i32.add (local.get $b) (local.get $c)))))
//         (local.set $g                                              ;; dz where lo <= y <= hi, else 0
//           (v128.and (v128.load align=1 (i32.add (local.get $dz) (local.get $c)))
//                     (v128.and (f32x4.ge (local.get $g) (local.get $lo4)) (f32x4.le (local.get $g) (local.get $hi4)))))
//         (v128.store align=1 (i32.add (local.get $dx) (local.get $c))
//           (f32x4.mul (local.get $g) (v128.load align=1 (i32.add (local.get $a) (local.get $c)))))
//         (v128.store align=1 (i32.add (local.get $sums) (local.get $c))
//           (f32x4.add (v128.load align=1 (i32.add (local.get $sums) (local.get $c))) (local.get $g)))
//         (v128.store align=1 (i32.add (i32.add (local.get $sums) (local.get $cEnd)) (local.get $c))
//           (f32x4.add (v128.load align=1 (i32.add (i32.add (local.get $sums) (local.get $cEnd)) (local.get $c)))
//                      (f32x4.mul (local.get $g) (local.get $xv))))
//         (local.set $c (i32.add (local.get $c) (i32.const 16)))
//         (br 0)))
//       (local.set $dx (i32.add (local.get $dx) (local.get $cEnd)))       ;; next row of dx, dz and x
//       (local.set $dz (i32.add (local.get $dz) (local.get $cEnd)))
//       (local.set $x (i32.add (local.get $x) (local.get $cEnd)))
//       (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
//       (br 0))))
// params 0 dx, 1 dz, 2 x, 3 a, 4 b, 5 sums, 6 rows, 7 C, 8 lo, 9 hi; i32 locals 10 c, 11 cEnd (bytes); v128 locals
// 12 lo4, 13 hi4, 14 xv, 15 g
const bc = (p: number) => [...get(p), ...get(10), add];
const secondSums = [...get(5), ...get(11), add, ...get(10), add]; // sums + cEnd + c
const scaleShiftClipBackBody = [
  0x02, 0x02, 0x7f, 0x04, 0x7b,
  ...get(7), ...i32(2), 0x74, ...set(11), // cEnd = C << 2
  ...get(8), 0xfd, 0x13, ...set(12),
  ...get(9), 0xfd, 0x13, ...set(13),
  0x02, 0x40, 0x03, 0x40, // rows
  ...get(6), 0x45, 0x0d, 0x01,
  ...i32(0), ...set(10),
  0x02, 0x40, 0x03, 0x40, // four channels at a time
  ...get(10), ...get(11), 0x4f, 0x0d, 0x01,
  ...bc(2), ...v128Load, ...set(14), // xv
  ...get(14), ...bc(3), ...v128Load, ...f32x4.mul, ...bc(4), ...v128Load, ...f32x4.add, ...set(15), // y
  ...bc(1), ...v128Load, ...get(15), ...get(12), ...f32x4.ge, ...get(15), ...get(13), ...f32x4.le, ...v128And, ...v128And, ...set(15), // g
  ...bc(0), ...get(15), ...bc(3), ...v128Load, ...f32x4.mul, ...v128Store, // dx = g * a
  ...bc(5), ...bc(5), ...v128Load, ...get(15), ...f32x4.add, ...v128Store, // sums += g
  ...secondSums, ...secondSums, ...v128Load, ...get(15), ...get(14), ...f32x4.mul, ...f32x4.add, ...v128Store, // += g * x
  ...get(10), ...i32(16), add, ...set(10),
  0x0c, 0x00, 0x0b, 0x0b,
  ...get(0), ...get(11), add, ...set(0), // next row of dx, dz and x
  ...get(1), ...get(11), add, ...set(1),
  ...get(2), ...get(11), add, ...set(2),
  ...get(6), ...i32(1), 0x6b, ...set(6),
  0x0c, 0x00, 0x0b, 0x0b,
  0x0b,
];

/**
 * The module's bytes: the header, then the type, import, function, export and code sections of the listing at the
 * top. `sharedMemory`: the threaded build's memory is shared and must be imported as shared, with a maximum
 * (65536 pages, 4 GiB).
 */
export function simdModuleBytes(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const str = (s: string) => [s.length, ...[...s].map((ch) => ch.charCodeAt(0))];
  const fn = (bytes: number[]) => [...uleb(bytes.length), ...bytes];
  const memoryLimits = sharedMemory ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [
      0x07, 0x60, 0x08, ...Array(8).fill(0x7f), 0x00, 0x60, 0x06, 0x7f, 0x7f, 0x7f, 0x7f, 0x7d, 0x7d, 0x00, 0x60, 0x06, ...Array(6).fill(0x7f), 0x00,
      0x60, 0x08, ...Array(8).fill(0x7f), 0x00, 0x60, 0x07, ...Array(7).fill(0x7f), 0x00,
      0x60, 0x08, ...Array(6).fill(0x7f), 0x7d, 0x7d, 0x00, 0x60, 0x0a, ...Array(8).fill(0x7f), 0x7d, 0x7d, 0x00,
    ]),
    ...section(2, [0x01, ...str('env'), ...str('memory'), 0x02, ...memoryLimits]),
    ...section(3, [0x07, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]),
    ...section(7, [
      0x07, ...str('fma'), 0x00, 0x00, ...str('clipMask'), 0x00, 0x01, ...str('scaleShift'), 0x00, 0x02, ...str('outerAcc'), 0x00, 0x03,
      ...str('diagAcc'), 0x00, 0x04, ...str('scaleShiftClip'), 0x00, 0x05, ...str('scaleShiftClipBack'), 0x00, 0x06,
    ]),
    ...section(10, [0x07, ...fn(fmaBody), ...fn(clipBody), ...fn(scaleShiftBody), ...fn(outerBody), ...fn(diagBody), ...fn(scaleShiftClipBody), ...fn(scaleShiftClipBackBody)]),
  ]);
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}
