// The result as a DICOM Structured Report: a Comprehensive SR whose content tree is laid out like TID 1500's (as
// OHIF's own SR export does: language, device observer context, procedure reported, image library, then the
// evaluations), holding the algorithm's name, version and bundle checksum, the model variant and task, the
// per-class probabilities, the predicted class, the out-of-distribution verdict, the research-use notice and a
// reference to the source image. Its title is its own, not TID 1500's "Imaging Measurement Report": OHIF opens a
// report under that title in its measurement viewport, which draws only image-referenced spatial measurements and
// showed ours as an empty viewport; under any other title it shows the content tree as text. Its UIDs derive from
// the source image and the bundle, so saving the same result twice names the same instance (a duplicate can be
// found and refused). Pure: dataset building, Part 10 bytes (dcmjs) and reading a saved report back, with no
// viewer or network in it.
import dcmjs from 'dcmjs';

export const COMPREHENSIVE_SR = '1.2.840.10008.5.1.4.1.1.88.33';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
/** This software's implementation class UID (a UUID-derived 2.25 UID, fixed once). */
const IMPLEMENTATION_UID = '2.25.252306438580016986181247236573599623059';
const SCHEME = '99ZEROVAR';
export const RESEARCH_NOTICE = 'Research use only: not a medical device, not for diagnosis. Produced by a research model; not a finding.';

/** The source image's identity and the patient and study attributes the report repeats. */
export interface SourceImage {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  patientName?: string;
  patientId?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyDate?: string;
  studyTime?: string;
  studyId?: string;
  accessionNumber?: string;
  referringPhysicianName?: string;
}

/** What the panel showed for that image. */
export interface ReportContent {
  algorithmName: string;
  algorithmVersion: string;
  /** SHA-256 (hex) of the bundle's manifest.json, which lists every other file's checksum. */
  bundleSha256: string;
  variant: string;
  task: string;
  classes: string[];
  probabilities: number[];
  predicted: string;
  /** The guard's verdict; undefined for a bundle without a guard. */
  ood?: { score: number; threshold: number; flagged: boolean };
  /** A flagged result the user chose to see anyway (research). */
  shownAnyway: boolean;
}

