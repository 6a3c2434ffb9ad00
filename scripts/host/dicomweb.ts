// The embedded DICOMweb source: serves an indexed folder of DICOM files with the QIDO-RS and WADO-RS requests a
// viewer makes (study/series/instance search, metadata, frames in their stored transfer syntax, whole instances).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { DicomJson, DicomJsonAttribute } from './dicom-json.js';
import { jsonString } from './dicom-json.js';
import { repairFrame } from './viewer-fixes.js';
import { instancePath, readInstanceFrame, type DicomFolderIndex, type DicomInstance } from './dicom-folder.js';

const STUDY_KEYS = ['00080005', '00080020', '00080030', '00080050', '00080090', '00100010', '00100020', '00100030',
  '00100040', '0020000D', '00200010', '00081030'];
const SERIES_KEYS = ['00080005', '00080060', '0008103E', '00080021', '00080031', '0020000D', '0020000E', '00200011'];
const INSTANCE_KEYS = ['00080016', '00080018', '0020000D', '0020000E', '00200013', '00280008', '00280010',
  '00280011', '00280100'];

/** Query keywords understood by QIDO searches (besides hex tags). */
const KEYWORDS: Record<string, string> = {
  StudyInstanceUID: '0020000D', SeriesInstanceUID: '0020000E', SOPInstanceUID: '00080018',
  PatientName: '00100010', PatientID: '00100020', AccessionNumber: '00080050', StudyDate: '00080020',
  StudyDescription: '00081030', ModalitiesInStudy: '00080061', Modality: '00080060', StudyID: '00200010',
  SeriesNumber: '00200011', InstanceNumber: '00200013', SeriesDescription: '0008103E',
};
const UID_KEYS = new Set(['0020000D', '0020000E', '00080018']);

function pick(json: DicomJson, keys: string[]): DicomJson {
  const out: DicomJson = {};
  for (const k of keys) if (json[k]) out[k] = json[k];
  return out;
}

function values(attr: DicomJsonAttribute | undefined): string[] {
  return (attr?.Value ?? []).map((v) => (typeof v === 'object' && 'Alphabetic' in v ? String(v.Alphabetic) : String(v)));
}

function wildcard(pattern: string, value: string, caseless: boolean): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, caseless ? 'i' : '').test(value);
}

/** DICOM matching of one query value against an attribute: UID lists, date ranges, wildcards, PN case-insensitive. */
function matches(attr: DicomJsonAttribute | undefined, key: string, query: string): boolean {
  if (query === '' || query === '*') return true;
  const have = values(attr);
  if (UID_KEYS.has(key)) {
    const wanted = query.split(/[\\,]/).map((s) => s.trim());
    return have.some((v) => wanted.includes(v));
  }
  if (attr?.vr === 'DA' && query.includes('-')) {
    const [from, to] = query.split('-');
    return have.some((v) => (!from || v >= from) && (!to || v <= to));
  }
  return have.some((v) => wildcard(query, v, attr?.vr === 'PN' || key === '00080061'));
}

function filterByQuery(items: DicomJson[], url: URL): DicomJson[] {
  let out = items;
  for (const [name, value] of url.searchParams) {
    const key = KEYWORDS[name] ?? (/^[0-9A-Fa-f]{8}$/.test(name) ? name.toUpperCase() : undefined);
    if (!key) continue; // limit, offset, includefield, fuzzymatching, ...
    out = out.filter((j) => matches(j[key], key, value));
  }
  const offset = Math.max(0, parseInt(url.searchParams.get('offset') ?? '0', 10) || 0);
  const limit = parseInt(url.searchParams.get('limit') ?? '', 10);
  return out.slice(offset, Number.isFinite(limit) && limit > 0 ? offset + limit : undefined);
}

function uniqueSorted(xs: (string | undefined)[]): string[] {
  return [...new Set(xs.filter((x): x is string => !!x))].sort();
}

