import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { loadLayersModel } from '../../trainer/src/io/layers-fs.js';
import { BACKBONES, backboneFromPretrained, buildClassifierModel } from '../../trainer/src/model/backbones.js';
import {
  fineTune,
  logitMatching,
  type FineTuneData,
  type FineTuneOptions,
} from '../../trainer/src/train/finetune.js';
import { readCheckpointState } from '../../trainer/src/train/checkpoint.js';
import { resolveSplitLayer, runGraphFrom, splitGraph } from '../../trainer/src/model/graph-run.js';
import { sharedPath } from '../helpers/shared.js';

const SIZE = 96;
const PER_CLASS = 40;
let work: string;
let backbone: tf.LayersModel;
let data: FineTuneData;

/** 8-bit grey X-rays as the pipeline holds them; preprocessed per batch (resize, grey -> RGB, x/127.5-1). */
function loaderFor(images: Uint8Array[], side: number) {
  return (indices: number[]): tf.Tensor4D =>
    tf.tidy(() => {
      const batch = tf.stack(indices.map((i) => tf.tensor3d(images[i], [side, side, 1], 'float32'))) as tf.Tensor4D;
      const resized = tf.image.resizeBilinear(batch, [SIZE, SIZE]);
      return tf.sub(tf.div(tf.tile(resized, [1, 1, 1, 3]), 127.5), 1) as tf.Tensor4D;
    });
}

before(async () => {
  await initBackend();
  work = mkdtempSync(join(tmpdir(), 'zerovar-finetune-'));
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  ['COVID', 'Normal'].forEach((cls, c) => {
    const dir = sharedPath('data', 'covid19-radiography-subset', cls);
    for (const f of readdirSync(dir).sort().slice(0, PER_CLASS)) {
      const png = PNG.sync.read(readFileSync(join(dir, f)));
      assert.equal(png.width, 224);
      const grey = new Uint8Array(png.width * png.height);
      for (let i = 0; i < grey.length; i++) grey[i] = png.data[4 * i];
      images.push(grey);
      labels.push(c);
    }
  });
  // Alternate images between train and val, so both hold both classes.
  const pick = (parity: number) => labels.map((_, i) => i).filter((i) => i % 2 === parity);
  const [tr, va] = [pick(0), pick(1)];
  data = {
    train: { x: loaderFor(tr.map((i) => images[i]), 224), y: tr.map((i) => labels[i]) },
    val: { x: loaderFor(va.map((i) => images[i]), 224), y: va.map((i) => labels[i]) },
  };
  backbone = backboneFromPretrained('mobilenet_v2_0.35', await loadLayersModel(sharedPath('weights', 'mobilenet_v2_0.35_224_notop')), SIZE);
});

after(() => rmSync(work, { recursive: true, force: true }));

function classifier(seed = 1): tf.LayersModel {
  return buildClassifierModel(backbone, BACKBONES['mobilenet_v2_0.35'], { classes: 2, fc1: 64, fc2: 32, l2: 0.05, seed });
}

function options(dir: string, over: Partial<FineTuneOptions> = {}): FineTuneOptions {
  return { epochs: 4, batchSize: 16, learningRate: 1e-3, seed: 3, freezeBackbone: true, checkpointDir: join(work, dir), resume: false, ...over };
}

function accuracy(model: tf.LayersModel, split: FineTuneData['val']): number {
  const x = (split.x as (i: number[]) => tf.Tensor4D)(split.y.map((_, i) => i));
  const pred = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, -1).arraySync() as number[]);
  x.dispose();
  return pred.filter((p, i) => p === split.y[i]).length / split.y.length;
}

