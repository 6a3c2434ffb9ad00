// The browser-safe core of @zerovar/trainer (`@zerovar/trainer/browser`): everything the viewer shares with the
// trainer, so a bundle is read, preprocessed, classified and explained by one implementation on both sides.
// Nothing reachable from here may import a Node built-in or a Node-only package (tests/unit/browser-entry.test.ts
// walks the import graph and fails if it does).
export {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  BundleError,
  httpFetcher,
  parseManifest,
  readBundle,
  type BundleErrorCode,
  type BundleManifest,
  type FetchBytes,
  type LoadedBundle,
} from './model/bundle.js';
export { BundleModel, loadBundle, type Explanation, type InputOptions, type Prediction } from './model/inference.js';
export { classifierFromJSON, type Classifier, type ClassifierJSON, type ClassifierKind } from './model/classifiers.js';
export { GradCAM, type CamResult } from './model/gradcam.js';
export { lungMaskedImage, resizeMask, segmentLungs } from './model/segmenter.js';
export { greyToInput, resizeGrey, rgbaToGrey, storedToGrey8, upsampleCam, type GreyImage, type InputSpec, type StoredPixels } from './image/pixels.js';
export { attentionOverlay, blendOverGrey, camToRgba, jet, type OverlayOptions } from './image/colormap.js';
export { maskOutline } from './image/outline.js';
export { trimJ2kTrailer } from './image/j2k.js';
export { argmax, evaluateScores, rocAuc, type ClassificationMetrics } from './stats/metrics.js';
export { registerInferenceKernels } from './runtime/wasm/register.js';
