// The lung segmenter's architecture and mask post-processing defaults, as plain data: the model code
// (segmenter.ts) builds and refines with them, and the CLI shows them in --help without loading tfjs.
// Browser-safe.

export interface SegmenterArchitecture {
  /** Square input side in pixels; a multiple of 2^(levels - 1). */
  inputSize: number;
  /** Channels per level, encoder top to bottleneck, e.g. [8, 16, 32, 64] (3 poolings, 3 upsamplings). */
  filters: number[];
  /** Seed of the weight initialisers (same seed, same untrained net). */
  seed?: number;
}

export const DEFAULT_SEGMENTER: Readonly<SegmenterArchitecture> = { inputSize: 128, filters: [8, 16, 32, 64] };

/** Post-processing of a predicted probability map (see refineLungMask). */
export interface MaskRefinement {
  /** Probability above which a pixel is lung. */
  threshold: number;
  /** Components kept, largest first (two lungs). */
  keepComponents: number;
  /** A kept component smaller than this fraction of the largest is dropped as a speck. */
  minComponentFraction: number;
  /** Fill enclosed background (holes left by dense consolidation inside a lung). */
  fillHoles: boolean;
  /** Dilation radius as a fraction of the mask's width: keeps the lung borders, which carry findings. */
  dilation: number;
}

export const DEFAULT_REFINEMENT: Readonly<MaskRefinement> = {
  threshold: 0.5,
  keepComponents: 2,
  minComponentFraction: 0.1,
  fillHoles: true,
  dilation: 0.01,
};