test('frozen-backbone split: the cached tensor is the pooled backbone output feeding fc1', () => {
  const m = classifier();
  const s = splitGraph(m, resolveSplitLayer(m, { freezeBackbone: true }));
  assert.equal(s.frontier.length, 1);
  assert.equal(s.frontier[0].sourceLayer.name, 'pool');
  assert.equal(s.frontierIsInput, false);
  assert.deepEqual(s.trainableLayers.map((l) => l.name), ['fc1', 'fc2', 'logits', 'predictions']);
  const all = splitGraph(m, resolveSplitLayer(m, { freezeBackbone: false }));
  assert.equal(all.frontierIsInput, true);
  // Inside a residual block the skip connection is part of the frontier too.
  const res = splitGraph(m, resolveSplitLayer(m, { freezeBackbone: true, trainableFrom: 'block_15_project' }));
  assert.ok(res.frontier.some((t) => t.sourceLayer.name === 'block_14_add'), res.frontier.map((t) => t.name).join());
  assert.throws(() => resolveSplitLayer(m, { freezeBackbone: true, trainableFrom: 'nope' }), /no layer named 'nope'/);
});

test('fine-tuning the head on real X-rays learns, records val accuracy and keeps the best epoch', async () => {
  const model = classifier();
  const nodesBefore = model.layers.map((l) => l.inboundNodes.length);
  const lines: string[] = [];
  const r = await fineTune(model, data, options('learn', { epochs: 6, log: (l) => lines.push(l) }));
  assert.equal(r.model, model);
  assert.equal(r.history.length, 6);
  assert.deepEqual(r.history.map((h) => h.epoch), [1, 2, 3, 4, 5, 6]);
  const last = r.history.at(-1)!;
  assert.ok(last.accuracy > 0.8, `train accuracy ${last.accuracy}`);
  assert.ok(r.history[0].loss > last.loss, 'loss decreases');
  for (const h of r.history) {
    // Validation accuracy is a whole number of the validation images; every epoch takes measurable time.
    const nVal = data.val.y.length;
    assert.ok(Math.abs(h.valAccuracy * nVal - Math.round(h.valAccuracy * nVal)) < 1e-9, `val accuracy ${h.valAccuracy} of ${nVal}`);
    assert.ok(Number.isFinite(h.valLoss) && h.valLoss > 0, `val loss ${h.valLoss}`);
    assert.ok(h.seconds > 0);
  }
  const best = Math.max(...r.history.map((h) => h.valAccuracy));
  assert.equal(r.history[r.bestEpoch - 1].valAccuracy, best);
  assert.equal(r.history.findIndex((h) => h.valAccuracy === best) + 1, r.bestEpoch, 'first best epoch wins');
  // The returned model holds the best epoch's weights: its own val accuracy is that epoch's.
  assert.ok(Math.abs(accuracy(model, data.val) - best) < 1e-9);
  assert.ok(r.cacheSeconds > 0);
  assert.ok(lines.some((l) => /cached frozen activations \[\[1280\]\] for 80 images/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^epoch 6\/6 loss .* val_acc /.test(l)));
  // Training left the graph as it was (no extra inbound nodes): fc2's output is still well defined.
  assert.deepEqual(model.layers.map((l) => l.inboundNodes.length), nodesBefore);
  assert.doesNotThrow(() => model.getLayer('fc2').output);
  const state = await readCheckpointState(join(work, 'learn'));
  assert.equal(state!.epoch, 6);
  assert.equal(state!.bestEpoch, r.bestEpoch);
});

