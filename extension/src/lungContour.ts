// The lung contour drawn over the viewport for masked models: the mask's edge pixels (the trainer's maskOutline,
// shared with its figures), coloured as an RGBA layer the overlay stretches over the image (so it follows pan
// and zoom like the attention map).
import { maskOutline } from '@zerovar/trainer/browser';

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
