// The outline of a binary mask, drawn over images wherever the lungs are shown: the viewer's contour layer and
// the bias study's figures. Browser-safe.

/**
 * Edge pixels of a binary mask (> 127 is inside): inside pixels with a 4-neighbour outside the mask or on the
 * image border. Returns 255 on the outline and 0 elsewhere, at the mask's size.
 */
export function maskOutline(mask: ArrayLike<number>, w: number, h: number): Uint8Array {
  if (mask.length !== w * h) throw new Error(`mask has ${mask.length} values, expected ${w} × ${h}`);
  const out = new Uint8Array(w * h);
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] > 127;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!inside(x, y)) continue;
      if (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1)) out[y * w + x] = 255;
    }
  }
  return out;
}
