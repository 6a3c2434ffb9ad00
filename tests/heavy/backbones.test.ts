import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { loadLayersModel, saveLayersModel } from '../../trainer/src/io/layers-fs.js';
import {
  BACKBONES,
  backboneFromPretrained,
  buildClassifierModel,
  buildVgg16,
  copyWeightsByName,
} from '../../trainer/src/model/backbones.js';
import { defaultWeightsSource, loadPretrained, WEIGHTS_DIR_ENV } from '../../trainer/src/train/weights.js';
import { sharedPath } from '../helpers/shared.js';

const V2_DIR = () => sharedPath('weights', 'mobilenet_v2_0.35_224_notop');
const V1_DIR = () => sharedPath('weights', 'mobilenet_v1_0.25_224');

before(async () => {
  await initBackend();
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

test('buildVgg16 has the Keras layer names and the conv part parameter count', () => {
  const vgg = buildVgg16(32);
  const expected = ['input_1'];
  [2, 2, 3, 3, 3].forEach((convs, b) => {
    for (let c = 1; c <= convs; c++) expected.push(`block${b + 1}_conv${c}`);
    expected.push(`block${b + 1}_pool`);
  });
  assert.deepEqual(
    vgg.layers.map((l) => l.name),
    expected,
  );
  // Keras VGG16(include_top=False).count_params(): 14,714,688 whatever the input size.
  assert.equal(vgg.countParams(), 14_714_688);
  assert.deepEqual(vgg.outputs[0].shape, [null, 1, 1, 512]);
  assert.throws(() => buildVgg16(16), /at least 32 px/);
  vgg.dispose();
});

test('MobileNetV2 0.35 rebuilt at 96 px keeps its weights: [null,3,3,1280]', async () => {
  const pretrained = await loadLayersModel(V2_DIR());
  const b = backboneFromPretrained('mobilenet_v2_0.35', pretrained, 96);
  assert.deepEqual(b.outputs[0].shape, [null, 3, 3, 1280]);
  assert.deepEqual(b.inputs[0].shape, [null, 96, 96, 3]);
  assert.equal(b.countParams(), pretrained.countParams());
  // Same function as the original graph evaluated at 96 px.
  const x = tf.randomUniform([2, 96, 96, 3], -1, 1, 'float32', 7);
  const ours = b.predict(x) as tf.Tensor;
  const ref = pretrained.apply(x) as tf.Tensor;
  assert.ok(maxAbsDiff(ours, ref) < 1e-5);
  // Same size: returned as is.
  assert.equal(backboneFromPretrained('mobilenet_v2_0.35', pretrained), pretrained);
  tf.dispose([x, ours, ref]);
});

test('MobileNet v1 0.25 is cut at conv_pw_13_relu: [null,7,7,256] at 224', async () => {
  const full = await loadLayersModel(V1_DIR());
  assert.deepEqual(full.outputs[0].shape, [null, 1000]);
  const b = backboneFromPretrained('mobilenet_v1_0.25', full);
  assert.deepEqual(b.outputs[0].shape, [null, 7, 7, 256]);
  assert.equal(b.layers.at(-1)!.name, 'conv_pw_13_relu');
  assert.ok(!b.layers.some((l) => l.name === 'conv_preds'));
  const b128 = backboneFromPretrained('mobilenet_v1_0.25', full, 128);
  assert.deepEqual(b128.outputs[0].shape, [null, 4, 4, 256]);
});

test('buildClassifierModel: backbone layers by name, then fc1/fc2/logits/predictions, seeded head', async () => {
  const b = backboneFromPretrained('mobilenet_v2_0.35', await loadLayersModel(V2_DIR()), 96);
  const head = { classes: 3, fc1: 32, fc2: 16, l2: 0.05, seed: 5 };
  const m = buildClassifierModel(b, BACKBONES['mobilenet_v2_0.35'], head);
  const names = m.layers.map((l) => l.name);
  for (const l of b.layers) assert.ok(names.includes(l.name), `missing backbone layer ${l.name}`);
  assert.equal(m.getLayer('Conv1'), b.getLayer('Conv1'), 'backbone layers are shared, not copied');
  assert.deepEqual(names.slice(-5), ['pool', 'fc1', 'fc2', 'logits', 'predictions']);
  assert.deepEqual(m.outputs[0].shape, [null, 3]);
  assert.equal(m.getLayer('logits').losses.length, 1, 'L2 on the logits kernel');
  assert.equal(m.getLayer('fc1').losses.length, 0);
  const x = tf.randomUniform([2, 96, 96, 3], -1, 1, 'float32', 3);
  const p = m.predict(x) as tf.Tensor;
  const sums = tf.sum(p, -1).arraySync() as number[];
  sums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5));
  // Same seed -> same head initialisation; another seed -> another one.
  const again = buildClassifierModel(b, BACKBONES['mobilenet_v2_0.35'], head);
  const other = buildClassifierModel(b, BACKBONES['mobilenet_v2_0.35'], { ...head, seed: 6 });
  assert.equal(maxAbsDiff(m.getLayer('fc1').getWeights()[0], again.getLayer('fc1').getWeights()[0]), 0);
  assert.ok(maxAbsDiff(m.getLayer('fc1').getWeights()[0], other.getLayer('fc1').getWeights()[0]) > 0);
  // Dropout is optional and sits between fc1 and fc2.
  const withDrop = buildClassifierModel(b, BACKBONES['mobilenet_v2_0.35'], { ...head, dropout: 0.5 });
  assert.deepEqual(withDrop.layers.slice(-5).map((l) => l.name), ['fc1', 'dropout', 'fc2', 'logits', 'predictions']);
  tf.dispose([x, p]);
});

