// Builds trainer/native/*.cc (the training kernels' OpenBLAS matrix products and their tasks compiled for this CPU)
// into trainer/native/build/kernels.node with the system's C++ compiler. Run by `npm install` (postinstall) and by
// `npm run build:native`. Optional: without a compiler or OpenBLAS the trainer runs on XNNPACK's products alone,
// so a failed build warns and exits 0, unless ZEROVAR_NATIVE_REQUIRED=1 (CI) makes it an error.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sources = ['addon.cc', 'gemm.cc', 'tasks.cc'].map((f) => join(here, '..', 'native', f));
const outDir = join(here, '..', 'native', 'build');
const out = join(outDir, 'kernels.node');

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function tryRun(cmd, args) {
  try {
    return run(cmd, args);
  } catch {
    return null;
  }
}

/** Node's headers: beside this node binary (official builds), else the distribution's. */
function nodeHeaders() {
  const dirs = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return dirs.find((d) => existsSync(join(d, 'node_api.h')));
}

/** OpenBLAS's compile and link flags: pkg-config where it knows them, else Debian's layout. */
function openblasFlags() {
  const pc = tryRun('pkg-config', ['--cflags', '--libs', 'openblas']);
  if (pc !== null) return pc.split(/\s+/).filter(Boolean);
  const arch = tryRun('gcc', ['-print-multiarch']) ?? 'x86_64-linux-gnu';
  const dirs = [`/usr/include/${arch}/openblas-pthread`, `/usr/include/${arch}/openblas64-pthread`, '/usr/include/openblas', '/usr/include'];
  const inc = dirs.find((d) => existsSync(join(d, 'cblas.h')));
  return inc ? [`-I${inc}`, '-lopenblas'] : null;
}

function build() {
  const headers = nodeHeaders();
  if (!headers) throw new Error("Node's headers (node_api.h) were not found");
  const blas = openblasFlags();
  if (!blas) throw new Error('OpenBLAS (cblas.h) was not found: install libopenblas-dev');
  const cxx = process.env.CXX ?? 'g++';
  mkdirSync(outDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  // For this CPU (the addon is built where it runs, at install); a * b + c never contracted into one rounding, so
  // the tasks give the wasm routines' bits where those round each step (tasks.cc).
  const flags = ['-O3', '-march=native', '-ffp-contract=off', '-fno-math-errno', '-pthread', '-shared', '-fPIC', '-std=c++17'];
  run(cxx, [...flags, `-I${headers}`, ...sources, ...blas, '-o', tmp]);
  renameSync(tmp, out);
}

try {
  build();
  console.log(`zerovar: built ${out} (OpenBLAS matrix products and native kernels for training)`);
} catch (e) {
  const why = String(e?.stderr || e?.message || e).split('\n')[0];
  const line = `zerovar: the native training kernels were not built (${why}); training runs on XNNPACK's products and the wasm kernels alone, which is slower. Install g++ and libopenblas-dev, then: npm run build:native`;
  if (process.env.ZEROVAR_NATIVE_REQUIRED === '1') {
    console.error(line);
    process.exit(1);
  }
  console.warn(line);
}
