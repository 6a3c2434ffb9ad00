import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { maskOutline } from '../../trainer/src/image/outline.js';
import { CONTOUR_COLOUR, contourRgba } from '../../extension/src/lungContour.js';

/** A w × h mask with the given rectangles (x0, y0, x1, y1 inclusive) set to 255. */
function rects(w: number, h: number, boxes: [number, number, number, number][]): Uint8Array {
  const m = new Uint8Array(w * h);
  for (const [x0, y0, x1, y1] of boxes) for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m[y * w + x] = 255;
  return m;
}

const on = (o: Uint8Array, w: number) => [...o.keys()].filter((i) => o[i]).map((i) => [i % w, Math.floor(i / w)]);

describe('maskOutline', () => {
  test('a filled rectangle gives exactly its one-pixel border', () => {
    const w = 10;
    const out = maskOutline(rects(w, 8, [[2, 1, 6, 5]]), w, 8);
    const got = on(out, w);
    // 5 × 5 square: perimeter 16 pixels, all on its border, none inside or outside it.
    assert.equal(got.length, 16);
    for (const [x, y] of got) {
      assert.ok(x! >= 2 && x! <= 6 && y! >= 1 && y! <= 5, `(${x}, ${y}) lies on the square`);
      assert.ok(x === 2 || x === 6 || y === 1 || y === 5, `(${x}, ${y}) is on its edge`);
    }
    assert.ok([...out].every((v) => v === 0 || v === 255));
  });

  test('two lungs give two separate outlines; an empty mask gives none', () => {
    const w = 20;
    const out = maskOutline(rects(w, 10, [[1, 1, 6, 8], [12, 2, 18, 7]]), w, 10);
    assert.equal(on(out, w).length, 2 * (6 + 8) - 4 + 2 * (7 + 6) - 4);
    assert.equal(out[4 * w + 9], 0, 'nothing between the lungs');
    assert.equal(maskOutline(new Uint8Array(20 * 10), w, 10).some((v) => v > 0), false);
  });

  test('a mask touching the image border is closed there', () => {
    const out = maskOutline(new Uint8Array(4 * 3).fill(255), 4, 3);
    assert.deepEqual([...out], [255, 255, 255, 255, 255, 0, 0, 255, 255, 255, 255, 255]);
  });

  test('values up to 127 count as outside (a resized mask)', () => {
    const m = new Uint8Array(9).fill(127);
    m[4] = 128;
    assert.deepEqual([...maskOutline(m, 3, 3)], [0, 0, 0, 0, 255, 0, 0, 0, 0]);
  });

  test('a size mismatch is refused', () => {
    assert.throws(() => maskOutline(new Uint8Array(10), 3, 3), /expected 3 × 3/);
  });
});

describe('contourRgba', () => {
  test('colours the outline green and leaves the rest transparent', () => {
    const w = 6;
    const mask = rects(w, 6, [[1, 1, 4, 4]]);
    const rgba = contourRgba(mask, w, 6);
    assert.equal(rgba.length, w * 6 * 4);
    const edge = maskOutline(mask, w, 6);
    for (let i = 0; i < edge.length; i++) {
      const px = [...rgba.subarray(i * 4, i * 4 + 4)];
      assert.deepEqual(px, edge[i] ? [...CONTOUR_COLOUR] : [0, 0, 0, 0]);
    }
    const [r, g, b] = CONTOUR_COLOUR;
    assert.ok(g > 200 && r < 100 && b < 100, 'the colour is green-dominant');
  });
});
