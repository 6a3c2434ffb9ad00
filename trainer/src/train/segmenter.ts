// Training and evaluating the lung segmenter (model/segmenter.ts) on image/mask pairs, split by patient, with
// augmentation, a Dice + BCE loss, best-validation-Dice weights, and held-out Dice / IoU with a figure.
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { csvTable, discoverDataset, maskFinder } from '../data/dataset.js';
import { readGreyImage } from '../data/decode.js';
import { deriveSeed, mulberry32, shuffled } from '../data/rng.js';
import { splitDataset } from '../data/split.js';
import { runGraphFrom } from '../model/graph-run.js';
import { loadLayersModel, saveLayersModel } from '../io/layers-fs.js';
import { resizeGrey, type GreyImage } from '../image/pixels.js';
import {
  buildSegmenter,
  DEFAULT_REFINEMENT,
  lungMaskedImage,
  maskOverlap,
  predictLungProbabilities,
  refineLungMask,
  resizeMask,
  segmenterInput,
  segmenterInputSize,
  segmentLungsBatch,
  type MaskRefinement,
  type Overlap,
} from '../model/segmenter.js';
import { greyCell, imageGrid, markedCell, writeRgbaPng } from '../report/png.js';
import { writeJsonAtomic } from './experiment.js';
import { adam } from './adam.js';
import { ImageSet } from './images.js';
import { DEFAULT_AUGMENTATION, type Augmentation, type SegmenterTrainingDefaults } from './options.js';

// ---------------------------------------------------------------------------------------------------------------
// Data

export interface SegmentationPair {
  image: string;
  mask: string;
  patientId?: string;
}

/**
 * Image/mask pairs of a folder: the ieee8023 CSV layout (`metadata.csv` with filename/patientid/folder columns,
 * masks in `masks/<stem>_mask.png`), the Kaggle layout (`<Class>/images` + `<Class>/masks`), or plain
 * `images/` + `masks/` folders matched by name. Images without a mask are left out.
 */
export async function segmentationPairs(dir: string, opts: { csv?: string } = {}): Promise<SegmentationPair[]> {
  const root = resolve(dir);
  const csvPath = join(root, opts.csv ?? 'metadata.csv');
  const maskOf = await maskFinder(join(root, 'masks'));
  if (opts.csv || existsSync(csvPath)) {
    // Every row with an image and a mask, whatever its finding (discoverCsvDataset keeps mapped findings only).
    const { header, rows } = csvTable(await readFile(csvPath, 'utf8'));
    const [iFile, iPatient, iFolder] = ['filename', 'patientid', 'folder'].map((c) => header.indexOf(c));
    if (iFile < 0) throw new Error(`${csvPath} has no 'filename' column`);
    const seen = new Set<string>();
    const pairs: SegmentationPair[] = [];
    for (const r of rows) {
      const file = (r[iFile] ?? '').trim();
      const image = join(root, (iFolder >= 0 && r[iFolder]?.trim()) || 'images', file);
      const mask = file ? maskOf(basename(file)) : undefined;
      if (!mask || seen.has(image) || !existsSync(image)) continue;
      seen.add(image);
      const patientId = iPatient >= 0 ? r[iPatient]?.trim() : undefined;
      pairs.push({ image, mask, ...(patientId ? { patientId } : {}) });
    }
    return pairs;
  }
  if (existsSync(join(root, 'images')) && existsSync(join(root, 'masks'))) {
    const names = (await readdir(join(root, 'images'))).sort();
    return names.flatMap((n) => {
      const mask = maskOf(n);
      return mask ? [{ image: join(root, 'images', n), mask }] : [];
    });
  }
  const ds = await discoverDataset(root);
  return ds.samples.flatMap((s) => (s.maskPath ? [{ image: s.path, mask: s.maskPath, ...(s.patientId ? { patientId: s.patientId } : {}) }] : []));
}

