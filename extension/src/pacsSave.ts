// "Save to PACS": the result's SR stored by STOW-RS at the active data source's DICOMweb root (same origin: the
// host's proxy), after a QIDO search for the same instance, so a second save for the same image and model is
// reported rather than silently duplicated; then the attention map as a Secondary Capture beside it, the same
// way. Every outcome is a sentence for the panel; a failure never throws.
import type { GreyImage } from '@zerovar/trainer/browser';
import { buildCapture, captureBytes, capturePixels, captureUids, type Attention, type CaptureContent } from './attentionCapture.js';
import { buildReport, deviceUidFor, reportBytes, reportUids, type ReportContent, type SourceImage } from './srReport.js';

export type SaveOutcome =
  | { kind: 'saved'; sopInstanceUid: string; seriesInstanceUid: string; message: string; capture?: CaptureOutcome }
  | { kind: 'duplicate'; sopInstanceUid: string; message: string; capture?: CaptureOutcome }
  | { kind: 'failed'; message: string };

const BOUNDARY = 'zerovar-sr-boundary-7d3f';

/** A multipart/related body holding one application/dicom part. */
export function stowBody(part10: ArrayBuffer): { body: Uint8Array; contentType: string } {
  const enc = new TextEncoder();
  const head = enc.encode(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`);
  const tail = enc.encode(`\r\n--${BOUNDARY}--\r\n`);
  const body = new Uint8Array(head.length + part10.byteLength + tail.length);
  body.set(head, 0);
  body.set(new Uint8Array(part10), head.length);
  body.set(tail, head.length + part10.byteLength);
  return { body, contentType: `multipart/related; type="application/dicom"; boundary=${BOUNDARY}` };
}

async function bodyText(r: Response): Promise<string> {
  try {
    return (await r.text()).replace(/\s+/g, ' ').trim().slice(0, 200);
  } catch {
    return '';
  }
}

/** What an HTTP status from the store means for the user; `what`: "the report", "the attention map". */
export function storeFailureText(status: number, detail: string, what = 'the report'): string {
  const why = detail ? `: ${detail}` : '';
  const kept = what === 'the report' ? 'The result was not saved; it stays on screen.' : 'It was not saved.';
  if (status === 502 || status === 503 || status === 504) return `The PACS could not be reached (HTTP ${status})${why}. ${kept}`;
  if (status >= 500) return `The PACS failed to store ${what} (HTTP ${status})${why}. ${kept}`;
  return `The PACS refused ${what} (HTTP ${status})${why}. ${kept}`;
}

/** How one store of one instance went. */
type Stored =
  | { kind: 'stored' }
  | { kind: 'duplicate' }
  | { kind: 'unreachable'; why: string }
  | { kind: 'refused'; status: number; detail: string }
  | { kind: 'listed-failed' };

/**
 * Stores one Part 10 instance in its study by STOW-RS under `base`, after a QIDO search for the same SOP Instance
 * UID (found: a duplicate, nothing stored). The one store of the report and of the attention map alike.
 */
async function storeOnce(base: string, studyUid: string, sopInstanceUid: string, bytes: () => ArrayBuffer, fetchImpl: typeof fetch): Promise<Stored> {
  const study = encodeURIComponent(studyUid);
  try {
    const q = await fetchImpl(`${base}/studies/${study}/instances?SOPInstanceUID=${sopInstanceUid}`, { headers: { Accept: 'application/dicom+json' } });
    if (q.ok && q.status !== 204) {
      const found = (await q.json().catch(() => [])) as unknown[];
      if (Array.isArray(found) && found.length > 0) return { kind: 'duplicate' };
    }
    // A failed search (404 for a study the PACS does not know yet, an old server) is no reason not to store.
  } catch (e) {
    return { kind: 'unreachable', why: e instanceof Error ? e.message : String(e) };
  }
  const { body, contentType } = stowBody(bytes());
  let r: Response;
  try {
    r = await fetchImpl(`${base}/studies/${study}`, {
      method: 'POST', headers: { 'Content-Type': contentType, Accept: 'application/dicom+json' }, body: body as Uint8Array<ArrayBuffer>,
    });
  } catch (e) {
    return { kind: 'unreachable', why: e instanceof Error ? e.message : String(e) };
  }
  if (!r.ok) return { kind: 'refused', status: r.status, detail: await bodyText(r) };
  // 200 or 202: a failed SOP sequence (0008,1198) in the answer means this instance was not stored.
  const answer = (await r.json().catch(() => ({}))) as Record<string, { Value?: unknown[] } | undefined>;
  return (answer['00081198']?.Value?.length ?? 0) > 0 ? { kind: 'listed-failed' } : { kind: 'stored' };
}

/** Saves the report under `root` (a DICOMweb root such as /pacs/dicom-web). */
export async function saveReport(
  root: string, source: SourceImage, content: ReportContent, fetchImpl: typeof fetch = fetch, now = new Date(),
): Promise<SaveOutcome> {
  const uids = await reportUids(source, content);
  const deviceUid = await deviceUidFor(content);
  const r = await storeOnce(root.replace(/\/+$/, ''), source.studyInstanceUid, uids.sopInstanceUid,
    () => reportBytes(buildReport(source, content, uids, now, deviceUid)), fetchImpl);
  switch (r.kind) {
    case 'duplicate':
      return { kind: 'duplicate', sopInstanceUid: uids.sopInstanceUid, message: 'Already saved: the PACS holds this report for this image and model (not saved again).' };
    case 'unreachable':
      return { kind: 'failed', message: `The PACS could not be reached (${r.why}). The result was not saved; it stays on screen.` };
    case 'refused':
      return { kind: 'failed', message: storeFailureText(r.status, r.detail) };
    case 'listed-failed':
      return { kind: 'failed', message: 'The PACS refused the report (listed as failed in its STOW-RS answer). The result was not saved; it stays on screen.' };
    case 'stored':
      return { kind: 'saved', sopInstanceUid: uids.sopInstanceUid, seriesInstanceUid: uids.seriesInstanceUid, message: 'Saved to the PACS as a DICOM Structured Report in this study.' };
  }
}

/** How the attention map's store went (after the report's). */
export type CaptureOutcome =
  | { kind: 'saved' | 'duplicate'; sopInstanceUid: string; message: string }
  | { kind: 'failed'; message: string };

/** Saves the attention map over `grey` (the displayed image) as a Secondary Capture beside the report. */
export async function saveCapture(
  root: string, source: SourceImage, content: CaptureContent, attention: Attention, grey: GreyImage,
  fetchImpl: typeof fetch = fetch, now = new Date(),
): Promise<CaptureOutcome> {
  const uids = await captureUids(source, content);
  const r = await storeOnce(root.replace(/\/+$/, ''), source.studyInstanceUid, uids.sopInstanceUid,
    () => captureBytes(buildCapture(source, content, attention, capturePixels(grey, attention), uids, now)), fetchImpl);
  switch (r.kind) {
    case 'duplicate':
      return { kind: 'duplicate', sopInstanceUid: uids.sopInstanceUid, message: 'The attention map was saved before (not saved again).' };
    case 'unreachable':
      return { kind: 'failed', message: `The attention map could not be saved: the PACS could not be reached (${r.why}).` };
    case 'refused':
      return { kind: 'failed', message: storeFailureText(r.status, r.detail, 'the attention map') };
    case 'listed-failed':
      return { kind: 'failed', message: 'The PACS refused the attention map (listed as failed in its STOW-RS answer). It was not saved.' };
    case 'stored':
      return { kind: 'saved', sopInstanceUid: uids.sopInstanceUid, message: 'The attention map was saved beside it as a DICOM Secondary Capture.' };
  }
}

type Meta = Record<string, unknown> | undefined;
const first = (v: unknown): unknown => (Array.isArray(v) ? v[0] : v);
const textOf = (v: unknown): string | undefined => {
  const x = first(v);
  if (x && typeof x === 'object' && 'Alphabetic' in x) return String((x as { Alphabetic: unknown }).Alphabetic ?? '') || undefined;
  return x === undefined || x === null || x === '' ? undefined : String(x);
};

/** The source image's identity and patient/study attributes from OHIF's naturalized instance metadata. */
export function sourceFromInstance(meta: Meta): SourceImage {
  const uid = (k: string) => {
    const v = textOf(meta?.[k]);
    if (!v) throw new Error(`the displayed image has no ${k}: nothing to reference from a report`);
    return v;
  };
  return {
    studyInstanceUid: uid('StudyInstanceUID'), seriesInstanceUid: uid('SeriesInstanceUID'),
    sopInstanceUid: uid('SOPInstanceUID'), sopClassUid: uid('SOPClassUID'),
    patientName: textOf(meta?.PatientName), patientId: textOf(meta?.PatientID), patientBirthDate: textOf(meta?.PatientBirthDate),
    patientSex: textOf(meta?.PatientSex), studyDate: textOf(meta?.StudyDate), studyTime: textOf(meta?.StudyTime),
    studyId: textOf(meta?.StudyID), accessionNumber: textOf(meta?.AccessionNumber), referringPhysicianName: textOf(meta?.ReferringPhysicianName),
  };
}

/**
 * Where the active data source takes a report: its DICOMweb root when it accepts stores (OHIF's own
 * `dicomUploadEnabled` flag), otherwise why saving is unavailable.
 */
export function storeTarget(config: Meta): { root: string } | { unavailable: string } {
  if (!config) return { unavailable: 'Saving is unavailable: no DICOMweb data source is active.' };
  const root = textOf(config.wadoRoot);
  if (!root) return { unavailable: 'Saving is unavailable: the data source is not a DICOMweb server.' };
  if (config.dicomUploadEnabled !== true) {
    return { unavailable: 'Saving is unavailable: this data source (a read-only DICOM folder) does not accept stores; open the study from a PACS.' };
  }
  return { root };
}
