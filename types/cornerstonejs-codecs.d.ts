// Minimal typings for the Emscripten decoders of @cornerstonejs/codec-* (WASM builds, decode-only entries).
// Each default export is a factory resolving to the initialised module; decoders are embind classes that must be
// deleted after use to free their WASM memory.

interface CodecFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface CodecDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): CodecFrameInfo;
  delete(): void;
}

declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (opts?: Record<string, unknown>) => Promise<{ J2KDecoder: new () => CodecDecoder }>;
  export default factory;
}

declare module '@cornerstonejs/codec-charls/decodewasmjs' {
  const factory: (opts?: Record<string, unknown>) => Promise<{
    JpegLSDecoder: new () => CodecDecoder;
    getExceptionMessage?: (e: unknown) => string;
  }>;
  export default factory;
}

declare module '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs' {
  const factory: (opts?: Record<string, unknown>) => Promise<{ JPEGDecoder: new () => CodecDecoder }>;
  export default factory;
}
