// What the host changes so that OHIF shows every real image it serves, for both the embedded folder source and
// the PACS proxy: JPEG 2000 frames with a marker after their last tile-part (OHIF's OpenJPEG decodes nothing from
// them) are served without it, and zero or non-numeric pixel spacings (which give Cornerstone a NaN camera and a
// black viewport) are left out of the metadata, so the viewer falls back to pixel units. The rules are shared with
// the viewer, which applies them in the page to what the host does not serve (extension/src/viewerFixes.ts).
import { usableSpacing } from '../../extension/src/pixelSpacing.js';
import { trimJ2kTrailer } from '../../trainer/src/image/j2k.js';
import type { DicomJson } from './dicom-json.js';

/** Pixel Spacing and Imager Pixel Spacing: Cornerstone builds the image plane (and the camera) from them. */
const SPACING_KEYS = ['00280030', '00181164'];

/**
 * Removes spacing attributes whose values are not two positive finite numbers. Returns the keys removed; the
 * object is changed in place (callers pass their own copy).
 */
export function sanitizeSpacing(json: DicomJson): string[] {
  const removed: string[] = [];
  for (const key of SPACING_KEYS) {
    const attr = json[key];
    if (!attr?.Value) continue;
    if (usableSpacing(attr.Value)) continue;
    delete json[key];
    removed.push(key);
  }
  return removed;
}

/** A DICOMweb metadata answer (an array of instances) with every instance sanitized; other JSON is unchanged. */
export function sanitizeMetadataText(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  if (!Array.isArray(parsed)) return text;
  let changed = false;
  for (const item of parsed) {
    if (item && typeof item === 'object' && sanitizeSpacing(item as DicomJson).length) changed = true;
  }
  return changed ? JSON.stringify(parsed) : text;
}

/** A frame as the viewer's decoders accept it: JPEG 2000 codestreams lose markers between the last tile and EOC. */
export function repairFrame(bytes: Uint8Array): Uint8Array {
  return trimJ2kTrailer(bytes);
}

/**
 * A multipart/related frames answer with each part's body passed through repairFrame. Returns undefined when the
 * body is not the multipart the content type announces (then it is forwarded unchanged).
 */
export function repairMultipartFrames(body: Buffer, contentType: string): Buffer | undefined {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m || !/multipart\/related/i.test(contentType)) return undefined;
  const delimiter = Buffer.from(`--${m[1]}`);
  const out: Buffer[] = [];
  let pos = body.indexOf(delimiter, 0);
  if (pos < 0) return undefined;
  out.push(body.subarray(0, pos));
  let changed = false;
  for (;;) {
    const afterDelimiter = pos + delimiter.length;
    if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') {
      out.push(body.subarray(pos)); // closing delimiter and epilogue
      break;
    }
    const headersEnd = body.indexOf(Buffer.from('\r\n\r\n'), afterDelimiter);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headersEnd < 0 ? afterDelimiter : headersEnd);
    if (headersEnd < 0 || next < 0) return undefined;
    const content = body.subarray(headersEnd + 4, next);
    const fixed = repairFrame(content);
    if (fixed !== content) changed = true;
    out.push(body.subarray(pos, headersEnd + 4), Buffer.from(fixed));
    pos = next + 2; // the CRLF before the delimiter belongs to it
    out.push(Buffer.from('\r\n'));
  }
  return changed ? Buffer.concat(out) : body;
}
