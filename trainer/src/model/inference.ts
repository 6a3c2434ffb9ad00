// A loaded bundle as one object with classify() and explain(), after tfjs-models' load() habit. The trainer's
// `evaluate` and `predict`, the end-to-end checks and the viewer's worker all go through this, so a bundle gives
// the same answer everywhere: the same calibrated probabilities and the same out-of-distribution verdict.
// Browser-safe.
import * as tf from '@tensorflow/tfjs';
import { BundleError, loadBundleModel, readBundle, type BundleClassifier, type BundleManifest, type FetchBytes } from './bundle.js';
import { classifierFromJSON, classifierScoreFn, type Classifier } from './classifiers.js';
import { GradCAM, type CamResult } from './gradcam.js';
import { greyToInput, type GreyImage, type InputSpec } from '../image/pixels.js';
import { argmax } from '../stats/metrics.js';
import { applyCalibration, type Calibration } from '../stats/calibration.js';
import { decodeOodGuard, oodVerdict, type OodGuard, type OodVerdict } from './ood.js';
import { DEFAULT_REFINEMENT, lungMaskedImage, segmentLungs, type MaskRefinement } from './segmenter.js';

export type { BundleClassifier } from './bundle.js';

export interface Prediction {
  /** Calibrated when the bundle records a calibration (the order of the classes' scores is unchanged by it). */
  probabilities: number[];
  classIndex: number;
  className: string;
  /** The out-of-distribution guard's verdict; absent when the bundle has no guard, or the image was given
   * lung-masked already without its unmasked original (the guard looks at the image before masking). */
  ood?: OodVerdict;
}

/** `premasked`: the images are lung-masked already (the trainer's own masked sets); a masked bundle masks
 * everything else itself before classifying or explaining. */
export interface InputOptions {
  premasked?: boolean;
  /** With `premasked`: the same images before masking, so the guard can still look at them (one per image). */
  unmasked?: GreyImage[];
}

/** A layer's output averaged over its spatial grid: the guard's view of an image. */
function meanPooled(model: tf.LayersModel, layerName: string): tf.SymbolicTensor {
  const out = model.getLayer(layerName).output as tf.SymbolicTensor;
  return tf.layers.globalAveragePooling2d({ name: `${layerName}_ood_pool` }).apply(out) as tf.SymbolicTensor;
}

/** Gradients averaged at 8 points of the path from zero activations: within 0.05 of 32 points on the released
 * bundles' maps, where plain Grad-CAM (1) left 6 in 100 lung-masked Kaggle images with an empty map for their
 * predicted class (the masked bundle's RBF SVM); the 8 points go through the head as one batch, about 3 ms
 * more per image than plain Grad-CAM on wasm in Node. */
export const ATTENTION_PATH_STEPS = 8;
/** What the maps are, in words, for the panel, the reports and the saved attention map. */
export const ATTENTION_METHOD = 'Integrated Grad-CAM';

export interface Explanation extends CamResult {
  /** Class the map explains (the predicted one unless asked otherwise). */
  className: string;
  method: string;
}

export class BundleModel {
  readonly spec: InputSpec;
  private readonly classifier: Classifier;
  private cam: GradCAM | null = null;
  private readonly calibration: Calibration;
  /** The network with a second output, the guard's pooled layer (built on first use). */
  private withPooled: tf.LayersModel | null = null;
  /** Masked versions of recently seen images, so classify() then explain() segments once. */
  private readonly maskedCache = new WeakMap<GreyImage, GreyImage>();

  private constructor(
    readonly manifest: BundleManifest,
    readonly model: tf.LayersModel,
    private readonly classifiers: BundleClassifier,
    /** The lung segmenter a masked bundle carries (null for raw bundles). */
    readonly segmenter: tf.LayersModel | null = null,
    /** The out-of-distribution guard (null for bundles made without one). */
    readonly guard: OodGuard | null = null,
  ) {
    this.spec = { size: manifest.input.size, normalization: manifest.input.normalization };
    this.classifier = classifierFromJSON(classifiers.deployed);
    this.calibration = manifest.calibration?.calibration ?? { method: 'none' };
  }

