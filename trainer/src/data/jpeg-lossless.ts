// JPEG lossless (ITU T.81 process 14, SOF3, Huffman coded, predictors 1-7) for single-component grey frames:
// DICOM transfer syntaxes 1.2.840.10008.1.2.4.57 and .70, which the WASM codecs at hand do not cover.

export interface LosslessFrame {
  width: number;
  height: number;
  bitsPerSample: number;
  components: number;
  /** Samples as little-endian 16-bit when bitsPerSample > 8, else one byte each. */
  bytes: Uint8Array;
}

interface Huffman {
  maxcode: Int32Array; // per code length 1..16, the largest code of that length (-1 if none)
  valptr: Int32Array; // index into values of the first code of that length
  mincode: Int32Array;
  values: Uint8Array;
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const mincode = new Int32Array(17);
  const valptr = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1];
    if (n > 0) {
      valptr[len] = k;
      mincode[len] = code;
      code += n;
      k += n;
      maxcode[len] = code - 1;
    }
    code <<= 1;
  }
  return { maxcode, mincode, valptr, values };
}

class BitReader {
  private pos: number;
  private bits = 0;
  private nbits = 0;
  /** Set when a marker (other than stuffing) was reached inside the entropy-coded segment. */
  marker = -1;
  constructor(
    private readonly data: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }
  private fill(): void {
    while (this.nbits <= 24) {
      let byte = 0;
      if (this.marker < 0 && this.pos < this.data.length) {
        byte = this.data[this.pos];
        if (byte === 0xff) {
          const next = this.data[this.pos + 1] ?? 0;
          if (next === 0x00) this.pos += 2;
          else {
            this.marker = next;
            byte = 0;
          }
        } else this.pos++;
      }
      this.bits = ((this.bits << 8) | byte) >>> 0;
      this.nbits += 8;
    }
  }
  bit(): number {
    if (this.nbits === 0) this.fill();
    this.nbits--;
    return (this.bits >>> this.nbits) & 1;
  }
  read(n: number): number {
    if (n === 0) return 0;
    if (this.nbits < n) this.fill();
    this.nbits -= n;
    return (this.bits >>> this.nbits) & ((1 << n) - 1);
  }
  /** Skips to the byte boundary and past an expected RSTn marker. */
  restart(): void {
    this.bits = 0;
    this.nbits = 0;
    if (this.marker >= 0xd0 && this.marker <= 0xd7) {
      this.pos += 2;
      this.marker = -1;
      return;
    }
    // The marker may not have been reached by the look-ahead yet.
    while (this.pos + 1 < this.data.length && !(this.data[this.pos] === 0xff && this.data[this.pos + 1] >= 0xd0 && this.data[this.pos + 1] <= 0xd7)) {
      this.pos++;
    }
    if (this.pos + 1 >= this.data.length) throw new Error('restart marker missing');
    this.pos += 2;
    this.marker = -1;
  }
}

function decodeSymbol(r: BitReader, h: Huffman): number {
  let code = r.bit();
  for (let len = 1; len <= 16; len++) {
    if (code <= h.maxcode[len] && h.maxcode[len] >= 0) return h.values[h.valptr[len] + code - h.mincode[len]];
    code = (code << 1) | r.bit();
  }
  throw new Error('corrupt Huffman code');
}