test('VGG16 classifier keeps the paper Flatten -> fc1', () => {
  const vgg = buildVgg16(32);
  const m = buildClassifierModel(vgg, BACKBONES.vgg16, { classes: 2, fc1: 8, fc2: 8, l2: 0.05 });
  assert.deepEqual(m.layers.slice(-6).map((l) => l.name), ['block5_pool', 'flatten', 'fc1', 'fc2', 'logits', 'predictions']);
  assert.deepEqual(m.getLayer('fc1').getWeights()[0].shape, [512, 8]);
  m.dispose();
});

test('copyWeightsByName checks shapes and names', () => {
  const a = buildVgg16(32, 1);
  const b = buildVgg16(64, 2);
  assert.deepEqual(copyWeightsByName(a, b, ['block1_conv1']), ['block1_conv1']);
  assert.equal(maxAbsDiff(a.getLayer('block1_conv1').getWeights()[0], b.getLayer('block1_conv1').getWeights()[0]), 0);
  assert.ok(maxAbsDiff(a.getLayer('block1_conv2').getWeights()[0], b.getLayer('block1_conv2').getWeights()[0]) > 0);
  assert.throws(() => copyWeightsByName(a, b, ['no_such']), /no layer named 'no_such'/);
  const small = tf.model({ inputs: a.inputs, outputs: tf.layers.conv2d({ filters: 3, kernelSize: 3, name: 'block1_conv1' }).apply(a.inputs[0]) as tf.SymbolicTensor });
  assert.throws(() => copyWeightsByName(small, b, ['block1_conv1']), /pretrained shape \[3,3,3,3\] does not match \[3,3,3,64\]/);
  a.dispose();
  b.dispose();
});

test('loadPretrained: folder, model.json, none, missing path, offline URL', async () => {
  const fromDir = await loadPretrained('mobilenet_v2_0.35', V2_DIR());
  assert.ok(fromDir);
  assert.deepEqual(fromDir.outputs[0].shape, [null, 7, 7, 1280]);
  const fromJson = await loadPretrained('mobilenet_v1_0.25', join(V1_DIR(), 'model.json'));
  assert.deepEqual(fromJson!.outputs[0].shape, [null, 1000]);
  assert.equal(await loadPretrained('vgg16', 'none'), null);
  await assert.rejects(loadPretrained('mobilenet_v2_0.35', join(tmpdir(), 'zerovar-no-such-weights')), /weights not found at .*zerovar-no-such-weights/);
  // Port 9 (discard) on loopback refuses at once: the message must tell the user what to do.
  await assert.rejects(loadPretrained('mobilenet_v2_0.35', 'http://127.0.0.1:9/model.json'), /could not download .*offline\? pass --weights DIR/);
});

test('default weights: local copy under ZEROVAR_WEIGHTS_DIR, else the public URL; VGG16 needs --weights', () => {
  const weightsRoot = join(V2_DIR(), '..');
  assert.equal(defaultWeightsSource('mobilenet_v2_0.35', { [WEIGHTS_DIR_ENV]: weightsRoot }), join(V2_DIR(), 'model.json'));
  assert.equal(defaultWeightsSource('mobilenet_v1_0.25', { [WEIGHTS_DIR_ENV]: weightsRoot }), join(V1_DIR(), 'model.json'));
  assert.equal(defaultWeightsSource('mobilenet_v1_0.25', {}), BACKBONES['mobilenet_v1_0.25'].defaultWeightsUrl);
  assert.match(defaultWeightsSource('mobilenet_v2_0.35', {})!, /^https:\/\/storage\.googleapis\.com\/.*0\.35_224_no_top\/model\.json$/);
  assert.throws(() => defaultWeightsSource('vgg16', { [WEIGHTS_DIR_ENV]: weightsRoot }), /pass --weights DIR.*--weights none/);
});

test('VGG16 weights are copied by layer name into the Keras topology', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-vgg-'));
  try {
    const src = buildVgg16(32, 11);
    await saveLayersModel(src, dir);
    const loaded = await loadPretrained('vgg16', dir);
    assert.ok(loaded);
    assert.deepEqual(loaded.inputs[0].shape, [null, 32, 32, 3]);
    for (const name of ['block1_conv1', 'block5_conv3']) {
      assert.equal(maxAbsDiff(src.getLayer(name).getWeights()[0], loaded.getLayer(name).getWeights()[0]), 0);
    }
    // A backbone at another size from those weights.
    const at64 = backboneFromPretrained('vgg16', loaded, 64);
    assert.deepEqual(at64.outputs[0].shape, [null, 2, 2, 512]);
    assert.equal(maxAbsDiff(src.getLayer('block3_conv2').getWeights()[1], at64.getLayer('block3_conv2').getWeights()[1]), 0);
    // Something that is not VGG16 is refused with the reason.
    await saveLayersModel(await loadLayersModel(V2_DIR()), join(dir, 'v2'));
    await assert.rejects(loadPretrained('vgg16', join(dir, 'v2')), /does not hold Keras VGG16 weights: .*no layer named 'block1_conv1'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