test('distillation fits the teacher\'s logits, not the labels', async () => {
  // A teacher that contradicts the labels: the student can only come to disagree with them by fitting it.
  const n = data.train.y.length;
  const teacherLogits = data.train.y.map((c) => Float32Array.from(c === 0 ? [-2, 2] : [2, -2]));
  const model = classifier(4);
  const lines: string[] = [];
  const r = await fineTune(model, { train: { ...data.train, teacherLogits }, val: data.val }, options('distill', { epochs: 8, learningRate: 3e-3, logitsLayer: 'logits', log: (l) => lines.push(l) }));
  // The recorded loss is the logit matching's, and it falls; training accuracy (against the labels) collapses.
  assert.ok(r.history.at(-1)!.loss < 0.5 * r.history[0].loss, r.history.map((h) => h.loss.toFixed(3)).join(' '));
  assert.ok(r.history.at(-1)!.accuracy < 0.2, `train accuracy against the labels ${r.history.at(-1)!.accuracy}`);
  assert.ok(lines.some((l) => /fitting the teacher's logits/.test(l)), lines.join('\n'));
  // The epoch kept is still the one of best validation accuracy on the labels.
  assert.equal(r.bestEpoch, r.history.findIndex((h) => h.valAccuracy === Math.max(...r.history.map((x) => x.valAccuracy))) + 1);
  // A constant added to a row changes no softmax: the matching ignores it.
  const z = tf.tensor2d([[1, 3], [0.5, -1]]);
  const shifted = tf.add(z, tf.tensor2d([[5], [-2]]));
  assert.ok(logitMatching(z, shifted).dataSync()[0] < 1e-10);
  assert.ok(Math.abs(logitMatching(z, tf.zeros([2, 2])).dataSync()[0] - (1 + 1 + 0.5625 + 0.5625) / 4) < 1e-6);
  // Teacher logits need the logits layer, and one row per training sample.
  await assert.rejects(fineTune(classifier(), { train: { ...data.train, teacherLogits }, val: data.val }, options('distill-bad')), /needs logitsLayer/);
  await assert.rejects(
    fineTune(classifier(), { train: { ...data.train, teacherLogits: teacherLogits.slice(1) }, val: data.val }, options('distill-bad', { logitsLayer: 'logits' })),
    new RegExp(`teacher logits must be ${n} rows of 2 values`),
  );
});

test('resume after an interruption gives the same history and weights as an uninterrupted run', async () => {
  const full = classifier();
  const a = await fineTune(full, data, options('full'));
  const first = classifier();
  const b1 = await fineTune(first, data, options('resume', { epochs: 2 }));
  assert.equal(b1.history.length, 2);
  assert.equal(b1.resumedFrom, undefined);
  // A new process would rebuild the same model (its head init is overwritten by the checkpoint).
  const second = classifier();
  const b2 = await fineTune(second, data, options('resume', { resume: true }));
  assert.equal(b2.resumedFrom, 2);
  assert.equal(b2.history.length, 4);
  const keys = ['loss', 'accuracy', 'valLoss', 'valAccuracy'] as const;
  a.history.forEach((h, i) => {
    for (const k of keys) assert.ok(Math.abs(h[k] - b2.history[i][k]) < 1e-5, `epoch ${i + 1} ${k}: ${h[k]} vs ${b2.history[i][k]}`);
  });
  assert.equal(a.bestEpoch, b2.bestEpoch);
  for (const name of ['fc1', 'fc2', 'logits']) {
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(full.getLayer(name).getWeights()[0], second.getLayer(name).getWeights()[0]))).dataSync()[0]);
    assert.ok(d < 1e-5, `${name} differs by ${d}`);
  }
  // Resuming a finished run trains nothing and restores the best weights.
  const third = classifier(9);
  const b3 = await fineTune(third, data, options('resume', { resume: true }));
  assert.equal(b3.resumedFrom, 4);
  assert.equal(b3.cacheSeconds, 0);
  assert.deepEqual(b3.history, b2.history);
  assert.deepEqual(third.getLayer('logits').getWeights()[0].dataSync(), second.getLayer('logits').getWeights()[0].dataSync());
  // Only the current files remain on disk.
  const files = readdirSync(join(work, 'resume')).sort();
  assert.ok(files.includes('state.json') && files.every((f) => !f.includes('.tmp-')), files.join());
  assert.ok(files.length <= 4, files.join());
});

test('a corrupt or mismatching checkpoint is refused with a clear message', async () => {
  const dir = join(work, 'corrupt');
  await fineTune(classifier(), data, options('corrupt', { epochs: 1 }));
  const state = (await readCheckpointState(dir))!;
  // Changed settings.
  await assert.rejects(fineTune(classifier(), data, options('corrupt', { resume: true, batchSize: 8 })), /different settings \(batchSize\)/);
  // Flipped bytes in the weights.
  const weightsPath = join(dir, state.weights.file);
  const bytes = readFileSync(weightsPath);
  bytes[10] = bytes[10] ^ 0xff;
  writeFileSync(weightsPath, bytes);
  await assert.rejects(fineTune(classifier(), data, options('corrupt', { resume: true })), /corrupt checkpoint in .*corrupt: weights-epoch-0001\.bin does not match its sha256/);
  // A truncated state file.
  writeFileSync(join(dir, 'state.json'), '{"format": "zerovar-finetune-chec');
  await assert.rejects(fineTune(classifier(), data, options('corrupt', { resume: true })), /corrupt checkpoint in .*state\.json is not valid JSON/);
  // Starting over (resume false) replaces it.
  const fresh = await fineTune(classifier(), data, options('corrupt', { epochs: 1 }));
  assert.equal(fresh.history.length, 1);
  assert.equal((await readCheckpointState(dir))!.epoch, 1);
});