  /** Reads and verifies every file of the bundle, then loads its model (and its segmenter, if any). */
  static async load(fetchBytes: FetchBytes): Promise<BundleModel> {
    const bundle = await readBundle(fetchBytes);
    if (bundle.manifest.variant === 'masked' && !bundle.manifest.segmenter) {
      throw new BundleError('invalid-field', 'a masked bundle must carry its lung segmenter (manifest.segmenter is missing)');
    }
    const model = await loadBundleModel(bundle);
    const segmenter = bundle.manifest.segmenter ? await loadBundleModel(bundle, bundle.manifest.segmenter.path) : null;
    let guard: OodGuard | null = null;
    const ood = bundle.manifest.ood;
    if (ood) {
      try {
        guard = decodeOodGuard(ood, bundle.files.get(ood.path) ?? new Uint8Array());
        const channels = (model.getLayer(ood.layer).outputShape as number[]).at(-1);
        if (channels !== ood.dims) throw new Error(`layer ${ood.layer} has ${channels} channels, the guard ${ood.dims}`);
      } catch (e) {
        model.dispose();
        segmenter?.dispose();
        throw new BundleError('invalid-field', `manifest.ood: ${(e as Error).message}`);
      }
    }
    return new BundleModel(bundle.manifest, model, bundle.manifest.classifier, segmenter, guard);
  }

  /** Trained on lung-masked images: classify() and explain() mask their input first. */
  get masked(): boolean {
    return this.manifest.variant === 'masked';
  }

  /** The post-processing recorded with the segmenter (threshold, components, holes, dilation). */
  get refinement(): MaskRefinement {
    const s = this.manifest.segmenter;
    return s ? { ...s.refinement, threshold: s.threshold } : { ...DEFAULT_REFINEMENT };
  }

  /** The lung mask of a grey image (0 or 255, at the image's size), from the bundle's segmenter. */
  segment(image: GreyImage): GreyImage {
    if (!this.segmenter) throw new Error(`bundle '${this.manifest.name}' has no lung segmenter`);
    return segmentLungs(this.segmenter, image, this.refinement);
  }

  /** What the network sees: the image itself, or for a masked bundle the image with everything outside the lungs blanked. */
  prepare(image: GreyImage, opts: InputOptions = {}): GreyImage {
    if (!this.masked || opts.premasked) return image;
    let m = this.maskedCache.get(image);
    if (!m) {
      m = lungMaskedImage(image, this.segment(image));
      this.maskedCache.set(image, m);
    }
    return m;
  }

  get classes(): string[] {
    return this.manifest.classes;
  }

  private inputTensor(images: GreyImage[]): tf.Tensor4D {
    const { size } = this.spec;
    const per = size * size * 3;
    const input = new Float32Array(images.length * per);
    images.forEach((img, i) => input.set(greyToInput(img, this.spec), i * per));
    return tf.tensor4d(input, [images.length, size, size, 3]);
  }

  /** One network pass: the selected penultimate features and, when asked, the guard's pooled layer, per image. */
  private run(images: GreyImage[], pooled: boolean): { features: Float32Array[]; pooled: Float32Array[] } {
    const layer = this.guard?.layer ?? this.manifest.model.gradcamLayer;
    if (pooled) this.withPooled ??= tf.model({ inputs: this.model.inputs, outputs: [this.model.outputs[0], meanPooled(this.model, layer)] });
    const outs = tf.tidy(() => {
      const x = this.inputTensor(images);
      return pooled ? (this.withPooled as tf.LayersModel).predict(x) as tf.Tensor2D[] : [this.model.predict(x) as tf.Tensor2D];
    });
    const rows = (t: tf.Tensor2D) => {
      const data = t.dataSync() as Float32Array;
      const d = t.shape[1];
      return images.map((_, i) => data.slice(i * d, (i + 1) * d));
    };
    const result = { features: rows(outs[0]), pooled: outs[1] ? rows(outs[1]) : [] };
    tf.dispose(outs);
    return result;
  }

