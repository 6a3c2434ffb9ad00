// The extension's one OHIF service (`zerovarService`, registered in preRegistration): it owns the inference client,
// the attention overlays of the viewports and the listeners that follow the displayed image (OHIF's viewport grid
// events, Cornerstone's element events), and announces changes the panel subscribes to. Commands, the toolbar
// evaluator and the panel all go through it, so there is no state at module level.
import { camToRgba } from '@zerovar/trainer/browser';
import { getActiveViewport, getCornerstone } from './cornerstone.js';
import { describeDisplayedImage, readDisplayedGrey, type DisplayedImage } from './displayedImage.js';
import { createInferenceClient, type InferenceClient } from './inferenceClient.js';
import type { ClassifyResult } from './inferenceProtocol.js';
import { contourRgba } from './lungContour.js';
import type { ModelEntry } from './modelIndex.js';
import { loadModelList, type ModelList } from './modelList.js';
import { checkAvailability, inferenceConfig, type Availability, type InferenceConfig } from './models.js';
import type { CornerstoneLib, CsViewport, Listenable, PubSub, ServiceRegistration, Services } from './ohif-types.js';
import { testPattern, ViewportOverlay, type Overlay, type OverlayChanged } from './overlay.js';
import type { Attention } from './attentionCapture.js';
import type { CaptureOutcome, SaveOutcome } from './pacsSave.js';
import type { ReportContent } from './srReport.js';
import { installViewerFixes } from './viewerFixes.js';

export const SERVICE_NAME = 'zerovarService';

/** Events in OHIF's PubSubService naming. */
export const ZEROVAR_EVENTS = {
  /** The active viewport, its displayed image or the reason there is none changed; payload: DisplaySnapshot. */
  DISPLAY_CHANGED: 'event::zerovarService:displayChanged',
  /** An overlay was shown, hidden or given a new heatmap, or another viewport became the active one. */
  OVERLAY_CHANGED: 'event::zerovarService:overlayChanged',
} as const;
export type ZerovarEvent = (typeof ZEROVAR_EVENTS)[keyof typeof ZEROVAR_EVENTS];

/** What the active viewport shows, or why it shows nothing classifiable. */
export interface DisplaySnapshot {
  display: DisplayedImage | null;
  error: string | null;
  viewportId?: string;
}

/** A finished classification and the image it was made on. */
export interface Classification {
  result: ClassifyResult;
  viewportId: string;
  imageId: string;
  /** Round trip to the worker, as the panel shows it. */
  totalMs: number;
}

/** What a result draws on its viewport: the attention map and, for a masked model, its lung mask. */
export interface DrawnResult {
  viewportId: string;
  imageId: string;
  attention?: ClassifyResult['attention'];
  lungMask?: ClassifyResult['lungMask'];
  /** The guard flagged the image and the user has not asked to see it anyway: nothing is drawn, the overlay is
   * switched off, and the toolbar's toggle is disabled for it. */
  blocked?: boolean;
}

export interface OverlayStyle {
  /** Peak opacity of the attention map. */
  opacity: number;
  /** Whether a masked result's lung contour is drawn. */
  contour: boolean;
}

export interface ZerovarServiceDeps {
  services: Services;
  /** The viewer's Cornerstone3D (throws while the Cornerstone extension is missing). */
  cornerstone: () => CornerstoneLib;
  config?: InferenceConfig;
  /** Makes the inference client on first use (default: the extension's worker). */
  createClient?: (config: InferenceConfig) => InferenceClient;
  /** Makes a viewport's overlay (default: a canvas over its element). */
  createOverlay?: (viewport: CsViewport, renderedEvent: string | undefined, onChange: OverlayChanged) => Overlay;
  fetch?: typeof fetch;
  now?: () => number;
  /** The active data source's configuration (OHIF's DICOMweb source: wadoRoot, dicomUploadEnabled). */
  dataSourceConfig?: () => Record<string, unknown> | undefined;
}