/** Decoded pairs at size x size (image area-resized, mask resized and binarised to 0/255). */
export interface PairSet {
  pairs: SegmentationPair[];
  images: GreyImage[];
  masks: GreyImage[];
}

export async function loadPairs(pairs: SegmentationPair[], size: number): Promise<PairSet> {
  const images: GreyImage[] = [];
  const masks: GreyImage[] = [];
  for (const p of pairs) {
    images.push(resizeGrey(await readGreyImage(p.image), size, size));
    masks.push(resizeMask(await readGreyImage(p.mask), size, size));
  }
  return { pairs, images, masks };
}

/** Patient-grouped split of pairs (the same patient never appears in two splits). */
export function splitPairs(pairs: SegmentationPair[], seed: number, fractions: [number, number, number] = [0.7, 0.1, 0.2]) {
  const s = splitDataset(
    pairs.map((p) => ({ ...p, label: 0 })),
    { seed, fractions },
  );
  const strip = (xs: (SegmentationPair & { label: number })[]) => xs.map(({ label: _l, ...p }) => p);
  return { train: strip(s.train), val: strip(s.val), test: strip(s.test) };
}

// ---------------------------------------------------------------------------------------------------------------
// Augmentation

/** A random similarity transform + intensity jitter, the same geometry for image and mask (mask: nearest). */
export function augmentPair(image: GreyImage, mask: GreyImage, rand: () => number, a: Augmentation = DEFAULT_AUGMENTATION): [GreyImage, GreyImage] {
  const { width: w, height: h } = image;
  const u = () => 2 * rand() - 1;
  const flip = rand() < a.flip;
  const s = 1 + a.scale * u();
  const theta = (a.rotate * u() * Math.PI) / 180;
  const tx = a.shift * u() * w;
  const ty = a.shift * u() * h;
  const gain = 1 + a.contrast * u();
  const offset = 255 * a.brightness * u();
  const cos = Math.cos(theta) / s;
  const sin = Math.sin(theta) / s;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const img = new Uint8Array(w * h);
  const msk = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Inverse map: output pixel -> source position.
      const ox = (flip ? w - 1 - x : x) - cx - tx;
      const oy = y - cy - ty;
      const sx = cos * ox + sin * oy + cx;
      const sy = -sin * ox + cos * oy + cy;
      const i = y * w + x;
      if (sx < 0 || sy < 0 || sx > w - 1 || sy > h - 1) continue;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(w - 1, x0 + 1);
      const y1 = Math.min(h - 1, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const d = image.data;
      const v =
        (1 - fy) * ((1 - fx) * d[y0 * w + x0] + fx * d[y0 * w + x1]) + fy * ((1 - fx) * d[y1 * w + x0] + fx * d[y1 * w + x1]);
      const g = (v - 127.5) * gain + 127.5 + offset;
      img[i] = g < 0 ? 0 : g > 255 ? 255 : Math.round(g);
      msk[i] = mask.data[Math.round(sy) * w + Math.round(sx)];
    }
  }
  return [
    { width: w, height: h, data: img },
    { width: w, height: h, data: msk },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Training forward pass

/**
 * Runs the model on concrete tensors as fine-tuning does (model/graph-run.ts): its 3x3 convs' gradients then run
 * on the wasm kernels' fast paths (the input gradient as a forward conv), several times faster than tf.layers'
 * own apply on the backend's backprop loops.
 */
export function trainingForward(model: tf.LayersModel, x: tf.Tensor4D): tf.Tensor4D {
  return runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, x as tf.Tensor]]), true)[0] as tf.Tensor4D;
}

/** Mean over the batch of binary cross-entropy + (1 - soft Dice). */
export function diceBceLoss(y: tf.Tensor4D, p: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const eps = 1e-6;
    const pc = tf.clipByValue(p, eps, 1 - eps);
    const bce = tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(pc)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, pc))))));
    const inter = tf.sum(tf.mul(y, p), [1, 2, 3]);
    const denom = tf.add(tf.sum(y, [1, 2, 3]), tf.sum(p, [1, 2, 3]));
    const dice = tf.div(tf.add(tf.mul(2, inter), 1), tf.add(denom, 1));
    return tf.add(bce, tf.sub(1, tf.mean(dice))) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Training

