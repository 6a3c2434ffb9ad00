// "Save to PACS": the result's SR stored by STOW-RS at the active data source's DICOMweb root (same origin: the
// host's proxy), after a QIDO search for the same instance, so a second save for the same image and model is
// reported rather than silently duplicated. Every outcome is a sentence for the panel; a failure never throws.
import { buildReport, deviceUidFor, reportBytes, reportUids, type ReportContent, type SourceImage } from './srReport.js';

export type SaveOutcome =
  | { kind: 'saved'; sopInstanceUid: string; seriesInstanceUid: string; message: string }
  | { kind: 'duplicate'; sopInstanceUid: string; message: string }
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

/** What an HTTP status from the store means for the user. */
export function storeFailureText(status: number, detail: string): string {
  const why = detail ? `: ${detail}` : '';
  if (status === 502 || status === 503 || status === 504) return `The PACS could not be reached (HTTP ${status})${why}. The result was not saved; it stays on screen.`;
  if (status >= 500) return `The PACS failed to store the report (HTTP ${status})${why}. The result was not saved; it stays on screen.`;
  return `The PACS refused the report (HTTP ${status})${why}. The result was not saved; it stays on screen.`;
}

/** Saves the report under `root` (a DICOMweb root such as /pacs/dicom-web). */
export async function saveReport(
  root: string, source: SourceImage, content: ReportContent, fetchImpl: typeof fetch = fetch, now = new Date(),
): Promise<SaveOutcome> {
  const base = root.replace(/\/+$/, '');
  const uids = await reportUids(source, content);
  const study = encodeURIComponent(source.studyInstanceUid);
  try {
    const q = await fetchImpl(`${base}/studies/${study}/instances?SOPInstanceUID=${uids.sopInstanceUid}`, { headers: { Accept: 'application/dicom+json' } });
    if (q.ok && q.status !== 204) {
      const found = (await q.json().catch(() => [])) as unknown[];
      if (Array.isArray(found) && found.length > 0) {
        return { kind: 'duplicate', sopInstanceUid: uids.sopInstanceUid, message: 'Already saved: the PACS holds this report for this image and model (not saved again).' };
      }
    }
    // A failed search (404 for a study the PACS does not know yet, an old server) is no reason not to store.
  } catch (e) {
    return { kind: 'failed', message: `The PACS could not be reached (${e instanceof Error ? e.message : String(e)}). The result was not saved; it stays on screen.` };
  }
  const bytes = reportBytes(buildReport(source, content, uids, now, await deviceUidFor(content)));
  const { body, contentType } = stowBody(bytes);
  let r: Response;
  try {
    r = await fetchImpl(`${base}/studies/${study}`, {
      method: 'POST', headers: { 'Content-Type': contentType, Accept: 'application/dicom+json' }, body: body as Uint8Array<ArrayBuffer>,
    });
  } catch (e) {
    return { kind: 'failed', message: `The PACS could not be reached (${e instanceof Error ? e.message : String(e)}). The result was not saved; it stays on screen.` };
  }
  if (!r.ok) return { kind: 'failed', message: storeFailureText(r.status, await bodyText(r)) };
  // 200 or 202: a failed SOP sequence (0008,1198) in the answer means this instance was not stored.
  const answer = (await r.json().catch(() => ({}))) as Record<string, { Value?: unknown[] } | undefined>;
  if ((answer['00081198']?.Value?.length ?? 0) > 0) {
    return { kind: 'failed', message: 'The PACS refused the report (listed as failed in its STOW-RS answer). The result was not saved; it stays on screen.' };
  }
  return { kind: 'saved', sopInstanceUid: uids.sopInstanceUid, seriesInstanceUid: uids.seriesInstanceUid, message: 'Saved to the PACS as a DICOM Structured Report in this study.' };
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