/** Decodes a single-component lossless JPEG stream. */
export function decodeJpegLossless(data: Uint8Array): LosslessFrame {
  if (data[0] !== 0xff || data[1] !== 0xd8) throw new Error('not a JPEG stream (no SOI marker)');
  const tables = new Map<number, Huffman>();
  let precision = 0;
  let width = 0;
  let height = 0;
  let restartInterval = 0;
  let pos = 2;
  const u16 = (p: number) => (data[p] << 8) | data[p + 1];
  while (pos + 4 <= data.length) {
    if (data[pos] !== 0xff) throw new Error(`marker expected at byte ${pos}`);
    const marker = data[pos + 1];
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    const len = u16(pos + 2);
    const seg = pos + 4;
    const end = pos + 2 + len;
    if (end > data.length) throw new Error('truncated JPEG segment');
    if (marker === 0xc4) {
      let p = seg;
      while (p < end) {
        const id = data[p] & 0x0f;
        const counts = data.subarray(p + 1, p + 17);
        const total = counts.reduce((a, b) => a + b, 0);
        tables.set(id, buildHuffman(counts, data.subarray(p + 17, p + 17 + total)));
        p += 17 + total;
      }
    } else if (marker === 0xc3) {
      precision = data[seg];
      height = u16(seg + 1);
      width = u16(seg + 3);
      const nComp = data[seg + 5];
      if (nComp !== 1) throw new Error(`${nComp} components: only grey (1 component) is supported`);
    } else if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      throw new Error(`JPEG process SOF${marker - 0xc0} is not lossless Huffman (SOF3)`);
    } else if (marker === 0xdd) {
      restartInterval = u16(seg);
    } else if (marker === 0xda) {
      if (!precision || !width || !height) throw new Error('scan before frame header');
      const ns = data[seg];
      if (ns !== 1) throw new Error(`${ns} components in scan: only 1 is supported`);
      const table = tables.get(data[seg + 2] >> 4);
      if (!table) throw new Error('scan refers to a missing Huffman table');
      const predictor = data[seg + 3];
      const pt = data[seg + 5] & 0x0f;
      if (predictor < 1 || predictor > 7) throw new Error(`invalid predictor ${predictor}`);
      return decodeScan(data, end, { width, height, precision, predictor, pt, restartInterval, table });
    }
    pos = end;
  }
  throw new Error('no scan found in JPEG stream');
}

function decodeScan(
  data: Uint8Array,
  start: number,
  s: { width: number; height: number; precision: number; predictor: number; pt: number; restartInterval: number; table: Huffman },
): LosslessFrame {
  const { width, height, precision, predictor, pt, restartInterval, table } = s;
  const n = width * height;
  const out = new Int32Array(n);
  const r = new BitReader(data, start);
  const initial = 1 << (precision - pt - 1);
  const modMask = 0xffff;
  let restartRow = 0; // row where the current restart interval began (predicts like a first row)
  let restartCol = 0;
  let sinceRestart = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (restartInterval > 0 && sinceRestart === restartInterval) {
        r.restart();
        sinceRestart = 0;
        restartRow = y;
        restartCol = x;
      }
      const t = decodeSymbol(r, table);
      let diff: number;
      if (t === 0) diff = 0;
      else if (t === 16) diff = 32768;
      else {
        diff = r.read(t);
        if (diff < 1 << (t - 1)) diff -= (1 << t) - 1;
      }
      const i = y * width + x;
      let pred: number;
      if (y === restartRow && x === restartCol) pred = initial;
      else if (y === restartRow) pred = out[i - 1];
      else if (x === 0) pred = out[i - width];
      else {
        const ra = out[i - 1];
        const rb = out[i - width];
        const rc = out[i - width - 1];
        switch (predictor) {
          case 1: pred = ra; break;
          case 2: pred = rb; break;
          case 3: pred = rc; break;
          case 4: pred = ra + rb - rc; break;
          case 5: pred = ra + ((rb - rc) >> 1); break;
          case 6: pred = rb + ((ra - rc) >> 1); break;
          default: pred = (ra + rb) >> 1;
        }
      }
      out[i] = (pred + diff) & modMask;
      sinceRestart++;
    }
  }
  const bitsPerSample = precision;
  const bytes = new Uint8Array(bitsPerSample > 8 ? 2 * n : n);
  for (let i = 0; i < n; i++) {
    const v = out[i] << pt;
    if (bitsPerSample > 8) {
      bytes[2 * i] = v & 0xff;
      bytes[2 * i + 1] = (v >> 8) & 0xff;
    } else bytes[i] = v & 0xff;
  }
  return { width, height, bitsPerSample, components: 1, bytes };
}