export interface SegmenterTrainOptions extends SegmenterTrainingDefaults {
  log?: (line: string) => void;
}

export interface SegmenterEpoch {
  epoch: number;
  loss: number;
  valDice: number;
  seconds: number;
}

export interface SegmenterTrainResult {
  model: tf.LayersModel;
  history: SegmenterEpoch[];
  bestEpoch: number;
  bestValDice: number;
  seconds: number;
}

function toTensors(images: GreyImage[], masks: GreyImage[], size: number): [tf.Tensor4D, tf.Tensor4D] {
  const per = size * size;
  const x = new Float32Array(images.length * per);
  const y = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    x.set(segmenterInput(img, size), i * per);
    const m = masks[i].data;
    for (let j = 0; j < per; j++) y[i * per + j] = m[j] > 127 ? 1 : 0;
  });
  return [tf.tensor4d(x, [images.length, size, size, 1]), tf.tensor4d(y, [images.length, size, size, 1])];
}

/** Mean Dice at the model's resolution, probabilities thresholded at 0.5 (no post-processing): the quick score. */
export function quickDice(model: tf.LayersModel, set: PairSet): number {
  if (set.images.length === 0) return NaN;
  const size = segmenterInputSize(model);
  const probs = predictLungProbabilities(model, set.images);
  let sum = 0;
  probs.forEach((p, i) => {
    const pred = new Uint8Array(p.length);
    for (let j = 0; j < p.length; j++) pred[j] = p[j] > 0.5 ? 255 : 0;
    sum += maskOverlap({ width: size, height: size, data: pred }, set.masks[i]).dice;
  });
  return sum / probs.length;
}

/**
 * Trains a fresh segmenter on `train` (augmented each epoch) and keeps the weights of the best mean Dice on
 * `val` (on `train` when val is empty).
 */
