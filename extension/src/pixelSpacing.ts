// The pixel-spacing rule the viewer host and the viewer share: Cornerstone builds an image's plane, and from it
// the camera, from the spacing; a zero, negative or non-numeric one gives a NaN camera and a black viewport (and
// black thumbnails), so such a spacing is left out and the viewer measures in pixels. No imports: the host loads
// this file as it is.

/** Whether a spacing (Pixel Spacing, Imager Pixel Spacing: row \ column) is two positive finite numbers. */
export function usableSpacing(value: unknown): boolean {
  if (!Array.isArray(value) || value.length < 2) return false;
  return value.slice(0, 2).every((v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' ? parseFloat(v) : NaN;
    return Number.isFinite(n) && n > 0;
  });
}
