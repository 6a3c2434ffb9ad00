// The inference worker's lung-mask cache: one segmentation per image and model (pixels compared byte for byte),
// a few images at most, and with the released masked bundle a cached run's input, mask and classification are
// those of an uncached run.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MaskCache, sameGrey, type Segmenting } from '../../extension/src/maskCache.js';
import { decodePng } from '../../trainer/src/data/decode.js';
import type { GreyImage } from '../../trainer/src/image/pixels.js';
import { fsFetcher } from '../../trainer/src/io/bundle-fs.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { projectRoot, sharedPath } from '../helpers/shared.js';

const grey = (width: number, height: number, f: (i: number) => number): GreyImage =>
  ({ width, height, data: Uint8Array.from({ length: width * height }, (_, i) => f(i)) });
const copy = (g: GreyImage): GreyImage => ({ width: g.width, height: g.height, data: g.data.slice() });

/** A masked "model" whose segmenter keeps the left half and counts its calls. */
function fakeModel(masked = true): Segmenting & { calls: number } {
  return {
    masked,
    calls: 0,
    segment(image: GreyImage) {
      this.calls++;
      return grey(image.width, image.height, (i) => (i % image.width < image.width / 2 ? 255 : 0));
    },
  };
}

describe('mask cache', () => {
  const img = grey(7, 5, (i) => (i * 37) % 256); // 35 bytes: eight four-byte words and three more

  test('the same pixels with the same model are segmented once; the second answer is the first', () => {
    const cache = new MaskCache();
    const model = fakeModel();
    const first = cache.input(model, img);
    const again = cache.input(model, copy(img)); // each request brings its own buffer
    assert.equal(model.calls, 1);
    assert.equal(first.cached, false);
    assert.equal(again.cached, true);
    assert.deepEqual(again.image, first.image);
    assert.deepEqual(again.lungMask, first.lungMask);
    assert.equal(first.image.data[6], 0, 'outside the lungs is blanked');
    assert.equal(first.image.data[1], img.data[1], 'inside the lungs is the image');
  });

  test('one changed pixel, another size, another model: segmented again; a raw model never is', () => {
    const cache = new MaskCache(8);
    const model = fakeModel();
    cache.input(model, img);
    const changed = copy(img);
    changed.data[img.data.length - 1] ^= 1; // the last byte: past the four-byte words
    assert.equal(cache.input(model, changed).cached, false);
    const inner = copy(img);
    inner.data[5] ^= 1;
    assert.equal(cache.input(model, inner).cached, false);
    assert.equal(cache.input(model, grey(5, 7, (i) => img.data[i])).cached, false, 'same bytes, another shape');
    const other = fakeModel();
    assert.equal(cache.input(other, img).cached, false, 'another bundle (or the same one loaded again)');
    assert.equal(model.calls, 4);
    const raw = fakeModel(false);
    const r = cache.input(raw, img);
    assert.deepEqual({ calls: raw.calls, cached: r.cached, same: r.image === img, mask: r.lungMask }, { calls: 0, cached: false, same: true, mask: undefined });
  });

  test('bounded: the least recently used image leaves first; clear forgets all', () => {
    const cache = new MaskCache(2);
    const model = fakeModel();
    const [a, b, c] = [1, 2, 3].map((k) => grey(4, 4, (i) => i * k));
    cache.input(model, a);
    cache.input(model, b);
    assert.equal(cache.input(model, a).cached, true, 'a is now the most recent');
    cache.input(model, c); // b leaves
    assert.equal(cache.size, 2);
    assert.equal(cache.input(model, a).cached, true);
    assert.equal(cache.input(model, b).cached, false);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.input(model, a).cached, false);
    assert.throws(() => new MaskCache(0), /room for one image/);
  });

  test('pixels are compared whatever their alignment in the buffer', () => {
    const buf = new Uint8Array(img.data.length + 1);
    buf.set(img.data, 1);
    const shifted = { width: img.width, height: img.height, data: buf.subarray(1) };
    assert.equal(sameGrey(img, shifted), true);
    buf[3] ^= 1;
    assert.equal(sameGrey(img, shifted), false);
  });
});

describe('with the released masked bundle', () => {
  let model: BundleModel;
  let image: GreyImage;
  before(async () => {
    await initBackend();
    model = await BundleModel.load(fsFetcher(join(projectRoot, 'models', 'masked')));
    image = decodePng(new Uint8Array(readFileSync(sharedPath('data', 'covid19-radiography-subset', 'COVID', 'COVID-1000.png'))));
  });

  test('a cached run gives the uncached run\'s masked input, mask and classification', () => {
    assert.ok(model.masked);
    const uncached = new MaskCache().input(model, copy(image));
    const cache = new MaskCache();
    cache.input(model, copy(image));
    const cached = cache.input(model, copy(image));
    assert.equal(cached.cached, true);
    assert.ok(sameGrey(cached.image, uncached.image), 'the same masked input');
    assert.ok(sameGrey(cached.lungMask!, uncached.lungMask!), 'the same lung mask');
    const lung = uncached.lungMask!.data.reduce((n, v) => n + (v ? 1 : 0), 0) / uncached.lungMask!.data.length;
    assert.ok(lung > 0.1 && lung < 0.8, `the segmenter found lungs (${(100 * lung).toFixed(0)} % of the image)`);
    const classify = (input: GreyImage) => model.classify(input, { premasked: true, unmasked: [image] });
    const [a, b] = [classify(uncached.image), classify(cached.image)];
    assert.deepEqual(Array.from(b.probabilities), Array.from(a.probabilities));
    assert.equal(b.classIndex, a.classIndex);
    assert.deepEqual(b.ood, a.ood);
  });
});