export async function trainSegmenter(train: PairSet, val: PairSet, o: SegmenterTrainOptions): Promise<SegmenterTrainResult> {
  const log = o.log ?? (() => {});
  const model = buildSegmenter({ inputSize: o.inputSize, filters: o.filters, seed: o.seed });
  const size = o.inputSize;
  const check = (s: PairSet) => s.images.every((im) => im.width === size && im.height === size);
  if (!check(train) || !check(val)) throw new Error(`segmenter pairs must be loaded at ${size} px`);
  const optimizer = adam(o.learningRate);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const evalSet = val.images.length ? val : train;
  const history: SegmenterEpoch[] = [];
  let best = { epoch: 0, dice: -1, weights: [] as tf.Tensor[] };
  const t0 = performance.now();
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const te = performance.now();
    const rand = mulberry32(deriveSeed(o.seed, `segmenter-epoch:${epoch}`));
    const order = shuffled([...train.images.keys()], rand);
    // Cosine decay: large steps early, fine ones late, with no schedule to tune.
    const lr = o.learningRate * 0.5 * (1 + Math.cos((Math.PI * (epoch - 1)) / o.epochs));
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
    let lossSum = 0;
    for (let s = 0; s < order.length; s += o.batchSize) {
      const idx = order.slice(s, s + o.batchSize);
      const pairs = idx.map((i) =>
        o.augmentation ? augmentPair(train.images[i], train.masks[i], rand, o.augmentation) : [train.images[i], train.masks[i]],
      );
      const [x, y] = toTensors(
        pairs.map((p) => p[0]),
        pairs.map((p) => p[1]),
        size,
      );
      const cost = optimizer.minimize(() => diceBceLoss(y, trainingForward(model, x)), true, vars)!;
      lossSum += cost.dataSync()[0] * idx.length;
      tf.dispose([cost, x, y]);
    }
    const valDice = quickDice(model, evalSet);
    const rec = { epoch, loss: lossSum / order.length, valDice, seconds: (performance.now() - te) / 1000 };
    history.push(rec);
    if (valDice > best.dice) {
      tf.dispose(best.weights);
      best = { epoch, dice: valDice, weights: model.getWeights().map((w) => tf.clone(w)) };
    }
    log(`segmenter epoch ${epoch}/${o.epochs}: loss ${rec.loss.toFixed(4)}, ${val.images.length ? 'val' : 'train'} Dice ${valDice.toFixed(4)} (${rec.seconds.toFixed(1)} s)`);
  }
  if (best.weights.length) {
    model.setWeights(best.weights);
    tf.dispose(best.weights);
  }
  optimizer.dispose();
  return { model, history, bestEpoch: best.epoch, bestValDice: best.dice, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// Saved segmenters

export const SEGMENTER_META = 'segmenter.json';

/** What a saved segmenter folder records beside its model.json: enough to use it the same way everywhere. */
export interface SegmenterMeta {
  kind: 'zerovar-lung-segmenter';
  inputSize: number;
  filters: number[];
  refinement: MaskRefinement;
  trainedOn?: string;
  heldOut?: { dice: number; iou: number; n: number };
}

export async function saveSegmenter(model: tf.LayersModel, dir: string, meta: SegmenterMeta): Promise<void> {
  await saveLayersModel(model, dir);
  writeJsonAtomic(join(dir, SEGMENTER_META), meta);
}

export async function loadSegmenter(dir: string): Promise<{ model: tf.LayersModel; meta: SegmenterMeta }> {
  const root = resolve(dir);
  if (!existsSync(join(root, 'model.json'))) throw new Error(`no segmenter at ${root} (model.json missing; train one with 'zerovar segmenter train')`);
  const model = await loadLayersModel(root);
  const metaPath = join(root, SEGMENTER_META);
  const meta: SegmenterMeta = existsSync(metaPath)
    ? (JSON.parse(await readFile(metaPath, 'utf8')) as SegmenterMeta)
    : { kind: 'zerovar-lung-segmenter', inputSize: segmenterInputSize(model), filters: [], refinement: { ...DEFAULT_REFINEMENT } };
  return { model, meta };
}

/** The saved segmenter's files (model.json, weights), as bundle extra files under `prefix`. */
export async function segmenterFiles(dir: string, prefix = 'segmenter/'): Promise<Record<string, Uint8Array>> {
  const root = resolve(dir);
  const json = JSON.parse(await readFile(join(root, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const files: Record<string, Uint8Array> = { [`${prefix}model.json`]: new Uint8Array(await readFile(join(root, 'model.json'))) };
  for (const g of json.weightsManifest ?? []) for (const p of g.paths) files[prefix + p] = new Uint8Array(await readFile(join(root, p)));
  return files;
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

export interface PairScore extends Overlap {
  image: string;
  /** Before post-processing (probabilities > threshold, resized). */
  rawDice: number;
}

export interface SegmenterEvaluation {
  n: number;
  /** Means over images, at each reference mask's own resolution, after post-processing. */
  dice: number;
  iou: number;
  medianDice: number;
  minDice: number;
  /** Mean Dice without post-processing: what refineLungMask adds. */
  rawDice: number;
  perImage: PairScore[];
}

/** Dice / IoU of the segmenter against reference masks, each at the reference's resolution. */
export async function evaluateSegmenter(
  model: tf.LayersModel,
  pairs: SegmentationPair[],
  refinement: Partial<MaskRefinement> = {},
  figure?: { path: string; rows: number },
): Promise<SegmenterEvaluation> {
  const size = segmenterInputSize(model);
  const r = { ...DEFAULT_REFINEMENT, ...refinement };
  const perImage: PairScore[] = [];
  const rows: GreyImage[][] = [];
  for (const p of pairs) {
    const image = await readGreyImage(p.image);
    const ref = resizeMask(await readGreyImage(p.mask), image.width, image.height);
    const [prob] = predictLungProbabilities(model, [image]);
    const probImg = { width: size, height: size, data: prob! };
    const refined = resizeMask(refineLungMask(probImg, r), image.width, image.height);
    const raw = resizeMask(refineLungMask(probImg, { threshold: r.threshold, keepComponents: 0, fillHoles: false, dilation: 0 }), image.width, image.height);
    perImage.push({ image: p.image, ...maskOverlap(refined, ref), rawDice: maskOverlap(raw, ref).dice });
    if (figure && rows.length < figure.rows) rows.push([image, refined, ref]);
  }
  if (figure && rows.length) await writePairFigure(figure.path, rows);
  const dices = perImage.map((s) => s.dice).sort((a, b) => a - b);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return {
    n: perImage.length,
    dice: mean(perImage.map((s) => s.dice)),
    iou: mean(perImage.map((s) => s.iou)),
    medianDice: dices.length ? dices[Math.floor((dices.length - 1) / 2)] : NaN,
    minDice: dices[0] ?? NaN,
    rawDice: mean(perImage.map((s) => s.rawDice)),
    perImage,
  };
}

/** Rows of image | image with the predicted mask (green) | image with the reference mask (magenta). */
export async function writePairFigure(path: string, rows: GreyImage[][], cell = 160): Promise<void> {
  const cells = rows.map(([image, pred, ref]) => {
    const g = resizeGrey(image, cell, cell).data;
    const tint = (m: GreyImage, colour: number[]) => markedCell(g, resizeMask(m, cell, cell).data, colour, [0.55, 0.45]);
    return [greyCell(g), tint(pred, [40, 220, 60]), tint(ref, [230, 40, 200])];
  });
  const grid = imageGrid(cells, cell);
  await writeRgbaPng(path, grid.rgba, grid.width, grid.height);
}

// ---------------------------------------------------------------------------------------------------------------
// The whole job behind `zerovar segmenter train`

export interface SegmenterJob extends Omit<SegmenterTrainOptions, 'log'> {
  dataset: string;
  csv?: string;
  out: string;
  /** Train on at most this many pairs (quick runs); validation and test keep theirs. */
  limit?: number;
  log?: (line: string) => void;
}

export interface SegmenterReport {
  dataset: string;
  pairs: { train: number; val: number; test: number; patients: { train: number; val: number; test: number } };
  options: Omit<SegmenterTrainOptions, 'log'>;
  history: SegmenterEpoch[];
  bestEpoch: number;
  trainSeconds: number;
  test: Omit<SegmenterEvaluation, 'perImage'>;
  perImage: PairScore[];
  figure: string;
}

/** Split by patient, train, evaluate on the held-out patients, save model + segmenter.json + report + figure. */
export async function runSegmenterJob(job: SegmenterJob): Promise<SegmenterReport> {
  const log = job.log ?? (() => {});
  const all = await segmentationPairs(job.dataset, { csv: job.csv });
  if (all.length < 3) throw new Error(`found only ${all.length} image/mask pair(s) in ${job.dataset}; need at least 3`);
  const split = splitPairs(all, job.seed);
  if (job.limit) split.train = split.train.slice(0, job.limit);
  const patients = (xs: SegmentationPair[]) => new Set(xs.map((p, i) => p.patientId ?? `#${i}`)).size;
  log(
    `segmenter data ${resolve(job.dataset)}: ${all.length} pairs; train ${split.train.length} (${patients(split.train)} patients), ` +
      `val ${split.val.length} (${patients(split.val)}), test ${split.test.length} (${patients(split.test)})`,
  );
  const [train, val] = [await loadPairs(split.train, job.inputSize), await loadPairs(split.val, job.inputSize)];
  const { log: _l, dataset: _d, csv: _c, out: _o, limit: _lim, ...options } = job;
  const r = await trainSegmenter(train, val, { ...options, log });
  await mkdir(job.out, { recursive: true });
  const figure = join(resolve(job.out), 'evaluation.png');
  const ev = await evaluateSegmenter(r.model, split.test, DEFAULT_REFINEMENT, { path: figure, rows: 6 });
  log(
    `held-out patients (${ev.n} images): Dice ${ev.dice.toFixed(4)} (median ${ev.medianDice.toFixed(4)}, min ${ev.minDice.toFixed(4)}, ` +
      `without post-processing ${ev.rawDice.toFixed(4)}), IoU ${ev.iou.toFixed(4)}; trained in ${r.seconds.toFixed(0)} s`,
  );
  await saveSegmenter(r.model, job.out, {
    kind: 'zerovar-lung-segmenter',
    inputSize: job.inputSize,
    filters: job.filters,
    refinement: { ...DEFAULT_REFINEMENT },
    trainedOn: job.dataset,
    heldOut: { dice: ev.dice, iou: ev.iou, n: ev.n },
  });
  r.model.dispose();
  const { perImage, ...test } = ev;
  const report: SegmenterReport = {
    dataset: resolve(job.dataset),
    pairs: {
      train: split.train.length,
      val: split.val.length,
      test: split.test.length,
      patients: { train: patients(split.train), val: patients(split.val), test: patients(split.test) },
    },
    options,
    history: r.history,
    bestEpoch: r.bestEpoch,
    trainSeconds: r.seconds,
    test,
    perImage,
    figure: 'evaluation.png',
  };
  await writeFile(join(resolve(job.out), 'report.json'), JSON.stringify(report, null, 2));
  return report;
}

// ---------------------------------------------------------------------------------------------------------------
// Masking a dataset for the masked variant

export interface LoadedSegmenter {
  model: tf.LayersModel;
  meta: SegmenterMeta;
}

/**
 * Lung masks (0/255, at each image's size) for decoded samples: the dataset's own mask where it has one
 * (Sample.maskPath), else the segmenter's prediction. Throws when a mask is needed and no segmenter is given.
 */
export async function lungMasks(
  samples: { path: string; maskPath?: string }[],
  images: GreyImage[],
  segmenter: LoadedSegmenter | null,
): Promise<{ masks: GreyImage[]; fromDataset: number; predicted: number }> {
  const masks: (GreyImage | undefined)[] = new Array(images.length);
  const need: number[] = [];
  for (let i = 0; i < images.length; i++) {
    const mp = samples[i].maskPath;
    if (mp) masks[i] = resizeMask(await readGreyImage(mp), images[i].width, images[i].height);
    else need.push(i);
  }
  if (need.length && !segmenter) {
    throw new Error(`${need.length} image(s) have no lung mask (e.g. ${samples[need[0]].path}) and no segmenter was given (--segmenter DIR)`);
  }
  for (let s = 0; s < need.length; s += 32) {
    const idx = need.slice(s, s + 32);
    const pred = segmentLungsBatch(segmenter!.model, idx.map((i) => images[i]), segmenter!.meta.refinement);
    idx.forEach((i, k) => (masks[i] = pred[k]));
  }
  return { masks: masks as GreyImage[], fromDataset: images.length - need.length, predicted: need.length };
}

/** The set with every image lung-masked (lungMaskedImage), for the masked variant. */
export async function maskImageSet(
  set: ImageSet,
  segmenter: LoadedSegmenter | null,
): Promise<{ set: ImageSet; fromDataset: number; predicted: number }> {
  const { masks, fromDataset, predicted } = await lungMasks(set.samples, set.images, segmenter);
  const images = set.images.map((img, i) => lungMaskedImage(img, masks[i]));
  return { set: new ImageSet(set.samples, images, set.spec), fromDataset, predicted };
}
