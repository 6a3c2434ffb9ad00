// Builds small native (uncompressed) Part-10 DICOM files for tests: explicit VR little endian, grey or RGB.

export interface SyntheticDicom {
  rows: number;
  columns: number;
  /** Raw sample values in stored order (already including any bits above Bits Stored). */
  samples: ArrayLike<number>;
  bitsAllocated?: 8 | 16;
  bitsStored?: number;
  highBit?: number;
  pixelRepresentation?: 0 | 1;
  photometric?: string;
  samplesPerPixel?: number;
  numberOfFrames?: number;
  windowCenter?: string;
  windowWidth?: string;
  rescaleSlope?: string;
  rescaleIntercept?: string;
  voiLutFunction?: string;
  /** UIDs of the instance, its series and study (defaults: fixed ones, so two default files are one instance). */
  sopInstanceUid?: string;
  seriesUid?: string;
  studyUid?: string;
  /** (0018,5101) View Position, e.g. 'LL' for a lateral view; absent by default. */
  viewPosition?: string;
}

type Vr = 'UL' | 'OB' | 'UI' | 'CS' | 'LO' | 'US' | 'DS' | 'IS' | 'OW';
const LONG_VR = new Set<Vr>(['OB', 'OW']);

function element(group: number, elem: number, vr: Vr, value: Uint8Array | string | number): Uint8Array {
  let body: Uint8Array;
  if (typeof value === 'string') {
    const pad = vr === 'UI' ? '\0' : ' ';
    const s = value.length % 2 ? value + pad : value;
    body = new TextEncoder().encode(s);
  } else if (typeof value === 'number') {
    body = new Uint8Array(vr === 'UL' ? 4 : 2);
    if (vr === 'UL') new DataView(body.buffer).setUint32(0, value, true);
    else new DataView(body.buffer).setUint16(0, value, true);
  } else {
    body = value.length % 2 ? Uint8Array.from([...value, 0]) : value;
  }
  const long = LONG_VR.has(vr);
  const head = new Uint8Array(long ? 12 : 8);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, group, true);
  dv.setUint16(2, elem, true);
  head[4] = vr.charCodeAt(0);
  head[5] = vr.charCodeAt(1);
  if (long) dv.setUint32(8, body.length, true);
  else dv.setUint16(6, body.length, true);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function buildDicom(d: SyntheticDicom): Uint8Array {
  const bitsAllocated = d.bitsAllocated ?? 16;
  const bitsStored = d.bitsStored ?? bitsAllocated;
  const sopClass = '1.2.840.10008.5.1.4.1.1.1.1'; // Digital X-Ray Image Storage - For Presentation
  const sopInstance = d.sopInstanceUid ?? '1.2.826.0.1.3680043.2.1125.1.1';
  const tsUid = '1.2.840.10008.1.2.1';
  const metaBody = concat([
    element(0x0002, 0x0001, 'OB', Uint8Array.of(0, 1)),
    element(0x0002, 0x0002, 'UI', sopClass),
    element(0x0002, 0x0003, 'UI', sopInstance),
    element(0x0002, 0x0010, 'UI', tsUid),
    element(0x0002, 0x0012, 'UI', '1.2.826.0.1.3680043.2.1125.1'),
  ]);
  const meta = concat([element(0x0002, 0x0000, 'UL', metaBody.length), metaBody]);

  const pixelBytes = new Uint8Array(d.samples.length * (bitsAllocated / 8));
  const pdv = new DataView(pixelBytes.buffer);
  for (let i = 0; i < d.samples.length; i++) {
    if (bitsAllocated === 8) pixelBytes[i] = d.samples[i] & 0xff;
    else pdv.setUint16(2 * i, d.samples[i] & 0xffff, true);
  }
  const optional: [number, number, Vr, string | undefined][] = [
    [0x0028, 0x1050, 'DS', d.windowCenter],
    [0x0028, 0x1051, 'DS', d.windowWidth],
    [0x0028, 0x1052, 'DS', d.rescaleIntercept],
    [0x0028, 0x1053, 'DS', d.rescaleSlope],
    [0x0028, 0x1056, 'CS', d.voiLutFunction],
  ];
  const data = concat([
    element(0x0008, 0x0016, 'UI', sopClass),
    element(0x0008, 0x0018, 'UI', sopInstance),
    element(0x0008, 0x0060, 'CS', 'DX'),
    element(0x0010, 0x0020, 'LO', 'SYNTHETIC'),
    element(0x0018, 0x0015, 'CS', 'CHEST'),
    ...(d.viewPosition ? [element(0x0018, 0x5101, 'CS', d.viewPosition)] : []),
    element(0x0020, 0x000d, 'UI', d.studyUid ?? '1.2.826.0.1.3680043.2.1125.2'),
    element(0x0020, 0x000e, 'UI', d.seriesUid ?? '1.2.826.0.1.3680043.2.1125.3'),
    element(0x0028, 0x0002, 'US', d.samplesPerPixel ?? 1),
    element(0x0028, 0x0004, 'CS', d.photometric ?? 'MONOCHROME2'),
    ...(d.numberOfFrames ? [element(0x0028, 0x0008, 'IS', String(d.numberOfFrames))] : []),
    element(0x0028, 0x0010, 'US', d.rows),
    element(0x0028, 0x0011, 'US', d.columns),
    element(0x0028, 0x0100, 'US', bitsAllocated),
    element(0x0028, 0x0101, 'US', bitsStored),
    element(0x0028, 0x0102, 'US', d.highBit ?? bitsStored - 1),
    element(0x0028, 0x0103, 'US', d.pixelRepresentation ?? 0),
    ...optional.filter(([, , , v]) => v !== undefined).map(([g, e, vr, v]) => element(g, e, vr, v!)),
    element(0x7fe0, 0x0010, bitsAllocated === 8 ? 'OB' : 'OW', pixelBytes),
  ]);
  const preamble = new Uint8Array(132);
  preamble.set(new TextEncoder().encode('DICM'), 128);
  return concat([preamble, meta, data]);
}
