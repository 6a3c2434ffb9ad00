// The SIMD module's listing (simd_module.ts, in the WebAssembly text format) against its bytes: a small assembler
// for the listing's subset of the format (folded and flat instructions, named params and locals) turns each listed
// function into a body, which must equal that function's body in the module's code section, byte for byte. So the
// listing a reader checks the routines by cannot drift from the bytes that run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { simdModuleBytes } from '../../trainer/src/runtime/wasm/simd_module.js';

type Sexp = string | Sexp[];

/** The listed functions: the comment lines indented as listing, from each `(func` to its closing parenthesis. */
function listedFunctions(): Sexp[][] {
  const file = new URL('../../trainer/src/runtime/wasm/simd_module.ts', import.meta.url);
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('//   '))
    .map((l) => l.slice(2).replace(/;;.*$/, ''))
    .join('\n');
  const tokens = text.match(/\(|\)|[^\s()]+/g) ?? [];
  const forms: Sexp[] = [];
  const stack: Sexp[][] = [];
  for (const t of tokens) {
    if (t === '(') stack.push([]);
    else if (t === ')') {
      const done = stack.pop();
      assert.ok(done, 'unbalanced listing');
      if (stack.length) stack[stack.length - 1].push(done);
      else forms.push(done);
    } else if (stack.length) stack[stack.length - 1].push(t);
  }
  // The module form's functions are elided ("...the seven functions below..."): the funcs are top-level forms.
  return forms.filter((f): f is Sexp[] => Array.isArray(f) && f[0] === 'func');
}

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};

const VALTYPE: Record<string, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };
/** Opcode bytes and immediate kind; memory ops carry their natural alignment (log2). */
const OPS: Record<string, { code: number[]; imm?: 'local' | 'label' | 'sleb' | 'mem'; align?: number }> = {
  'local.get': { code: [0x20], imm: 'local' },
  'local.set': { code: [0x21], imm: 'local' },
  'i32.const': { code: [0x41], imm: 'sleb' },
  'br': { code: [0x0c], imm: 'label' },
  'br_if': { code: [0x0d], imm: 'label' },
  'nop': { code: [0x01] },
  'i32.eqz': { code: [0x45] },
  'i32.ge_u': { code: [0x4f] },
  'i32.add': { code: [0x6a] },
  'i32.sub': { code: [0x6b] },
  'i32.mul': { code: [0x6c] },
  'i32.and': { code: [0x71] },
  'i32.shl': { code: [0x74] },
  'f32.add': { code: [0x92] },
  'f32.mul': { code: [0x94] },
  'f32.load': { code: [0x2a], imm: 'mem', align: 2 },
  'f32.store': { code: [0x38], imm: 'mem', align: 2 },
  'v128.load': { code: [0xfd, 0x00], imm: 'mem', align: 4 },
  'v128.store': { code: [0xfd, 0x0b], imm: 'mem', align: 4 },
  'f32x4.splat': { code: [0xfd, 0x13] },
  'f32x4.le': { code: [0xfd, 0x45] },
  'f32x4.ge': { code: [0xfd, 0x46] },
  'v128.and': { code: [0xfd, 0x4e] },
  'f32x4.add': { code: [0xfd, 0xe4, 0x01] },
  'f32x4.mul': { code: [0xfd, 0xe6, 0x01] },
  'f32x4.min': { code: [0xfd, 0xe8, 0x01] },
  'f32x4.max': { code: [0xfd, 0xe9, 0x01] },
};