type Callback = (payload?: unknown) => void;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Cornerstone events on the active viewport's element after which the displayed image may have changed. */
const ELEMENT_EVENTS = ['STACK_NEW_IMAGE', 'VIEWPORT_NEW_IMAGE_SET', 'IMAGE_RENDERED'];
/** Cornerstone's global events after which the active viewport (or its image) may have changed. */
const GLOBAL_EVENTS = ['ELEMENT_ENABLED', 'ELEMENT_DISABLED', 'IMAGE_LOADED'];

export class ZerovarService {
  static readonly REGISTRATION: ServiceRegistration<ZerovarService> = {
    name: SERVICE_NAME,
    create: ({ servicesManager, extensionManager }) =>
      new ZerovarService({
        services: servicesManager.services,
        cornerstone: () => getCornerstone(extensionManager),
        dataSourceConfig: () => {
          const em = extensionManager as unknown as { getActiveDataSource?: () => { getConfig?: () => Record<string, unknown> }[] };
          return em.getActiveDataSource?.()[0]?.getConfig?.();
        },
      }),
  };

  readonly EVENTS = ZEROVAR_EVENTS;
  readonly config: InferenceConfig;
  private readonly services: Services;
  private readonly listeners = new Map<string, Set<Callback>>();
  private readonly overlays = new Map<string, Overlay>();
  private client: InferenceClient | null = null;
  private snapshot: DisplaySnapshot = { display: null, error: null };
  /** OHIF subscriptions by event name (taken as the services appear). */
  private readonly subscriptions = new Map<string, { unsubscribe(): void }>();
  private global: { target: Listenable; off: () => void } | null = null;
  private followed: { element: Listenable; off: () => void } | null = null;
  private watching = false;
  private drawn: DrawnResult | null = null;
  private style: OverlayStyle = { opacity: 0.5, contour: true };
  private list: Promise<ModelList> | null = null;

  constructor(private readonly deps: ZerovarServiceDeps) {
    this.services = deps.services;
    this.config = deps.config ?? inferenceConfig();
  }

  // --- events ---------------------------------------------------------------------------------------------------

  subscribe(event: ZerovarEvent, callback: Callback): { unsubscribe(): void } {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(callback);
    return { unsubscribe: () => void set.delete(callback) };
  }

  private emit(event: ZerovarEvent, payload?: unknown): void {
    for (const cb of [...(this.listeners.get(event) ?? [])]) {
      try {
        cb(payload);
      } catch {
        // one listener's failure must not stop the others (nor the drawing that announced it)
      }
    }
  }

  // --- following the displayed image ----------------------------------------------------------------------------

  /** Starts following the active viewport (again after stop()); each call also takes subscriptions missed so far. */
  start(): void {
    this.watching = true;
    const cs = this.cornerstoneOrUndefined();
    if (cs) installViewerFixes(cs); // once per Cornerstone; usually done already at the extension's registration
    const grid = this.services.viewportGridService;
    const cvs = this.services.cornerstoneViewportService;
    const wanted: [PubSub | undefined, string | undefined][] = [
      [grid, grid?.EVENTS?.ACTIVE_VIEWPORT_ID_CHANGED],
      [grid, grid?.EVENTS?.GRID_STATE_CHANGED],
      [cvs, cvs?.EVENTS?.VIEWPORT_DATA_CHANGED],
    ];
    for (const [service, event] of wanted) {
      if (!service || !event || this.subscriptions.has(event)) continue;
      this.subscriptions.set(event, service.subscribe(event, () => this.refreshDisplay()));
    }
    this.refreshDisplay();
  }

  /** OHIF calls every service's onModeEnter / onModeExit around a mode. */
  onModeEnter(): void {
    this.start();
  }

  onModeExit(): void {
    this.stop();
  }

  /** Stops following, removes every overlay and forgets the drawn result (the mode was left). */
  stop(): void {
    this.watching = false;
    for (const s of this.subscriptions.values()) s.unsubscribe();
    this.subscriptions.clear();
    this.global?.off();
    this.global = null;
    this.followed?.off();
    this.followed = null;
    for (const o of this.overlays.values()) o.destroy();
    this.overlays.clear();
    this.drawn = null;
    this.snapshot = { display: null, error: null };
  }

  getDisplay(): DisplaySnapshot {
    return this.snapshot;
  }

