// The attention overlay: a pointer-events:none canvas laid over a Cornerstone3D viewport, redrawn on every
// IMAGE_RENDERED with the image-to-canvas transform, so it follows pan, zoom, flip and rotation. It holds two
// layers stretched over the image: the heatmap (shown while the overlay is visible) and, above it, an optional
// contour (e.g. the lungs a masked model classified within), shown whenever set, whatever the heatmap toggle.
// Which viewport has which overlay, and who hears of their changes, is the service's business (service.ts).
import type { CsViewport } from './ohif-types.js';

/** An RGBA image covering the whole displayed image (any resolution; it is stretched over the image). */
export interface Heatmap {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
  /** What it shows, e.g. `test-pattern` or `grad-cam`. */
  label: string;
  /** The image it belongs to: it is not drawn while the viewport shows another one (e.g. after scrolling). */
  imageId?: string;
}

const IMAGE_RENDERED = 'CORNERSTONE_IMAGE_RENDERED';

/** What the service needs of an overlay (a test can pass a fake without a DOM). */
export interface Overlay {
  readonly viewport: CsViewport;
  readonly element: HTMLDivElement;
  isVisible(): boolean;
  setVisible(v: boolean): void;
  getHeatmap(): Heatmap | null;
  setHeatmap(h: Heatmap | null): void;
  getContour(): Heatmap | null;
  setContour(c: Heatmap | null): void;
  destroy(): void;
}

/** Called whenever an overlay is shown, hidden or given a new heatmap. */
export type OverlayChanged = (overlay: Overlay) => void;

export class ViewportOverlay implements Overlay {
  readonly canvas: HTMLCanvasElement;
  private source: HTMLCanvasElement | null = null;
  private heatmap: Heatmap | null = null;
  private contourSource: HTMLCanvasElement | null = null;
  private contour: Heatmap | null = null;
  private visible = false;
  private readonly onRendered = () => this.redraw();

  constructor(
    readonly viewport: CsViewport,
    private readonly renderedEvent = IMAGE_RENDERED,
    private readonly onChange: OverlayChanged = () => undefined,
  ) {
    const canvas = document.createElement('canvas');
    canvas.dataset.zerovarOverlay = 'hidden';
    canvas.dataset.zerovarHeatmap = 'none';
    canvas.dataset.zerovarContour = 'none';
    Object.assign(canvas.style, {
      position: 'absolute', left: '0', top: '0', width: '100%', height: '100%', pointerEvents: 'none', zIndex: '2',
    });
    this.canvas = canvas;
    viewport.element.appendChild(canvas);
    viewport.element.addEventListener(renderedEvent, this.onRendered);
  }

  get element(): HTMLDivElement {
    return this.viewport.element;
  }

  isVisible(): boolean {
    return this.visible;
  }

  getHeatmap(): Heatmap | null {
    return this.heatmap;
  }

  setHeatmap(h: Heatmap | null): void {
    this.source = layerCanvas(h);
    this.heatmap = h;
    this.canvas.dataset.zerovarHeatmap = h ? h.label : 'none';
    this.redraw();
    this.notify();
  }

  getContour(): Heatmap | null {
    return this.contour;
  }

  /** A layer drawn over the heatmap, pixel-sharp, whether or not the heatmap is visible; null removes it. */
  setContour(c: Heatmap | null): void {
    this.contourSource = layerCanvas(c);
    this.contour = c;
    this.canvas.dataset.zerovarContour = c ? c.label : 'none';
    this.redraw();
  }

  setVisible(v: boolean): void {
    this.visible = v;
    this.canvas.dataset.zerovarOverlay = v ? 'visible' : 'hidden';
    this.redraw();
    this.notify();
  }

  private notify(): void {
    try {
      this.onChange(this);
    } catch {
      // a listener's failure must not break drawing
    }
  }

  redraw(): void {
    const el = this.viewport.element;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(el.clientWidth * dpr));
    const h = Math.max(1, Math.round(el.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const current = (l: Heatmap) => !l.imageId || this.viewport.getCurrentImageId?.() === l.imageId;
    const layers: { source: HTMLCanvasElement; layer: Heatmap; smooth: boolean }[] = [];
    if (this.visible && this.source && this.heatmap && current(this.heatmap)) {
      layers.push({ source: this.source, layer: this.heatmap, smooth: true });
    }
    // Nearest-neighbour for the contour: a thin line stays crisp and keeps its colour when stretched.
    if (this.contourSource && this.contour && current(this.contour)) {
      layers.push({ source: this.contourSource, layer: this.contour, smooth: false });
    }
    if (layers.length === 0) return;
    const data = this.viewport.getImageData();
    if (!data) return;
    const [cols, rows] = data.dimensions as [number, number];
    // Pixel edges of the image (index space has pixel centres at integers) mapped to canvas CSS pixels.
    const toCanvas = (i: number, j: number) => this.viewport.worldToCanvas(data.imageData.indexToWorld([i, j, 0]));
    const o = toCanvas(-0.5, -0.5);
    const x = toCanvas(cols - 0.5, -0.5);
    const y = toCanvas(-0.5, rows - 0.5);
    // An image without a usable geometry (e.g. Pixel Spacing 0\0 gives Cornerstone a NaN camera) has no
    // place on the canvas to draw at: draw nothing rather than a map in the wrong place.
    const finite = [...o, ...x, ...y].slice(0, 6).every(Number.isFinite) && [o, x, y].every((p) => p.length >= 2);
    this.canvas.dataset.zerovarGeometry = finite ? 'ok' : 'invalid';
    if (!finite) return;
    for (const { source, layer, smooth } of layers) {
      const hw = layer.width;
      const hh = layer.height;
      ctx.setTransform(
        (dpr * (x[0] - o[0])) / hw, (dpr * (x[1] - o[1])) / hw,
        (dpr * (y[0] - o[0])) / hh, (dpr * (y[1] - o[1])) / hh,
        dpr * o[0], dpr * o[1],
      );
      ctx.imageSmoothingEnabled = smooth;
      ctx.drawImage(source, 0, 0);
    }
  }

  destroy(): void {
    this.viewport.element.removeEventListener(this.renderedEvent, this.onRendered);
    this.canvas.remove();
  }
}

/** An RGBA layer as a canvas ready to draw (null for no layer). */
function layerCanvas(h: Heatmap | null): HTMLCanvasElement | null {
  if (!h) return null;
  if (h.rgba.length !== h.width * h.height * 4) throw new Error(`${h.label}: layer size does not match its RGBA data`);
  const src = document.createElement('canvas');
  src.width = h.width;
  src.height = h.height;
  src.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(h.rgba), h.width, h.height), 0, 0);
  return src;
}

/** A smooth two-blob pattern (one per lung field) in a jet-like colour map, half transparent. */
export function testPattern(size = 64): Heatmap {
  const rgba = new Uint8ClampedArray(size * size * 4);
  const blobs = [
    [0.32, 0.45],
    [0.68, 0.5],
  ];
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const u = (i + 0.5) / size;
      const v = (j + 0.5) / size;
      let t = 0;
      for (const [cx, cy] of blobs) t = Math.max(t, Math.exp(-((u - cx!) ** 2 + (v - cy!) ** 2) / 0.02));
      const k = (j * size + i) * 4;
      rgba[k] = 255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 3)));
      rgba[k + 1] = 255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 2)));
      rgba[k + 2] = 255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 1)));
      rgba[k + 3] = Math.round(140 * Math.min(1, t * 1.5));
    }
  }
  return { width: size, height: size, rgba, label: 'test-pattern' };
}
