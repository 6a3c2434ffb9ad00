// The small part of OHIF's and Cornerstone3D's runtime API this extension uses, typed structurally: the real
// objects come from the viewer at runtime (nothing of OHIF or Cornerstone is bundled).
import type { ZerovarService } from './service.js';

export interface PubSub {
  subscribe(event: string, callback: (...args: unknown[]) => void): { unsubscribe(): void };
  EVENTS: Record<string, string>;
}

export interface ViewportGridService extends PubSub {
  getActiveViewportId(): string | undefined;
}

export interface CornerstoneViewportService extends PubSub {
  getCornerstoneViewport(viewportId: string): CsViewport | undefined;
}

export interface ToolbarService {
  register(buttons: unknown[], replace?: boolean): void;
  updateSection(key: string, buttonIds: string[]): void;
  refreshToolbarState?(props?: unknown): void;
}

export interface UINotificationService {
  show(o: { title: string; message: string; type?: 'info' | 'success' | 'warning' | 'error'; duration?: number }): void;
}

export interface Services {
  viewportGridService: ViewportGridService;
  cornerstoneViewportService: CornerstoneViewportService;
  toolbarService: ToolbarService;
  uiNotificationService?: UINotificationService;
  /** Ours, registered in the extension's preRegistration. */
  zerovarService?: ZerovarService;
}

/** What OHIF's ServicesManager.registerService takes: a name and a factory called with the managers. */
export interface ServiceRegistration<T> {
  name: string;
  create(params: { servicesManager: ServicesManager; extensionManager: ExtensionManager; commandsManager?: CommandsManager }): T;
}

export interface ServicesManager {
  services: Services;
  registerService?(registration: ServiceRegistration<unknown>, configuration?: unknown): void;
}

export interface ExtensionManager {
  getModuleEntry(id: string): { exports?: Record<string, unknown> } | undefined;
}

export interface CommandsManager {
  runCommand(name: string, options?: Record<string, unknown>, context?: string): unknown;
}

export interface ExtensionParams {
  servicesManager: ServicesManager;
  extensionManager: ExtensionManager;
  commandsManager: CommandsManager;
}

/** vtkImageData-like: maps index (i, j, k) to world coordinates. */
export interface CsImageData {
  indexToWorld(ijk: number[], out?: number[]): number[];
}

export interface CsViewport {
  id: string;
  element: HTMLDivElement;
  getCurrentImageId?(): string | undefined;
  getImageData(): { dimensions: number[]; imageData: CsImageData; scalarData?: ArrayLike<number> } | undefined;
  worldToCanvas(world: number[]): number[];
  render?(): void;
  /** Display properties; `voiRange` is the current window in modality units. */
  getProperties?(): { voiRange?: { lower: number; upper: number }; invert?: boolean } | undefined;
}

export interface CsImage {
  rows: number;
  columns: number;
  getPixelData(): ArrayLike<number>;
  minPixelValue?: number;
  maxPixelValue?: number;
  slope?: number;
  intercept?: number;
  color?: boolean;
  numberOfComponents?: number;
  isPreScaled?: boolean;
  preScale?: { enabled?: boolean; scaled?: boolean };
}

/** Enough of an EventTarget for listening (Cornerstone's global `eventTarget`, a viewport's element). */
export interface Listenable {
  addEventListener(type: string, listener: (e: Event) => void): void;
  removeEventListener(type: string, listener: (e: Event) => void): void;
}

/** Cornerstone's web worker manager: every task for a registered worker goes through executeTask. */
export interface CsWebWorkerManager {
  executeTask(worker: string, task: string, args: unknown, options?: unknown): Promise<unknown>;
}

export interface CornerstoneLib {
  metaData: {
    get(module: string, imageId: string): unknown;
    /** A provider answers (type, imageId) or returns undefined; the highest priority is asked first. */
    addProvider?(provider: (type: string, imageId: string) => unknown, priority?: number): void;
  };
  getWebWorkerManager?(): CsWebWorkerManager | undefined;
  cache: { getImage(imageId: string): CsImage | undefined };
  Enums: { Events: Record<string, string> };
  /** Where Cornerstone announces element enable / disable and image loads. */
  eventTarget?: Listenable;
}