  /** Reads what the active viewport shows; announces DISPLAY_CHANGED when the image, the reason or the viewport changed. */
  refreshDisplay(): void {
    let viewport: CsViewport | undefined;
    let next: DisplaySnapshot;
    try {
      const cs = this.deps.cornerstone();
      if (this.watching) this.listenGlobally(cs);
      viewport = getActiveViewport(this.services);
      next = { display: describeDisplayedImage(cs, viewport), error: null, viewportId: viewport.id };
    } catch (err) {
      next = { display: null, error: message(err), viewportId: viewport?.id ?? this.activeViewportId() };
    }
    if (this.watching) this.follow(viewport);
    const prev = this.snapshot;
    const sameImage = prev.display?.info.imageId === next.display?.info.imageId;
    if (sameImage && prev.error === next.error && prev.viewportId === next.viewportId) return;
    // The same image keeps its description object, so a subscriber can compare by identity.
    this.snapshot = sameImage && prev.display ? { ...next, display: prev.display } : next;
    this.emit(ZEROVAR_EVENTS.DISPLAY_CHANGED, this.snapshot);
    if (prev.viewportId !== next.viewportId) this.emit(ZEROVAR_EVENTS.OVERLAY_CHANGED);
  }

  private activeViewportId(): string | undefined {
    try {
      return this.services.viewportGridService.getActiveViewportId();
    } catch {
      return undefined;
    }
  }

  /** The image the active viewport shows now (undefined without one). */
  private activeImageId(): string | undefined {
    try {
      return getActiveViewport(this.services).getCurrentImageId?.();
    } catch {
      return undefined;
    }
  }

  private eventName(cs: CornerstoneLib | undefined, key: string): string | undefined {
    return cs?.Enums?.Events?.[key];
  }

  private cornerstoneOrUndefined(): CornerstoneLib | undefined {
    try {
      return this.deps.cornerstone();
    } catch {
      return undefined;
    }
  }

  /** Cornerstone's global announcements: a viewport element enabled or disabled, an image loaded. */
  private listenGlobally(cs: CornerstoneLib): void {
    const target = cs.eventTarget;
    if (!target || this.global?.target === target) return;
    this.global?.off();
    const onEvent = () => this.refreshDisplay();
    const names = GLOBAL_EVENTS.map((k) => this.eventName(cs, k)).filter((n): n is string => !!n);
    for (const n of names) target.addEventListener(n, onEvent);
    this.global = { target, off: () => names.forEach((n) => target.removeEventListener(n, onEvent)) };
  }

  /** Moves the element listeners to the active viewport's element (new image, image set, rendered). */
  private follow(viewport: CsViewport | undefined): void {
    const element = viewport?.element as Listenable | undefined;
    if (this.followed?.element === element) return;
    this.followed?.off();
    this.followed = null;
    if (!element || !viewport) return;
    const cs = this.cornerstoneOrUndefined();
    // Renders are frequent (every pan or zoom): only a different image id (or a reason to retry) costs a refresh.
    // The viewport is looked up on each event: OHIF makes a new one on the same element for each display set.
    const onEvent = () => {
      const shown = this.snapshot.display?.info.imageId;
      if (this.snapshot.error !== null || this.activeImageId() !== shown) this.refreshDisplay();
    };
    const names = ELEMENT_EVENTS.map((k) => this.eventName(cs, k)).filter((n): n is string => !!n);
    for (const n of names) element.addEventListener(n, onEvent);
    this.followed = { element, off: () => names.forEach((n) => element.removeEventListener(n, onEvent)) };
  }

  // --- overlays -----------------------------------------------------------------------------------------------------

  /** The overlay of a viewport, created on first use (and again when the viewport or its element was replaced). */
  overlayFor(viewport: CsViewport): Overlay {
    const existing = this.overlays.get(viewport.id);
    if (existing && existing.viewport === viewport && existing.element.isConnected !== false) return existing;
    existing?.destroy();
    const rendered = this.eventName(this.cornerstoneOrUndefined(), 'IMAGE_RENDERED');
    const onChange: OverlayChanged = () => this.emit(ZEROVAR_EVENTS.OVERLAY_CHANGED);
    const created = this.deps.createOverlay
      ? this.deps.createOverlay(viewport, rendered, onChange)
      : new ViewportOverlay(viewport, rendered, onChange);
    this.overlays.set(viewport.id, created);
    return created;
  }

