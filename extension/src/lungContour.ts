// The lung contour drawn over the viewport for masked models: the mask's edge pixels, coloured as an RGBA layer
// the overlay stretches over the image (so it follows pan and zoom like the attention map).

/**
 * Edge pixels of a binary mask (> 127 is inside): inside pixels with a 4-neighbour outside the mask or on the
 * image border. Returns 255 on the outline and 0 elsewhere, at the mask's size.
 */
export function maskOutline(mask: Uint8Array, w: number, h: number): Uint8Array {
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

/** Bright green, nearly opaque: visible over both dark and bright parts of a radiograph and over the jet map. */
export const CONTOUR_COLOUR: readonly [number, number, number, number] = [0, 255, 64, 235];

/** The outline of `mask` as RGBA (transparent off the outline), ready for the overlay's contour layer. */
export function contourRgba(mask: Uint8Array, w: number, h: number, colour = CONTOUR_COLOUR): Uint8ClampedArray {
  const edge = maskOutline(mask, w, h);
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < edge.length; i++) {
    if (!edge[i]) continue;
    rgba.set(colour, i * 4);
  }
  return rgba;
}
