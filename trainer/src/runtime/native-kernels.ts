// The training kernels' native addon (trainer/native/, built at install): OpenBLAS matrix products and the wasm
// kernels' tasks compiled for this CPU, on the addon's own threads. Loaded once in Node where the build succeeded,
// handed to the wasm kernels (wasm/shared.ts's gemm, wasm/parallel.ts's runTask), and named in the logs. Where it
// is absent (no compiler or OpenBLAS at install, ZEROVAR_NATIVE_GEMM=0) the kernels use XNNPACK's matmul and the
// wasm SIMD routines.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeTasks } from './wasm/parallel.js';
import type { NativeGemm } from './wasm/shared.js';

const ADDON = fileURLToPath(new URL('../../native/build/kernels.node', import.meta.url));

export interface Addon extends NativeGemm, NativeTasks {
  threads(n: number): void;
  config(): string;
}

let loaded: { addon: Addon | null; why?: string } | null = null;

/** The addon, or null with the reason (not built, turned off, failed to load). */
export function nativeKernels(): { addon: Addon | null; why?: string } {
  if (loaded) return loaded;
  if (process.env.ZEROVAR_NATIVE_GEMM === '0') return (loaded = { addon: null, why: 'turned off (ZEROVAR_NATIVE_GEMM=0)' });
  if (!existsSync(ADDON)) return (loaded = { addon: null, why: 'not built (npm run build:native)' });
  try {
    return (loaded = { addon: createRequire(import.meta.url)(ADDON) as Addon });
  } catch (e) {
    return (loaded = { addon: null, why: `failed to load: ${(e as Error).message.split('\n')[0]}` });
  }
}

/** 'OpenBLAS 0.3.29 (Haswell) on 2 threads' or "XNNPACK's (OpenBLAS not built ...)", for the logs and the report. */
export function matrixProductsLine(threads: number): string {
  const { addon, why } = nativeKernels();
  if (!addon) return `XNNPACK's (OpenBLAS ${why})`;
  const config = addon.config();
  const version = /OpenBLAS\s+([\d.]+)/.exec(config)?.[1];
  const core = / (\w+)\s+MAX_THREADS/.exec(config)?.[1];
  return `OpenBLAS${version ? ` ${version}` : ''}${core ? ` (${core})` : ''} on ${threads} thread${threads > 1 ? 's' : ''}`;
}
