// Builds trainer/native/gemm.cc (the OpenBLAS matrix products of the training kernels) into
// trainer/native/build/gemm.node with the system's C++ compiler. Run by `npm install` (postinstall) and by
// `npm run build:native`. Optional: without a compiler or OpenBLAS the trainer runs on XNNPACK's products alone,
// so a failed build warns and exits 0, unless ZEROVAR_NATIVE_REQUIRED=1 (CI) makes it an error.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, '..', 'native', 'gemm.cc');
const outDir = join(here, '..', 'native', 'build');
const out = join(outDir, 'gemm.node');

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
  run(cxx, ['-O2', '-shared', '-fPIC', '-std=c++17', `-I${headers}`, source, ...blas, '-o', tmp]);
  renameSync(tmp, out);
}

try {
  build();
  console.log(`zerovar: built ${out} (OpenBLAS matrix products for training)`);
} catch (e) {
  const why = String(e?.stderr || e?.message || e).split('\n')[0];
  const line = `zerovar: the OpenBLAS matrix products were not built (${why}); training runs on XNNPACK's alone, which is slower. Install g++ and libopenblas-dev, then: npm run build:native`;
  if (process.env.ZEROVAR_NATIVE_REQUIRED === '1') {
    console.error(line);
    process.exit(1);
  }
  console.warn(line);
}