export interface ReportUids {
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

type Code = { CodeValue: string; CodingSchemeDesignator: string; CodeMeaning: string };
type Item = Record<string, unknown>;
const code = (CodeValue: string, CodingSchemeDesignator: string, CodeMeaning: string): Code => ({ CodeValue, CodingSchemeDesignator, CodeMeaning });

export const CODES = {
  report: code('ZVR01', SCHEME, 'COVID-19 chest X-ray classification (research)'),
  language: code('121049', 'DCM', 'Language of Content Item and Descendants'),
  english: code('en-US', 'RFC5646', 'English (United States)'),
  observerType: code('121005', 'DCM', 'Observer Type'),
  device: code('121007', 'DCM', 'Device'),
  deviceUid: code('121012', 'DCM', 'Device Observer UID'),
  deviceName: code('121013', 'DCM', 'Device Observer Name'),
  deviceManufacturer: code('121014', 'DCM', 'Device Observer Manufacturer'),
  deviceModel: code('121015', 'DCM', 'Device Observer Model Name'),
  procedure: code('121058', 'DCM', 'Procedure reported'),
  chestXray: code('399208008', 'SCT', 'Plain chest X-ray'),
  imageLibrary: code('111028', 'DCM', 'Image Library'),
  sourceImage: code('121324', 'DCM', 'Source Image'),
  evaluations: code('C0034375', 'UMLS', 'Qualitative Evaluations'),
  algorithmName: code('111001', 'DCM', 'Algorithm Name'),
  algorithmVersion: code('111003', 'DCM', 'Algorithm Version'),
  comment: code('121106', 'DCM', 'Comment'),
  bundleSha256: code('ZV001', SCHEME, 'Model bundle SHA-256 (manifest.json)'),
  variant: code('ZV002', SCHEME, 'Model variant'),
  task: code('ZV003', SCHEME, 'Model task'),
  predicted: code('ZV004', SCHEME, 'Predicted class'),
  oodVerdict: code('ZV005', SCHEME, 'Out-of-distribution verdict'),
  oodScore: code('ZV006', SCHEME, 'Out-of-distribution score'),
  oodThreshold: code('ZV007', SCHEME, 'Out-of-distribution threshold'),
  // Units as OHIF's text view shows them after the value (its CodeValue): a probability in percent, the guard's
  // score as the distance it is (UCUM's annotation syntax; "1", no units, read as a stray digit there).
  percent: code('%', 'UCUM', 'percent'),
  distance: code('{distance}', 'UCUM', 'Mahalanobis distance'),
} as const;

/** The concept name of a class's probability: one code per class index, its meaning naming the class. */
const probabilityCode = (i: number, cls: string) => code(`ZVP${i}`, SCHEME, `Probability of ${cls}`.slice(0, 64));

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

/** A 2.25 UID from the first 128 bits of a SHA-256: the same inputs always give the same UID. */
export async function derivedUid(text: string): Promise<string> {
  const h = await sha256(text);
  let n = 0n;
  for (const b of h.subarray(0, 16)) n = (n << 8n) | BigInt(b);
  return `2.25.${n.toString()}`;
}

/**
 * The report's UIDs: one series per study and bundle, one instance per source image and bundle. The same image
 * and model give the same instance UID, so a second save is recognised rather than silently duplicated.
 */
export async function reportUids(source: SourceImage, content: Pick<ReportContent, 'bundleSha256'>): Promise<ReportUids> {
  return {
    seriesInstanceUid: await derivedUid(`zerovar-sr-series|${source.studyInstanceUid}|${content.bundleSha256}`),
    sopInstanceUid: await derivedUid(`zerovar-sr|${source.sopInstanceUid}|${content.bundleSha256}`),
  };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** A DICOM DA and TM of a moment (local time). Shared by the SR and the attention map's Secondary Capture. */
export const dicomDate = (d: Date) => `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}`;
export const dicomTime = (d: Date) => `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;

/** The research-use notice a saved object carries, saying so when a flagged result was shown anyway. */
export function researchNotice(shownAnyway: boolean): string {
  return shownAnyway ? `${RESEARCH_NOTICE} Shown anyway although flagged out of distribution.` : RESEARCH_NOTICE;
}
/** A decimal string within DS's 16 characters. */
const ds = (x: number) => String(Number(x.toPrecision(6)));

const text = (rel: string, concept: Code, value: string): Item => ({ RelationshipType: rel, ValueType: 'TEXT', ConceptNameCodeSequence: [concept], TextValue: value });
const codeItem = (rel: string, concept: Code, value: Code): Item => ({ RelationshipType: rel, ValueType: 'CODE', ConceptNameCodeSequence: [concept], ConceptCodeSequence: [value] });
const num = (concept: Code, value: number, units: Code): Item => ({
  RelationshipType: 'CONTAINS', ValueType: 'NUM', ConceptNameCodeSequence: [concept],
  MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [units], NumericValue: ds(value) }],
});

export function oodVerdictWords(ood: ReportContent['ood']): string {
  if (!ood) return 'no guard: this bundle has no out-of-distribution guard';
  return ood.flagged ? 'flagged: out of distribution (the result must not be read as a finding)' : 'accepted: in distribution';
}

/** The Patient and General Study modules of a derived object: repeated from the source image (type 2 attributes
 * empty when it has none). Shared by the SR and the attention map's Secondary Capture. */
export function patientAndStudy(source: SourceImage): Item {
  return {
    PatientName: source.patientName ? [{ Alphabetic: source.patientName }] : '',
    PatientID: source.patientId ?? '',
    PatientBirthDate: source.patientBirthDate ?? '',
    PatientSex: source.patientSex ?? '',
    StudyInstanceUID: source.studyInstanceUid,
    StudyDate: source.studyDate ?? '',
    StudyTime: source.studyTime ?? '',
    ReferringPhysicianName: source.referringPhysicianName ? [{ Alphabetic: source.referringPhysicianName }] : '',
    StudyID: source.studyId ?? '',
    AccessionNumber: source.accessionNumber ?? '',
  };
}

/** The naturalized (dcmjs) dataset of the report. */
export function buildReport(source: SourceImage, content: ReportContent, uids: ReportUids, now: Date, deviceUid: string): Item {
  if (content.classes.length !== content.probabilities.length) throw new Error('one probability per class is needed');
  const evaluations: Item[] = [
    text('CONTAINS', CODES.algorithmName, content.algorithmName),
    text('CONTAINS', CODES.algorithmVersion, content.algorithmVersion),
    text('CONTAINS', CODES.bundleSha256, content.bundleSha256),
    text('CONTAINS', CODES.variant, content.variant),
    text('CONTAINS', CODES.task, content.task),
    ...content.classes.map((c, i) => num(probabilityCode(i, c), 100 * (content.probabilities[i] ?? 0), CODES.percent)),
    text('CONTAINS', CODES.predicted, content.predicted),
    text('CONTAINS', CODES.oodVerdict, oodVerdictWords(content.ood)),
    ...(content.ood ? [num(CODES.oodScore, content.ood.score, CODES.distance), num(CODES.oodThreshold, content.ood.threshold, CODES.distance)] : []),
    text('CONTAINS', CODES.comment, researchNotice(content.shownAnyway)),
  ];
  const image: Item = {
    RelationshipType: 'CONTAINS', ValueType: 'IMAGE', ConceptNameCodeSequence: [CODES.sourceImage],
    ReferencedSOPSequence: [{ ReferencedSOPClassUID: source.sopClassUid, ReferencedSOPInstanceUID: source.sopInstanceUid }],
  };
  const d = dicomDate(now);
  const t = dicomTime(now);
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: COMPREHENSIVE_SR,
    SOPInstanceUID: uids.sopInstanceUid,
    InstanceCreationDate: d,
    InstanceCreationTime: t,
    CodingSchemeIdentificationSequence: [{ CodingSchemeDesignator: SCHEME, CodingSchemeName: 'zerovar research model codes', CodingSchemeResponsibleOrganization: 'zerovar' }],
    // Patient and General Study: repeated from the source image (type 2: empty when it has none).
    ...patientAndStudy(source),
    // SR Document Series and General Equipment.
    Modality: 'SR',
    SeriesInstanceUID: uids.seriesInstanceUid,
    SeriesNumber: '9901',
    SeriesDescription: `zerovar ${content.variant} result (research)`.slice(0, 64),
    SeriesDate: d,
    SeriesTime: t,
    ReferencedPerformedProcedureStepSequence: [],
    Manufacturer: 'zerovar (research)',
    ManufacturerModelName: content.algorithmName.slice(0, 64),
    SoftwareVersions: content.algorithmVersion.slice(0, 64),
    // SR Document General.
    InstanceNumber: '1',
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ContentDate: d,
    ContentTime: t,
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [{
      StudyInstanceUID: source.studyInstanceUid,
      ReferencedSeriesSequence: [{
        SeriesInstanceUID: source.seriesInstanceUid,
        ReferencedSOPSequence: [{ ReferencedSOPClassUID: source.sopClassUid, ReferencedSOPInstanceUID: source.sopInstanceUid }],
      }],
    }],
    // SR Document Content: the root container and its tree.
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [CODES.report],
    ContinuityOfContent: 'SEPARATE',
    ContentSequence: [
      codeItem('HAS CONCEPT MOD', CODES.language, CODES.english),
      codeItem('HAS OBS CONTEXT', CODES.observerType, CODES.device),
      { RelationshipType: 'HAS OBS CONTEXT', ValueType: 'UIDREF', ConceptNameCodeSequence: [CODES.deviceUid], UID: deviceUid },
      text('HAS OBS CONTEXT', CODES.deviceName, content.algorithmName),
      text('HAS OBS CONTEXT', CODES.deviceManufacturer, 'zerovar (research)'),
      text('HAS OBS CONTEXT', CODES.deviceModel, `${content.algorithmName} ${content.variant}`),
      codeItem('HAS CONCEPT MOD', CODES.procedure, CODES.chestXray),
      { RelationshipType: 'CONTAINS', ValueType: 'CONTAINER', ConceptNameCodeSequence: [CODES.imageLibrary], ContinuityOfContent: 'SEPARATE', ContentSequence: [image] },
      { RelationshipType: 'CONTAINS', ValueType: 'CONTAINER', ConceptNameCodeSequence: [CODES.evaluations], ContinuityOfContent: 'SEPARATE', ContentSequence: evaluations },
    ],
  };
}

/** The device observer UID of an algorithm's bundle (one per bundle). */
export function deviceUidFor(content: Pick<ReportContent, 'bundleSha256'>): Promise<string> {
  return derivedUid(`zerovar-device|${content.bundleSha256}`);
}

/** A naturalized dataset as a DICOM Part 10 file (explicit VR little endian), naming this software's version. */
export function part10Bytes(dataset: Item, versionName: string): ArrayBuffer {
  const { data } = dcmjs;
  const meta = data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: [new Uint8Array([0, 1]).buffer],
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: IMPLEMENTATION_UID,
    ImplementationVersionName: versionName,
  });
  const dict = new data.DicomDict(meta);
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return dict.write();
}

/** The report as a DICOM Part 10 file (explicit VR little endian). */
export function reportBytes(report: Item): ArrayBuffer {
  return part10Bytes(report, 'ZEROVAR_SR_1');
}

/** What a saved report says, read back from its Part 10 bytes. */
export interface ReadReport {
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality: string;
  source: { sopClassUid: string; sopInstanceUid: string };
  algorithmName: string;
  algorithmVersion: string;
  bundleSha256: string;
  variant: string;
  predicted: string;
  probabilities: Record<string, number>;
  oodVerdict: string;
  oodScore?: number;
  notice: string;
}

const items = (v: unknown): Item[] => (Array.isArray(v) ? (v as Item[]) : v && typeof v === 'object' ? [v as Item] : []);
/** A naturalized attribute as text ('' when absent; the first value of a multi-valued one). */
export const str = (v: unknown): string => (Array.isArray(v) ? str(v[0]) : v === undefined || v === null ? '' : String(v));

/** A Part 10 file as a naturalized (dcmjs) dataset. */
export function readDataset(bytes: ArrayBuffer): Record<string, unknown> {
  const { data } = dcmjs;
  return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(bytes).dict) as Record<string, unknown>;
}

/** What every saved object read back says of itself and its source image (`ref`: its reference item). */
export function instanceIdentity(ds: Record<string, unknown>, ref: Item): Pick<ReadReport, 'sopClassUid' | 'sopInstanceUid' | 'studyInstanceUid' | 'seriesInstanceUid' | 'modality' | 'source'> {
  return {
    sopClassUid: str(ds.SOPClassUID),
    sopInstanceUid: str(ds.SOPInstanceUID),
    studyInstanceUid: str(ds.StudyInstanceUID),
    seriesInstanceUid: str(ds.SeriesInstanceUID),
    modality: str(ds.Modality),
    source: { sopClassUid: str(ref.ReferencedSOPClassUID), sopInstanceUid: str(ref.ReferencedSOPInstanceUID) },
  };
}
const conceptOf = (it: Item) => items(it.ConceptNameCodeSequence)[0] as Partial<Code> | undefined;

function findItem(tree: Item[], c: Code): Item | undefined {
  for (const it of tree) {
    const n = conceptOf(it);
    if (n?.CodeValue === c.CodeValue && n.CodingSchemeDesignator === c.CodingSchemeDesignator) return it;
    const inner = findItem(items(it.ContentSequence), c);
    if (inner) return inner;
  }
  return undefined;
}

/** Parses a report written by reportBytes (or any SR holding the same concepts). */
export function readReport(bytes: ArrayBuffer): ReadReport {
  const ds = readDataset(bytes);
  const tree = items(ds.ContentSequence);
  const textOf = (c: Code) => str(findItem(tree, c)?.TextValue);
  // A value in percent reads back as the fraction it was written from.
  const numOf = (it: Item | undefined) => {
    const m = items(it?.MeasuredValueSequence)[0];
    if (m?.NumericValue === undefined) return undefined;
    const unit = (items(m.MeasurementUnitsCodeSequence)[0] as Partial<Code> | undefined)?.CodeValue;
    return Number(str(m.NumericValue)) / (unit === '%' ? 100 : 1);
  };
  const probabilities: Record<string, number> = {};
  const walk = (list: Item[]) => {
    for (const it of list) {
      const n = conceptOf(it);
      if (n?.CodingSchemeDesignator === SCHEME && /^ZVP\d+$/.test(n.CodeValue ?? '')) {
        probabilities[(n.CodeMeaning ?? '').replace(/^Probability of /, '')] = numOf(it) ?? NaN;
      }
      walk(items(it.ContentSequence));
    }
  };
  walk(tree);
  const ref = items(findItem(tree, CODES.sourceImage)?.ReferencedSOPSequence)[0] ?? {};
  return {
    ...instanceIdentity(ds, ref),
    algorithmName: textOf(CODES.algorithmName),
    algorithmVersion: textOf(CODES.algorithmVersion),
    bundleSha256: textOf(CODES.bundleSha256),
    variant: textOf(CODES.variant),
    predicted: textOf(CODES.predicted),
    probabilities,
    oodVerdict: textOf(CODES.oodVerdict),
    oodScore: numOf(findItem(tree, CODES.oodScore)),
    notice: textOf(CODES.comment),
  };
}
