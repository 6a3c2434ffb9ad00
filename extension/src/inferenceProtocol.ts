// Messages between the panel (main thread) and the inference worker. Pure types and data: both sides import it.
import type { GreyImage } from '@zerovar/trainer/browser';
import type { ModelFacts } from './modelFacts.js';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
/** Tried in this order; a backend that fails to initialise or to run a tiny op is skipped. */
export const DEFAULT_BACKENDS: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export interface InitRequest {
  type: 'init';
  backends: BackendName[];
  /** Folder (URL ending in '/') holding tfjs-backend-wasm's .wasm files. */
  wasmPath: string;
}

export interface ClassifyRequest {
  type: 'classify';
  /** The bundle's folder URL (ending in '/'). */
  modelUrl: string;
  /** The displayed image after modality LUT, VOI window and MONOCHROME1 inversion. */
  image: GreyImage;
  /** Also compute the Grad-CAM map of the predicted class. */
  explain: boolean;
  /** Longest side of the returned attention map and lung mask (at the image's aspect ratio). */
  camSize: number;
  /** Explain an image the guard flagged too (the user asked to see the result anyway, for research). */
  showAnyway?: boolean;
  /** Also time the same classification without the guard (`unguardedMs`): the viewer bench's measure of its cost. */
  timeUnguarded?: boolean;
}

export type WorkerRequest = (InitRequest | ClassifyRequest) & { id: number };

export interface InitResult {
  backend: BackendName;
  /** Backends skipped before `backend`, with the reason. */
  skipped: string[];
  /** Why `backend` was taken (a software renderer skipped, a warm-up measured, first in the order). */
  why: string;
  ms: number;
}

/** The out-of-distribution guard's verdict: `flagged` when the score is above the bundle's threshold. */
export interface OodResult {
  score: number;
  threshold: number;
  flagged: boolean;
}

export interface ClassifyResult {
  backend: BackendName;
  /** Why the worker runs on `backend` (InitResult.why of the current selection). */
  backendWhy: string;
  /** SHA-256 (hex) of the bundle's manifest.json, which holds every other file's checksum: the bundle's identity. */
  bundleSha256: string;
  /** Backends given up after being chosen, with the reason (e.g. wrong results for this model). */
  skipped: string[];
  probabilities: number[];
  classIndex: number;
  className: string;
  classes: string[];
  facts: ModelFacts;
  /** The bundle was fetched, verified and loaded for this request (first use in this worker). */
  cold: boolean;
  /** Fetch + checksum + model load; 0 when the bundle was cached. */
  loadMs: number;
  /** Classification (a masked bundle's segmentation + network + classifier). */
  classifyMs: number;
  /** The guard's verdict on the image before any masking; absent for a bundle without a guard. */
  ood?: OodResult;
  /** Asked with `timeUnguarded`: the same classification without the guard. */
  unguardedMs?: number;
  /** Grad-CAM; 0 when not asked (or skipped for a flagged image). */
  explainMs: number;
  /** The part of classifyMs a masked bundle spent segmenting the lungs (or finding its cached mask); 0 for a raw bundle. */
  segmentMs: number;
  /** A masked bundle's mask came from the worker's cache (the same model segmented these very pixels before). */
  segmentCached?: boolean;
  /** Absent when not asked, and for a flagged image unless the request said `showAnyway`. */
  attention?: { cam: Float32Array; width: number; height: number; classIndex: number; className: string; method: string };
  /** A masked bundle's lung mask (0 or 255, row-major), downsampled like the attention map; absent for raw bundles. */
  lungMask?: { mask: Uint8Array; width: number; height: number };
}

export interface WorkerError {
  /** `BundleError` for a bundle that cannot be used (missing file, checksum mismatch, unknown format). */
  name: string;
  message: string;
  /** HTTP 404 for the bundle's manifest: the model is not installed. */
  missing?: boolean;
}

export type WorkerResponse =
  | { id: number; ok: true; result: InitResult | ClassifyResult }
  | { id: number; ok: false; error: WorkerError };
