// A loaded bundle as one object with classify() and explain(), after tfjs-models' load() habit. The trainer's
// `evaluate`, the end-to-end checks and the viewer's worker all go through this, so a bundle gives the same
// answer everywhere. Browser-safe.
import * as tf from '@tensorflow/tfjs';
import { BundleError, loadBundleModel, readBundle, type BundleClassifier, type BundleManifest, type FetchBytes } from './bundle.js';
import { classifierFromJSON, classifierScoreFn, type Classifier } from './classifiers.js';
import { GradCAM, type CamResult } from './gradcam.js';
import { greyToInput, type GreyImage, type InputSpec } from '../image/pixels.js';
import { argmax } from '../stats/metrics.js';
import { DEFAULT_REFINEMENT, lungMaskedImage, segmentLungs, type MaskRefinement } from './segmenter.js';

export type { BundleClassifier } from './bundle.js';

export interface Prediction {
  probabilities: number[];
  classIndex: number;
  className: string;
}

/** `premasked`: the images are lung-masked already (the trainer's own masked sets); a masked bundle masks
 * everything else itself before classifying or explaining. */
export interface InputOptions {
  premasked?: boolean;
}

export interface Explanation extends CamResult {
  /** Class the map explains (the predicted one unless asked otherwise). */
  className: string;
}

export class BundleModel {
  readonly spec: InputSpec;
  private readonly classifier: Classifier;
  private cam: GradCAM | null = null;
  /** Masked versions of recently seen images, so classify() then explain() segments once. */
  private readonly maskedCache = new WeakMap<GreyImage, GreyImage>();

  private constructor(
    readonly manifest: BundleManifest,
    readonly model: tf.LayersModel,
    private readonly classifiers: BundleClassifier,
    /** The lung segmenter a masked bundle carries (null for raw bundles). */
    readonly segmenter: tf.LayersModel | null = null,
  ) {
    this.spec = { size: manifest.input.size, normalization: manifest.input.normalization };
    this.classifier = classifierFromJSON(classifiers.deployed);
  }

  /** Reads and verifies every file of the bundle, then loads its model (and its segmenter, if any). */
  static async load(fetchBytes: FetchBytes): Promise<BundleModel> {
    const bundle = await readBundle(fetchBytes);
    if (bundle.manifest.variant === 'masked' && !bundle.manifest.segmenter) {
      throw new BundleError('invalid-field', 'a masked bundle must carry its lung segmenter (manifest.segmenter is missing)');
    }
    const model = await loadBundleModel(bundle);
    const segmenter = bundle.manifest.segmenter ? await loadBundleModel(bundle, bundle.manifest.segmenter.path) : null;
    return new BundleModel(bundle.manifest, model, bundle.manifest.classifier, segmenter);
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

  /** The compressed network's output (the selected penultimate features), one row per image. */
  features(images: GreyImage[]): Float32Array[] {
    const { size } = this.spec;
    const per = size * size * 3;
    const input = new Float32Array(images.length * per);
    images.forEach((img, i) => input.set(greyToInput(img, this.spec), i * per));
    const out = tf.tidy(() => this.model.predict(tf.tensor4d(input, [images.length, size, size, 3])) as tf.Tensor2D);
    const data = out.dataSync() as Float32Array;
    const d = out.shape[1];
    out.dispose();
    return images.map((_, i) => data.slice(i * d, (i + 1) * d));
  }

  classifyBatch(images: GreyImage[], opts: InputOptions = {}): Prediction[] {
    if (images.length === 0) return [];
    const inputs = images.map((img) => this.prepare(img, opts));
    return this.classifier.predictProba(this.features(inputs)).map((p) => {
      const best = argmax(p);
      return { probabilities: p, classIndex: best, className: this.classes[best] };
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
    this.cam ??= new GradCAM(this.model, this.manifest.model.gradcamLayer);
    const { size } = this.spec;
    const input = tf.tensor4d(greyToInput(image, this.spec), [1, size, size, 3]);
    try {
      const r = this.cam.compute(input, { score: (o) => score(o as tf.Tensor2D), classIndex: target });
      return { ...r, className: this.classes[r.classIndex] };
    } finally {
      input.dispose();
    }
  }

  dispose(): void {
    this.cam?.dispose();
    this.model.dispose();
    this.segmenter?.dispose();
  }
}

export async function loadBundle(fetchBytes: FetchBytes): Promise<BundleModel> {
  return BundleModel.load(fetchBytes);
}