  existingOverlay(viewportId: string | undefined): Overlay | undefined {
    return viewportId ? this.overlays.get(viewportId) : undefined;
  }

  /** Whether the attention overlay is shown on a viewport (the active one by default). */
  isOverlayVisible(viewportId: string | undefined = this.activeViewportId()): boolean {
    return this.existingOverlay(viewportId)?.isVisible() ?? false;
  }

  /** The active viewport's overlay; throws when there is no viewport to draw on. */
  activeOverlay(): Overlay {
    return this.overlayFor(getActiveViewport(this.services));
  }

  setOverlayVisible(visible: boolean): boolean {
    this.activeOverlay().setVisible(visible);
    return visible;
  }

  toggleOverlay(): boolean {
    const overlay = this.activeOverlay();
    overlay.setVisible(!overlay.isVisible());
    return overlay.isVisible();
  }

  showTestPattern(): void {
    const overlay = this.activeOverlay();
    overlay.setHeatmap(testPattern());
    overlay.setVisible(true);
  }

  clearOverlay(): void {
    const overlay = this.activeOverlay();
    overlay.setHeatmap(null);
    overlay.setVisible(false);
  }

  /** Whether the result drawn on a viewport (the active one by default) is a flagged image not shown anyway. */
  isOverlayBlocked(viewportId: string | undefined = this.activeViewportId()): boolean {
    return this.drawn?.blocked === true && this.drawn.viewportId === viewportId;
  }

  /**
   * Draws a result's attention map (and lung contour) on its viewport; null forgets it and clears the active one.
   * A blocked result draws nothing and switches the overlay off.
   */
  showResult(drawn: DrawnResult | null): void {
    const wasBlocked = this.drawn?.blocked === true;
    this.drawn = drawn && drawn.blocked ? { viewportId: drawn.viewportId, imageId: drawn.imageId, blocked: true } : drawn;
    // The toolbar's toggle is enabled or disabled by its evaluator: ask for a new evaluation when that changes.
    if (wasBlocked !== (this.drawn?.blocked === true)) this.refreshToolbar();
    if (drawn) {
      this.paint();
      if (drawn.blocked) this.existingOverlay(drawn.viewportId)?.setVisible(false);
      return;
    }
    const overlay = this.existingOverlay(this.activeViewportId());
    overlay?.setHeatmap(null);
    overlay?.setContour(null);
  }

  private refreshToolbar(): void {
    try {
      this.services.toolbarService?.refreshToolbarState?.({});
    } catch {
      // a toolbar that cannot refresh keeps its last state; the panel still says what happened
    }
  }

  setOverlayStyle(style: OverlayStyle): void {
    this.style = { ...style };
    this.paint();
  }

  private paint(): void {
    const last = this.drawn;
    if (!last) return;
    let viewport: CsViewport;
    try {
      viewport = getActiveViewport(this.services);
    } catch {
      return; // the viewport went away; nothing to draw on
    }
    if (viewport.id !== last.viewportId) return;
    const overlay = this.overlayFor(viewport);
    const { opacity, contour } = this.style;
    const a = last.attention;
    overlay.setHeatmap(a ? {
      width: a.width, height: a.height, rgba: camToRgba(a.cam, a.width, a.height, { opacity }), label: 'grad-cam', imageId: last.imageId,
    } : null);
    const m = last.lungMask;
    overlay.setContour(m && contour ? {
      width: m.width, height: m.height, rgba: contourRgba(m.mask, m.width, m.height), label: 'lung-contour', imageId: last.imageId,
    } : null);
  }

  // --- inference ------------------------------------------------------------------------------------------------------

  private inferenceClient(): InferenceClient {
    this.client ??= (this.deps.createClient ?? createInferenceClient)(this.config);
    return this.client;
  }

  /**
   * The models to choose from (the deployment's, the host's index, or the built-in raw and masked) and the one
   * the panel opens on: read once per service.
   */
  modelList(): Promise<ModelList> {
    this.list ??= loadModelList(this.config, this.deps.fetch ?? ((input, init) => fetch(input, init)));
    return this.list;
  }