test('training conv layers on wasm switches to the cpu backend with a log line', async () => {
  // A tiny conv net keeps the slow cpu gradient kernels quick; seeded, so that its ReLUs are not all dead.
  const input = tf.input({ shape: [8, 8, 3] });
  const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, name: 'c1', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }) }).apply(input) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, name: 'c2', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 12 }) }).apply(c1) as tf.SymbolicTensor;
  const tiny = tf.model({ inputs: input, outputs: c2 });
  const model = buildClassifierModel(tiny, BACKBONES['mobilenet_v2_0.35'], { classes: 2, fc1: 4, fc2: 4, l2: 0, seed: 5 });
  const n = 16;
  const x = Array.from({ length: n }, (_, i) => new Float32Array(8 * 8 * 3).fill(i % 2 ? 0.5 : -0.5));
  const y = x.map((_, i) => i % 2);
  const c2Before = model.getLayer('c2').getWeights()[0].dataSync().slice();
  const c1Before = model.getLayer('c1').getWeights()[0].dataSync().slice();
  const lines: string[] = [];
  const backend = tf.getBackend();
  // initBackend registers wasm gradient kernels for convs; take one away to exercise the fallback.
  const kernel = tf.getKernel('Conv2DBackpropFilter', backend);
  if (backend === 'wasm' && kernel) tf.unregisterKernel('Conv2DBackpropFilter', backend);
  let r;
  try {
    r = await fineTune(model, { train: { x, y }, val: { x, y } }, options('conv', { epochs: 1, batchSize: 8, trainableFrom: 'c2', log: (l) => lines.push(l) }));
  } finally {
    if (backend === 'wasm' && kernel) tf.registerKernel(kernel);
  }
  assert.equal(tf.getBackend(), backend, 'the backend is restored after training');
  if (backend === 'wasm') {
    assert.equal(r.trainBackend, 'cpu');
    assert.ok(lines.some((l) => /no gradient kernel .*Conv2DBackpropFilter.*switching to the cpu backend/.test(l)), lines.join('\n'));
  } else {
    assert.equal(r.trainBackend, backend);
  }
  const c2After = model.getLayer('c2').getWeights()[0].dataSync();
  assert.ok(c2After.some((v, i) => v !== c2Before[i]), 'c2 was trained');
  assert.deepEqual(model.getLayer('c1').getWeights()[0].dataSync(), c1Before, 'c1 stayed frozen');
});