export interface DicomWebSource {
  index: DicomFolderIndex;
  /** Handles a request whose path starts with the mount path; answers 404 for unknown DICOMweb paths. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void;
}

/** Serves `index` under `mountPath` (e.g. `/dicom-web`). */
export function createDicomWebSource(index: DicomFolderIndex, mountPath: string): DicomWebSource {
  const root = mountPath.replace(/\/+$/, '');
  const withUri = (i: DicomInstance): DicomJson => {
    const json = { ...i.json };
    const px = json['7FE00010'];
    if (px) json['7FE00010'] = { ...px, BulkDataURI: `${root}/${instancePath(i)}/frames/1` };
    return json;
  };
  const seriesOf = (study?: string, series?: string) =>
    index.instances.filter((i) => (!study || i.studyUid === study) && (!series || i.seriesUid === series));

  const studyJson = (uid: string): DicomJson => {
    const members = seriesOf(uid);
    const json = pick(members[0].json, STUDY_KEYS);
    json['00080061'] = { vr: 'CS', Value: uniqueSorted(members.map((m) => jsonString(m.json, '00080060'))) };
    json['00201206'] = { vr: 'IS', Value: [new Set(members.map((m) => m.seriesUid)).size] };
    json['00201208'] = { vr: 'IS', Value: [members.length] };
    return json;
  };
  const seriesJson = (study: string, series: string): DicomJson => {
    const members = seriesOf(study, series);
    const json = pick(members[0].json, SERIES_KEYS);
    json['00201209'] = { vr: 'IS', Value: [members.length] };
    return json;
  };

  function sendJson(res: ServerResponse, body: unknown, status = 200): void {
    res.writeHead(status, { 'Content-Type': 'application/dicom+json' });
    res.end(JSON.stringify(body));
  }
  function notFound(res: ServerResponse, what: string): void {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: `not found: ${what}` }));
  }
  function sendMultipart(res: ServerResponse, parts: { type: string; bytes: Uint8Array }[], type: string): void {
    const boundary = randomBytes(12).toString('hex');
    const chunks: Buffer[] = [];
    for (const p of parts) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type}\r\n\r\n`), Buffer.from(p.bytes), Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    const body = Buffer.concat(chunks);
    res.writeHead(200, {
      'Content-Type': `multipart/related; type="${type}"; boundary=${boundary}`,
      'Content-Length': body.length,
    });
    res.end(body);
  }

  function handle(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const rest = url.pathname.slice(root.length).replace(/^\/+|\/+$/g, '');
    const seg = rest.split('/').map((s) => decodeURIComponent(s));
    const [, study, , series, , sop] = seg;
    const shape = seg.map((s, k) => (k % 2 === 0 ? s : '*')).join('/'); // e.g. studies/*/series/*/metadata
    try {
      switch (shape) {
        case 'studies': {
          const uids = uniqueSorted(index.instances.map((i) => i.studyUid));
          return sendJson(res, filterByQuery(uids.map(studyJson), url));
        }
        case 'series': {
          const pairs = uniqueSorted(index.instances.map((i) => `${i.studyUid}|${i.seriesUid}`));
          return sendJson(res, filterByQuery(pairs.map((p) => seriesJson(...(p.split('|') as [string, string]))), url));
        }
        case 'studies/*/series': {
          if (seriesOf(study).length === 0) return notFound(res, `study ${study}`);
          const uids = uniqueSorted(seriesOf(study).map((i) => i.seriesUid));
          return sendJson(res, filterByQuery(uids.map((s) => seriesJson(study!, s)), url));
        }
        case 'studies/*/instances':
        case 'studies/*/series/*/instances': {
          const members = seriesOf(study, series);
          if (members.length === 0) return notFound(res, rest);
          return sendJson(res, filterByQuery(members.map((m) => ({ ...pick(m.json, INSTANCE_KEYS), ...pick(m.json, ['00080060']) })), url));
        }
        case 'studies/*/metadata':
        case 'studies/*/series/*/metadata': {
          const members = seriesOf(study, series);
          if (members.length === 0) return notFound(res, rest);
          return sendJson(res, members.map(withUri));
        }
        case 'studies/*/series/*/instances/*/metadata':
        case 'studies/*/series/*/instances/*': {
          const inst = seriesOf(study, series).find((i) => i.sopUid === sop);
          if (!inst) return notFound(res, rest);
          if (shape.endsWith('metadata')) return sendJson(res, [withUri(inst)]);
          return sendMultipart(res, [{ type: 'application/dicom', bytes: readFileSync(inst.file) }], 'application/dicom');
        }
        case 'studies/*/series/*/instances/*/frames/*': {
          const inst = seriesOf(study, series).find((i) => i.sopUid === sop);
          if (!inst) return notFound(res, rest);
          const numbers = (seg[7] ?? '').split(',').map((s) => parseInt(s, 10));
          if (numbers.some((n) => !(n >= 1 && n <= inst.numberOfFrames))) return notFound(res, `frames ${seg[7]}`);
          const parts = numbers.map((n) => {
            const f = readInstanceFrame(inst, n - 1);
            return { type: `application/octet-stream; transfer-syntax=${f.transferSyntax}`, bytes: repairFrame(f.bytes) };
          });
          return sendMultipart(res, parts, 'application/octet-stream');
        }
        default:
          return notFound(res, rest || '/');
      }
    } catch (err) {
      // A file that changed or broke after indexing must not take the server down.
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    }
  }

  return { index, handle };
}