  /** A model of the list by id (undefined when the list has none of that id). */
  async model(id: string): Promise<ModelEntry | undefined> {
    return (await this.modelList()).models.find((m) => m.id === id);
  }

  /** Whether a model's bundle is installed (a HEAD request for its manifest); an id not listed is missing. */
  async availability(id: string): Promise<Availability> {
    const entry = await this.model(id);
    return entry ? checkAvailability(entry.url, this.deps.fetch) : 'missing';
  }

  /**
   * Classifies what the active viewport shows with a model's bundle (and its Grad-CAM). `beforePixels` runs
   * between the cheap checks and the synchronous pixel pass (e.g. to let "Running…" paint first); `showAnyway`
   * explains an image the guard flags too.
   */
  async classifyDisplayed(
    id: string, opts: { beforePixels?: () => Promise<void>; showAnyway?: boolean } = {},
  ): Promise<Classification> {
    const cs = this.deps.cornerstone();
    const viewport = getActiveViewport(this.services);
    const d = describeDisplayedImage(cs, viewport);
    const entry = await this.model(id);
    if (!entry) throw new Error(`no model "${id}" is listed`);
    if (entry.error) throw new Error(`The ${id} model bundle cannot be used: ${entry.error}`);
    await opts.beforePixels?.();
    const grey = readDisplayedGrey(cs, viewport, d);
    const now = this.deps.now ?? (() => performance.now());
    const t0 = now();
    const result = await this.inferenceClient().classify(entry.url, grey, { explain: true, showAnyway: opts.showAnyway });
    return { result, viewportId: viewport.id, imageId: d.info.imageId, totalMs: now() - t0 };
  }

  // --- results to the PACS -------------------------------------------------------------------------------------------

  /** Where a report would be stored, or why saving is unavailable for the active data source. */
  async saveTarget(): Promise<{ root: string } | { unavailable: string }> {
    const { storeTarget } = await import('./pacsSave.js');
    try {
      return storeTarget(this.deps.dataSourceConfig?.());
    } catch (e) {
      return { unavailable: `Saving is unavailable: ${message(e)}` };
    }
  }

  /**
   * Stores a shown result of `imageId` as a DICOM SR in its study and, given its attention map, that map over the
   * displayed image as a Secondary Capture beside it (dcmjs and the writers load on first use). Stored instances
   * are listed by the study browser once the study is opened again (it is read from the PACS).
   */
  async saveResult(imageId: string, content: ReportContent, attention?: Attention): Promise<SaveOutcome> {
    const { saveCapture, saveReport, sourceFromInstance } = await import('./pacsSave.js');
    const target = await this.saveTarget();
    if ('unavailable' in target) return { kind: 'failed', message: target.unavailable };
    let source;
    let report: SaveOutcome;
    try {
      source = sourceFromInstance(this.deps.cornerstone().metaData.get('instance', imageId) as Record<string, unknown> | undefined);
      report = await saveReport(target.root, source, content, this.deps.fetch ?? fetch);
    } catch (e) {
      return { kind: 'failed', message: `The report could not be written: ${message(e)}. The result stays on screen.` };
    }
    if (report.kind === 'failed' || !attention) return report;
    let capture: CaptureOutcome;
    try {
      // The map goes over the image as it is displayed: the very image the result was made on, still on screen.
      const cs = this.deps.cornerstone();
      const viewport = getActiveViewport(this.services);
      if (viewport.getCurrentImageId?.() !== imageId) throw new Error('its image is no longer displayed');
      const grey = readDisplayedGrey(cs, viewport, describeDisplayedImage(cs, viewport));
      capture = await saveCapture(target.root, source, content, attention, grey, this.deps.fetch ?? fetch);
    } catch (e) {
      capture = { kind: 'failed', message: `The attention map could not be saved: ${message(e)}.` };
    }
    return { ...report, capture };
  }

  /** Shuts the inference worker down (a later request starts a new one). */
  dispose(): void {
    this.stop();
    this.client?.dispose();
    this.client = null;
  }
}
