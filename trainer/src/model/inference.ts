// A loaded bundle as one object with classify() and explain(), after tfjs-models' load() habit. The trainer's
// `evaluate`, the end-to-end checks and the viewer's worker all go through this, so a bundle gives the same
// answer everywhere. Browser-safe.
import * as tf from '@tensorflow/tfjs';
import { loadBundleModel, readBundle, type BundleManifest, type FetchBytes } from './bundle.js';
import { classifierFromJSON, classifierScoreFn, type Classifier, type ClassifierJSON } from './classifiers.js';
import { GradCAM, type CamResult } from './gradcam.js';
import { greyToInput, type GreyImage, type InputSpec } from './pixels.js';

/** What the manifest's `classifier` field holds: the deployed classifier and, when that one cannot be
 * differentiated (k-NN, random forest), a linear one on the same features used only to draw attention. */
export interface BundleClassifier {
  deployed: ClassifierJSON;
  explainer?: ClassifierJSON;
}

export interface Prediction {
  probabilities: number[];
  classIndex: number;
  className: string;
}

export interface Explanation extends CamResult {
  /** Class the map explains (the predicted one unless asked otherwise). */
  className: string;
}

export class BundleModel {
  readonly spec: InputSpec;
  private readonly classifier: Classifier;
  private cam: GradCAM | null = null;

  private constructor(
    readonly manifest: BundleManifest,
    readonly model: tf.LayersModel,
    private readonly classifiers: BundleClassifier,
  ) {
    this.spec = { size: manifest.input.size, normalization: manifest.input.normalization };
    this.classifier = classifierFromJSON(classifiers.deployed);
  }

  /** Reads and verifies every file of the bundle, then loads its model. */
  static async load(fetchBytes: FetchBytes): Promise<BundleModel> {
    const bundle = await readBundle(fetchBytes);
    const model = await loadBundleModel(bundle);
    return new BundleModel(bundle.manifest, model, bundle.manifest.classifier as BundleClassifier);
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

  classifyBatch(images: GreyImage[]): Prediction[] {
    if (images.length === 0) return [];
    return this.classifier.predictProba(this.features(images)).map((p) => {
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
      return { probabilities: p, classIndex: best, className: this.classes[best]! };
    });
  }

  classify(image: GreyImage): Prediction {
    return this.classifyBatch([image])[0]!;
  }

  /** Grad-CAM of the bundle's Grad-CAM layer for `classIndex` (default: the predicted class). */
  explain(image: GreyImage, classIndex?: number): Explanation {
    const target = classIndex ?? this.classify(image).classIndex;
    const json = this.classifiers.explainer ?? this.classifiers.deployed;
    const score = classifierScoreFn(json);
    if (!score) throw new Error(`the ${json.kind} classifier cannot be explained by gradients and the bundle has no explainer`);
    this.cam ??= new GradCAM(this.model, this.manifest.model.gradcamLayer);
    const { size } = this.spec;
    const input = tf.tensor4d(greyToInput(image, this.spec), [1, size, size, 3]);
    try {
      const r = this.cam.compute(input, { score: (o) => score(o as tf.Tensor2D), classIndex: target });
      return { ...r, className: this.classes[r.classIndex]! };
    } finally {
      input.dispose();
    }
  }

  dispose(): void {
    this.cam?.dispose();
    this.model.dispose();
  }
}

export async function loadBundle(fetchBytes: FetchBytes): Promise<BundleModel> {
  return BundleModel.load(fetchBytes);
}
