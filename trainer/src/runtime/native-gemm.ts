// The OpenBLAS matrix products of the training kernels (trainer/native/gemm.cc, built at install): loaded once in
// Node where the build succeeded, handed to the wasm kernels (wasm/shared.ts's gemm), and named in the logs. Where
// it is absent (no compiler or OpenBLAS at install, ZEROVAR_NATIVE_GEMM=0) the kernels use XNNPACK's matmul.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeGemm } from './wasm/shared.js';

const ADDON = fileURLToPath(new URL('../../native/build/gemm.node', import.meta.url));

interface Addon extends NativeGemm {
  threads(n: number): void;
  config(): string;
}

let loaded: { addon: Addon | null; why?: string } | null = null;

/** The addon, or null with the reason (not built, turned off, failed to load). */
export function nativeGemm(): { addon: Addon | null; why?: string } {
  if (loaded) return loaded;
  if (process.env.ZEROVAR_NATIVE_GEMM === '0') return (loaded = { addon: null, why: 'turned off (ZEROVAR_NATIVE_GEMM=0)' });
  if (!existsSync(ADDON)) return (loaded = { addon: null, why: 'not built (npm run build:native)' });
  try {
    return (loaded = { addon: createRequire(import.meta.url)(ADDON) as Addon });
  } catch (e) {
    return (loaded = { addon: null, why: `failed to load: ${(e as Error).message.split('\n')[0]}` });
  }
}

/** 'OpenBLAS 0.3.29 (Haswell, 2 threads)' or 'XNNPACK (OpenBLAS not built ...)', for the logs and the report. */
export function matrixProductsLine(threads: number): string {
  const { addon, why } = nativeGemm();
  if (!addon) return `XNNPACK's (OpenBLAS ${why})`;
  const config = addon.config();
  const version = /OpenBLAS\s+([\d.]+)/.exec(config)?.[1];
  const core = / (\w+)\s+MAX_THREADS/.exec(config)?.[1];
  return `OpenBLAS${version ? ` ${version}` : ''}${core ? ` (${core})` : ''} on ${threads} thread${threads > 1 ? 's' : ''}`;
}