test('micro-batches accumulate into the same updates as whole batches when training through the backbone', async () => {
  // Two identical models trained from the last backbone block: one with whole batches of 16, one with 5+5+5+1.
  // Every classifier() shares the backbone's layer objects: its weights are put back after each run.
  const shared = backbone.layers.slice(backbone.layers.findIndex((l) => l.name === 'block_16_project'));
  const saved = shared.map((l) => l.getWeights().map((w) => w.clone()));
  const run = async (dir: string, microBatchSize?: number) => {
    const m = classifier(7);
    try {
      const r = await fineTune(m, data, options(dir, { epochs: 2, trainableFrom: 'block_16_project', microBatchSize }));
      return { r, weights: m.getLayer('block_16_project').getWeights()[0].dataSync().slice(), fc2: m.getLayer('fc2').getWeights()[0].dataSync().slice() };
    } finally {
      shared.forEach((l, i) => l.setWeights(saved[i]));
    }
  };
  const whole = await run('micro-whole');
  const micro = await run('micro-5', 5);
  const before = classifier(7).getLayer('block_16_project').getWeights()[0].dataSync();
  assert.ok(whole.weights.some((v, i) => Math.abs(v - before[i]) > 1e-6), 'the backbone block was trained');
  // The update's relative error. The sums run in another order, and the native addon's products round a row by
  // where it falls in OpenBLAS's tiles (its place in the batch): so a micro-batch's activations differ from the
  // whole batch's in the last bit, and now and then one crosses a ReLU6 edge. Seen: 0.7 % of the update after 2
  // epochs on one CPU, 7e-7 on another. A wrong weighting moves it by far more: weights of 1 / 4 for the four
  // micro-batches, 61 %; the last micro-batch dropped, 43 %.
  const relErr = (a: ArrayLike<number>, b: ArrayLike<number>, ref: ArrayLike<number>) => {
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) ** 2;
      den += (a[i] - ref[i]) ** 2;
    }
    return Math.sqrt(num / den);
  };
  const fc2Before = classifier(7).getLayer('fc2').getWeights()[0].dataSync();
  assert.ok(relErr(whole.weights, micro.weights, before) < 2e-2, `backbone update error ${relErr(whole.weights, micro.weights, before)}`);
  assert.ok(relErr(whole.fc2, micro.fc2, fc2Before) < 2e-2, `fc2 update error ${relErr(whole.fc2, micro.fc2, fc2Before)}`);
  for (const [a, b] of whole.r.history.map((h, i) => [h, micro.r.history[i]] as const)) {
    assert.ok(Math.abs(a.loss - b.loss) < 2e-3, `loss ${a.loss} vs ${b.loss}`); // the wrong weightings: 0.44, 0.38
    assert.equal(a.accuracy, b.accuracy);
  }
  tf.dispose(saved.flat());
});

test('plain convs and one-op ReLU6 for training: the same values and gradients as the layers, without the unneeded input gradient', async () => {
  const input = tf.input({ shape: [11, 9, 3] });
  const conv = tf.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', useBias: true, name: 'stem', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }), biasInitializer: tf.initializers.constant({ value: 0.1 }) });
  const second = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'valid', name: 'second', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) });
  const capped = tf.layers.reLU({ maxValue: 6 }).apply(conv.apply(input)) as tf.SymbolicTensor; // through relu6Op
  const out = second.apply(capped) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const x = tf.randomUniform([2, 11, 9, 3], -1, 1, 'float32', 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const viaLayers = () => tf.sum(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar;
  const viaPlain = () => tf.sum(tf.square(runGraphFrom([out], new Map([[input.id, x]]), true)[0])) as tf.Scalar;
  const grads = async (f: () => tf.Scalar) => {
    let kernels: string[] = [];
    let result: { value: tf.Scalar; grads: tf.NamedTensorMap } | null = null;
    const info = await tf.profile(() => {
      result = tf.variableGrads(f, vars);
      return [];
    });
    kernels = info.kernels.map((k) => k.name);
    const r = result!;
    const values = await Promise.all(vars.map((v) => r.grads[v.name].data()));
    const value = (await r.value.data())[0];
    tf.dispose([r.value, ...Object.values(r.grads)]);
    return { value, values, backpropInput: kernels.filter((k) => k === 'Conv2DBackpropInput').length };
  };
  const a = await grads(viaLayers);
  const b = await grads(viaPlain);
  assert.ok(Math.abs(a.value - b.value) <= 1e-5 * Math.abs(a.value), `${a.value} vs ${b.value}`);
  a.values.forEach((g, i) => {
    const scale = Math.max(...Array.from(g).map(Math.abs));
    const diff = Array.from(g).reduce((m, v, j) => Math.max(m, Math.abs(v - b.values[i][j])), 0);
    assert.ok(scale > 0 && diff <= 1e-5 * scale, `${vars[i].name}: ${diff} of ${scale}`);
  });
  // With a linear activation (MobileNets' convs, before BatchNorm) tf.layers runs the fused op, which computes dx
  // for both convs; the plain op only for the second (its input depends on the first conv's weights), not for the
  // first, whose input is the image.
  assert.equal(a.backpropInput, 2);
  assert.equal(b.backpropInput, 1);
  x.dispose();
});
