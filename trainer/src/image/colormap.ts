// Colour maps for attention overlays, and the blend of an overlay over a grey image, shared by the report figures,
// the viewer's overlay and its saved attention map so all look the same. Browser-safe, and free of tfjs.
import { upsampleCam, type GreyImage } from './pixels.js';

export type Rgb = [number, number, number];

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : Number.isFinite(v) ? v : 0);

/** The classic "jet" colour map: 0 -> dark blue, 0.5 -> green/yellow, 1 -> dark red. Values are 0..255. */
export function jet(v: number): Rgb {
  const t = clamp01(v);
  const channel = (centre: number): number => Math.round(255 * clamp01(1.5 - Math.abs(4 * t - centre)));
  return [channel(3), channel(2), channel(1)];
}

export interface OverlayOptions {
  /** Opacity of fully attended pixels, 0..1. */
  opacity: number;
  /** Attention below this is fully transparent; alpha ramps up over [threshold, 2 * threshold]. Default 0.05. */
  threshold?: number;
  /** Colour map; default `jet`. */
  colormap?: (v: number) => Rgb;
}

/**
 * RGBA pixels (w x h, row-major) for a 0..1 attention map: coloured by the colour map, transparent where the
 * attention is about zero so the image underneath stays readable.
 */
export function camToRgba(cam: ArrayLike<number>, w: number, h: number, opts: OverlayOptions): Uint8ClampedArray {
  if (cam.length !== w * h) throw new Error(`camToRgba: expected ${w * h} values, got ${cam.length}`);
  const threshold = opts.threshold ?? 0.05;
  const colormap = opts.colormap ?? jet;
  const alphaMax = 255 * clamp01(opts.opacity);
  const out = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const v = clamp01(cam[i]);
    const ramp = threshold > 0 ? clamp01((v - threshold) / threshold) : v > 0 ? 1 : 0;
    const [r, g, b] = colormap(v);
    out[i * 4] = r;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = b;
    out[i * 4 + 3] = Math.round(alphaMax * ramp);
  }
  return out;
}

/** A grey image under an RGBA overlay of the same size, alpha-blended (as the viewer draws it): RGBA, opaque. */
export function blendOverGrey(grey: ArrayLike<number>, overlay: ArrayLike<number>): Uint8Array {
  if (overlay.length !== grey.length * 4) throw new Error(`blendOverGrey: ${grey.length} grey pixels, ${overlay.length / 4} overlay pixels`);
  const out = new Uint8Array(grey.length * 4);
  for (let i = 0; i < grey.length; i++) {
    const a = overlay[4 * i + 3] / 255;
    for (let k = 0; k < 3; k++) out[4 * i + k] = Math.round(grey[i] * (1 - a) + overlay[4 * i + k] * a);
    out[4 * i + 3] = 255;
  }
  return out;
}

/**
 * The image in grey with an attention map (0..1 on a camW x camH grid, upsampled to the image) drawn over it in
 * the overlay colours: opaque RGBA at the image's size.
 */
export function attentionOverlay(image: GreyImage, cam: Float32Array, camW: number, camH: number, opacity: number): Uint8Array {
  const { width, height } = image;
  return blendOverGrey(image.data, camToRgba(upsampleCam(cam, camW, camH, width, height), width, height, { opacity }));
}
