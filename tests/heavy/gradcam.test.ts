// Grad-CAM on the ImageNet MobileNet of ../shared/weights: the giant panda's attention falls on the panda.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { loadLayersModel } from '../../trainer/src/io/layers-fs.js';
import { sharedPath } from '../helpers/shared.js';
import { GradCAM } from '../../trainer/src/model/gradcam.js';

before(async () => {
  await initBackend();
});

test('on ImageNet MobileNet, the Grad-CAM of "giant panda" falls on the panda', async () => {
  // The head of this model ends in a 1x1 conv whose fused gradient also needs Conv2DBackpropFilter, which
  // tfjs-wasm lacks; the cpu backend has it.
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    const model = await loadLayersModel(sharedPath('weights', 'mobilenet_v1_0.25_224'));
    const jpg = jpeg.decode(readFileSync(sharedPath('images', 'panda.jpg')), { useTArray: true });
    const x = tf.tidy(() => {
      const rgb = tf.slice(tf.tensor3d(jpg.data, [jpg.height, jpg.width, 4]), [0, 0, 0], [-1, -1, 3]);
      return tf.expandDims(tf.sub(tf.div(tf.image.resizeBilinear(rgb as tf.Tensor3D, [224, 224]), 127.5), 1)) as tf.Tensor4D;
    });
    const gc = new GradCAM(model, 'conv_pw_13_relu');
    const r = gc.compute(x);
    assert.equal(r.classIndex, 388, 'predicted class is giant panda');
    assert.ok(r.scores[388] > 0.8, `p(panda) = ${r.scores[388]}`);
    assert.equal(r.width, 7);
    // The panda fills the middle of the picture (columns ~2-5, rows ~2-5 of the 7x7 grid); its border is grass.
    let inside = 0, outside = 0, nIn = 0, nOut = 0, peak = 0;
    for (let i = 0; i < 49; i++) {
      const [row, col] = [Math.floor(i / 7), i % 7];
      if (row >= 2 && row <= 5 && col >= 2 && col <= 5) {
        inside += r.cam[i];
        nIn++;
      } else {
        outside += r.cam[i];
        nOut++;
      }
      if (r.cam[i] > r.cam[peak]) peak = i;
    }
    const [pr, pc] = [Math.floor(peak / 7), peak % 7];
    assert.ok(pr >= 2 && pr <= 5 && pc >= 2 && pc <= 5, `peak at row ${pr}, column ${pc}`);
    assert.ok(inside / nIn > 3 * (outside / nOut), `mean attention inside ${inside / nIn} vs outside ${outside / nOut}`);
    gc.dispose();
    x.dispose();
    model.dispose();
  } finally {
    await tf.setBackend(previous);
  }
});
