// JPEG 2000 codestream repair, browser-safe: the trainer's DICOM reader, the viewer host (frames it serves) and
// the viewer itself (frames it decodes, e.g. from files dropped into the page) apply the same rule.

/**
 * Drops markers between the last tile-part and EOC of a raw JPEG 2000 codestream. Some encoders write a COM
 * marker there, which openjpeg rejects ("expected SOT"); tile data is left untouched.
 */
export function trimJ2kTrailer(d: Uint8Array): Uint8Array {
  const u16 = (q: number) => (d[q] << 8) | d[q + 1];
  if (d.length < 4 || u16(0) !== 0xff4f) return d;
  let p = 2;
  while (p + 4 <= d.length && u16(p) !== 0xff90) p += 2 + u16(p + 2); // main header segments
  while (p + 12 <= d.length && u16(p) === 0xff90) {
    const psot = u16(p + 6) * 65536 + u16(p + 8);
    if (psot === 0) return d; // last tile-part runs to EOC
    p += psot;
  }
  if (p + 2 > d.length || u16(p) === 0xffd9 || p < 2) return d;
  const out = new Uint8Array(p + 2);
  out.set(d.subarray(0, p));
  out[p] = 0xff;
  out[p + 1] = 0xd9;
  return out;
}
