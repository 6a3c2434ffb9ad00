// Minimal typings for dcmjs (DICOM Part 10 reading and writing, naturalized datasets), as the SR writer uses it.
declare module 'dcmjs' {
  type Naturalized = Record<string, unknown>;
  type Denaturalized = Record<string, { vr: string; Value?: unknown[] }>;
  export const data: {
    DicomMetaDictionary: {
      naturalizeDataset(d: Denaturalized): Naturalized;
      denaturalizeDataset(d: Naturalized): Denaturalized;
    };
    DicomDict: new (meta: Denaturalized) => { meta: Denaturalized; dict: Denaturalized; write(options?: object): ArrayBuffer };
    DicomMessage: { readFile(buffer: ArrayBuffer, options?: object): { meta: Denaturalized; dict: Denaturalized } };
  };
  const dcmjs: { data: typeof data };
  export default dcmjs;
}