  /** The compressed network's output (the selected penultimate features), one row per image. */
  features(images: GreyImage[]): Float32Array[] {
    return this.run(images, false).features;
  }

  /** The guard's view of each image as given (mean-pooled activations of its layer; no lung masking). */
  pooledFeatures(images: GreyImage[]): Float32Array[] {
    return this.run(images, true).pooled;
  }

  /** Both from one pass over the images as given: the selected features and the guard's pooled layer. */
  featuresAndPooled(images: GreyImage[]): { features: Float32Array[]; pooled: Float32Array[] } {
    return this.run(images, true);
  }

  /** The deployed classifier's probabilities before calibration. */
  uncalibrated(features: Float32Array[]): number[][] {
    return this.classifier.predictProba(features);
  }

  classifyBatch(images: GreyImage[], opts: InputOptions = {}): Prediction[] {
    if (images.length === 0) return [];
    // The guard sees the image before any masking: for a masked bundle that is a pass of its own.
    if (opts.unmasked && opts.unmasked.length !== images.length) throw new Error(`unmasked: ${opts.unmasked.length} images for ${images.length}`);
    const guardInput = opts.premasked ? opts.unmasked : images;
    const guarded = this.guard !== null && guardInput !== undefined;
    const direct = !this.masked || opts.premasked;
    // A raw bundle's guard reads the same pass as the classifier; a masked one's needs the unmasked images' own.
    const samePass = guarded && !this.masked && !opts.premasked;
    const first = this.run(direct ? images : images.map((img) => this.prepare(img, opts)), samePass);
    const pooled = guarded ? (samePass ? first.pooled : this.pooledFeatures(guardInput)) : [];
    return this.uncalibrated(first.features).map((raw, i) => {
      const p = applyCalibration(this.calibration, raw);
      const best = argmax(p);
      const prediction: Prediction = { probabilities: p, classIndex: best, className: this.classes[best] };
      if (guarded && this.guard) prediction.ood = oodVerdict(this.guard, pooled[i]);
      return prediction;
    });
  }

  classify(image: GreyImage, opts: InputOptions = {}): Prediction {
    return this.classifyBatch([image], opts)[0];
  }

  /** Grad-CAM of the bundle's Grad-CAM layer for `classIndex` (default: the predicted class). */
  explain(image: GreyImage, classIndex?: number, opts: InputOptions = {}): Explanation {
    image = this.prepare(image, opts);
    const target = classIndex ?? this.classify(image, { premasked: true }).classIndex;
    const json = this.classifiers.explainer ?? this.classifiers.deployed;
    const score = classifierScoreFn(json);
    if (!score) throw new Error(`the ${json.kind} classifier cannot be explained by gradients and the bundle has no explainer`);
    this.cam ??= new GradCAM(this.model, this.manifest.model.gradcamLayer, { pathSteps: ATTENTION_PATH_STEPS });
    const { size } = this.spec;
    const input = tf.tensor4d(greyToInput(image, this.spec), [1, size, size, 3]);
    try {
      const r = this.cam.compute(input, { score: (o) => score(o as tf.Tensor2D), classIndex: target });
      return { ...r, className: this.classes[r.classIndex], method: ATTENTION_METHOD };
    } finally {
      input.dispose();
    }
  }

  dispose(): void {
    this.cam?.dispose();
    // The pooled model shares the network's weights; only its pooling layer is its own (and has none).
    this.model.dispose();
    this.segmenter?.dispose();
  }
}

export async function loadBundle(fetchBytes: FetchBytes): Promise<BundleModel> {
  return BundleModel.load(fetchBytes);
}