/** One listed function's body bytes: locals, then its instructions, then `end`. */
function assemble(func: Sexp[]): number[] {
  const names = new Map<string, number>();
  const locals: number[] = [];
  const body: Sexp[] = [];
  for (const part of func.slice(2)) {
    if (Array.isArray(part) && (part[0] === 'param' || part[0] === 'local')) {
      names.set(part[1] as string, names.size);
      if (part[0] === 'local') locals.push(VALTYPE[part[2] as string]);
    } else if (!(Array.isArray(part) && part[0] === 'type')) body.push(part);
  }
  const out: number[] = [];
  const runs: [number, number][] = [];
  for (const t of locals) {
    const last = runs[runs.length - 1];
    if (last && last[1] === t) last[0]++;
    else runs.push([1, t]);
  }
  out.push(...uleb(runs.length), ...runs.flatMap(([n, t]) => [...uleb(n), t]));
  const immediate = (op: string, args: string[]): number[] => {
    const spec = OPS[op];
    assert.ok(spec, `unknown instruction ${op}`);
    if (spec.imm === 'local') {
      const i = names.get(args[0]);
      assert.ok(i !== undefined, `unknown local ${args[0]}`);
      return [...spec.code, ...uleb(i)];
    }
    if (spec.imm === 'label') return [...spec.code, ...uleb(Number(args[0]))];
    if (spec.imm === 'sleb') return [...spec.code, ...sleb(Number(args[0]))];
    if (spec.imm === 'mem') {
      const value = (key: string) => args.find((a) => a.startsWith(`${key}=`))?.slice(key.length + 1);
      const align = value('align');
      return [...spec.code, align ? Math.log2(Number(align)) : (spec.align ?? 0), ...uleb(Number(value('offset') ?? 0))];
    }
    return spec.code;
  };
  const emit = (seq: Sexp[]): void => {
    for (let i = 0; i < seq.length; i++) {
      const item = seq[i];
      if (Array.isArray(item)) {
        const [op, ...rest] = item as [string, ...Sexp[]];
        if (op === 'block' || op === 'loop') {
          out.push(op === 'block' ? 0x02 : 0x03, 0x40);
          emit(rest);
          out.push(0x0b);
          continue;
        }
        const args = rest.filter((r): r is string => typeof r === 'string');
        emit(rest.filter((r) => Array.isArray(r))); // folded: the operands first
        out.push(...immediate(op, args));
      } else {
        const args: string[] = []; // flat: immediates follow the instruction
        while (typeof seq[i + 1] === 'string' && !OPS[seq[i + 1] as string]) args.push(seq[++i] as string);
        out.push(...immediate(item, args));
      }
    }
  };
  emit(body);
  out.push(0x0b);
  return out;
}

/** The function bodies of the module's code section (id 10). */
function codeBodies(bytes: Uint8Array): number[][] {
  let i = 8;
  const leb = () => {
    let r = 0;
    let shift = 0;
    let b: number;
    do {
      b = bytes[i++];
      r |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return r;
  };
  while (i < bytes.length) {
    const id = bytes[i++];
    const end = leb() + i;
    if (id === 10) {
      return Array.from({ length: leb() }, () => {
        const n = leb();
        const body = Array.from(bytes.subarray(i, i + n));
        i += n;
        return body;
      });
    }
    i = end;
  }
  throw new Error('no code section');
}

test('each function of the SIMD listing assembles to its bytes in the module', () => {
  const funcs = listedFunctions();
  assert.deepEqual(funcs.map((f) => f[1]), ['$fma', '$clipMask', '$scaleShift', '$outerAcc', '$diagAcc', '$scaleShiftClip', '$scaleShiftClipBack']);
  for (const shared of [false, true]) {
    const bodies = codeBodies(simdModuleBytes(shared));
    assert.equal(bodies.length, funcs.length);
    funcs.forEach((f, k) => assert.deepEqual(assemble(f), bodies[k], `${String(f[1])} (shared memory: ${shared})`));
  }
});

test('the listing check fails on a listing that differs from the bytes', () => {
  const [fma] = listedFunctions();
  const changed = JSON.parse(JSON.stringify(fma).replace('"16"', '"32"')) as Sexp[]; // a vector step of 32 bytes
  assert.notDeepEqual(assemble(changed), codeBodies(simdModuleBytes(false))[0]);
});
