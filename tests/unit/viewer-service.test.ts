// The extension's service outside a browser, on fake OHIF services, a fake Cornerstone (metadata, cache, events)
// and fake viewports whose elements are plain EventTargets: following the displayed image by events (no poll),
// moving its listeners with the active viewport, the overlays it owns, drawing a result, classifying through
// the inference client, and the commands and toolbar evaluator that go through it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import getCommandsModule from '../../extension/src/commandsModule.js';
import getToolbarModule from '../../extension/src/getToolbarModule.js';
import { COMMANDS, OVERLAY_EVALUATOR } from '../../extension/src/ids.js';
import type { InferenceClient } from '../../extension/src/inferenceClient.js';
import type { ClassifyResult } from '../../extension/src/inferenceProtocol.js';
import { DEFAULT_MODEL_INDEX, DEFAULT_MODEL_URLS } from '../../extension/src/models.js';
import type { CornerstoneLib, CsViewport, ExtensionParams, Services } from '../../extension/src/ohif-types.js';
import type { Heatmap, Overlay } from '../../extension/src/overlay.js';
import { storedToGrey8 } from '../../trainer/src/browser.js';
import { SERVICE_NAME, ZEROVAR_EVENTS, ZerovarService, type DisplaySnapshot } from '../../extension/src/service.js';

const EV = {
  IMAGE_RENDERED: 'CORNERSTONE_IMAGE_RENDERED',
  STACK_NEW_IMAGE: 'CORNERSTONE_STACK_NEW_IMAGE',
  VIEWPORT_NEW_IMAGE_SET: 'CORNERSTONE_VIEWPORT_NEW_IMAGE_SET',
  ELEMENT_ENABLED: 'CORNERSTONE_ELEMENT_ENABLED',
  ELEMENT_DISABLED: 'CORNERSTONE_ELEMENT_DISABLED',
  IMAGE_LOADED: 'CORNERSTONE_IMAGE_LOADED',
};

/** A 4 × 3 MONOCHROME2 DX image per id, with pixels and metadata. */
function fakeCornerstone(): CornerstoneLib & { eventTarget: EventTarget } {
  const w = 4;
  const h = 3;
  return {
    Enums: { Events: EV },
    eventTarget: new EventTarget(),
    metaData: {
      get(module: string) {
        if (module === 'imagePixelModule') {
          return { photometricInterpretation: 'MONOCHROME2', rows: h, columns: w, bitsStored: 8, pixelRepresentation: 0, samplesPerPixel: 1 };
        }
        if (module === 'generalSeriesModule') return { modality: 'DX', bodyPartExamined: 'CHEST' };
        if (module === 'voiLutModule') return { windowCenter: 127.5, windowWidth: 256 };
        return undefined;
      },
    },
    cache: {
      getImage: () => ({ rows: h, columns: w, getPixelData: () => Uint8Array.from({ length: w * h }, (_, i) => i * 20) }),
    },
  };
}

interface FakeViewport extends CsViewport {
  imageId: string | undefined;
  listening(): number;
}

/** A viewport whose element counts its listeners (to see them move). */
function fakeViewport(id: string, imageId?: string): FakeViewport {
  const element = new EventTarget();
  let listeners = 0;
  const add = element.addEventListener.bind(element);
  const remove = element.removeEventListener.bind(element);
  element.addEventListener = (...a: Parameters<EventTarget['addEventListener']>) => {
    listeners++;
    add(...a);
  };
  element.removeEventListener = (...a: Parameters<EventTarget['removeEventListener']>) => {
    listeners--;
    remove(...a);
  };
  const vp: FakeViewport = {
    id,
    imageId,
    element: element as unknown as HTMLDivElement,
    getCurrentImageId: () => vp.imageId,
    // A rendered 4 x 4 image with the identity as its index-to-canvas transform.
    getImageData: () => ({ dimensions: [4, 4, 1], imageData: { indexToWorld: (ijk) => ijk } }),
    worldToCanvas: (w) => w,
    listening: () => listeners,
  };
  return vp;
}

/** OHIF's grid and Cornerstone viewport services, with events a test can fire. */
function fakeServices() {
  const subs = new Map<string, Set<() => void>>();
  const pubsub = (events: Record<string, string>) => ({
    EVENTS: events,
    subscribe(event: string, cb: () => void) {
      if (!subs.has(event)) subs.set(event, new Set());
      subs.get(event)!.add(cb);
      return { unsubscribe: () => void subs.get(event)?.delete(cb) };
    },
  });
  const viewports = new Map<string, FakeViewport>();
  let active: string | undefined;
  const notified: string[] = [];
  const services: Services = {
    viewportGridService: {
      ...pubsub({ ACTIVE_VIEWPORT_ID_CHANGED: 'grid:active', GRID_STATE_CHANGED: 'grid:state' }),
      getActiveViewportId: () => active,
    },
    cornerstoneViewportService: {
      ...pubsub({ VIEWPORT_DATA_CHANGED: 'cvs:data' }),
      getCornerstoneViewport: (id: string) => viewports.get(id),
    },
    toolbarService: { register() {}, updateSection() {}, refreshToolbarState() {} },
    uiNotificationService: { show: (o) => void notified.push(o.message) },
  };
  return {
    services,
    viewports,
    notified,
    setActive(id: string | undefined) {
      active = id;
    },
    fire(event: string) {
      for (const cb of [...(subs.get(event) ?? [])]) cb();
    },
    subscribers: (event: string) => subs.get(event)?.size ?? 0,
  };
}

/** An overlay without a canvas: it records what it was given. */
class FakeOverlay implements Overlay {
  heatmap: Heatmap | null = null;
  contour: Heatmap | null = null;
  visible = false;
  destroyed = false;
  constructor(readonly viewport: CsViewport, readonly renderedEvent: string | undefined, private readonly onChange: (o: Overlay) => void) {}
  get element() {
    return this.viewport.element;
  }
  isVisible() {
    return this.visible;
  }
  setVisible(v: boolean) {
    this.visible = v;
    this.onChange(this);
  }
  getHeatmap() {
    return this.heatmap;
  }
  setHeatmap(h: Heatmap | null) {
    this.heatmap = h;
    this.onChange(this);
  }
  getContour() {
    return this.contour;
  }
  setContour(c: Heatmap | null) {
    this.contour = c;
  }
  destroy() {
    this.destroyed = true;
  }
}

function setup(opts: { client?: Partial<InferenceClient>; fetch?: typeof fetch } = {}) {
  const cs = fakeCornerstone();
  const ohif = fakeServices();
  const overlays: FakeOverlay[] = [];
  const service = new ZerovarService({
    services: ohif.services,
    cornerstone: () => cs,
    config: { models: { ...DEFAULT_MODEL_URLS }, modelIndex: DEFAULT_MODEL_INDEX, backends: ['wasm'], wasmPath: '/zerovar/' },
    createClient: () => opts.client as InferenceClient,
    fetch: opts.fetch,
    createOverlay: (vp, rendered, onChange) => {
      const o = new FakeOverlay(vp, rendered, onChange);
      overlays.push(o);
      return o;
    },
    now: (() => {
      let t = 0;
      return () => (t += 5);
    })(),
  });
  ohif.services.zerovarService = service;
  const seen: DisplaySnapshot[] = [];
  service.subscribe(ZEROVAR_EVENTS.DISPLAY_CHANGED, (s) => seen.push(s as DisplaySnapshot));
  let overlayEvents = 0;
  service.subscribe(ZEROVAR_EVENTS.OVERLAY_CHANGED, () => overlayEvents++);
  return { cs, ohif, service, seen, overlays, overlayEvents: () => overlayEvents };
}

const params = (services: Services) =>
  ({ servicesManager: { services }, extensionManager: { getModuleEntry: () => undefined }, commandsManager: { runCommand: () => undefined } }) as ExtensionParams;

const dispatch = (target: EventTarget | HTMLDivElement, type: string) => (target as EventTarget).dispatchEvent(new Event(type));

describe('the service follows the displayed image by events', () => {
  test('registration: a name and a factory, as OHIF registerService takes them', () => {
    assert.equal(ZerovarService.REGISTRATION.name, SERVICE_NAME);
    const ohif = fakeServices();
    const created = ZerovarService.REGISTRATION.create({
      servicesManager: { services: ohif.services },
      extensionManager: { getModuleEntry: () => undefined },
    });
    assert.ok(created instanceof ZerovarService);
    created.refreshDisplay();
    assert.match(created.getDisplay().error ?? '', /Cornerstone extension is not loaded/);
  });

  test('start describes the active viewport and announces it once', () => {
    const { ohif, service, seen } = setup();
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    service.start();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.display?.info.imageId, 'wadors:a');
    assert.equal(seen[0]?.display?.info.modality, 'DX');
    assert.equal(seen[0]?.viewportId, 'vp1');
    service.refreshDisplay();
    ohif.fire('grid:state');
    assert.equal(seen.length, 1, 'nothing changed, nothing announced');
    assert.equal(ohif.subscribers('grid:active') + ohif.subscribers('grid:state') + ohif.subscribers('cvs:data'), 3);
    service.start();
    assert.equal(ohif.subscribers('grid:state'), 1, 'start is idempotent');
  });

  test('a new image on the element (scrolling, a loaded stack) is seen without any timer; renders of the same image cost nothing', () => {
    const { ohif, service, seen } = setup();
    const vp = fakeViewport('vp1', 'wadors:a');
    ohif.viewports.set('vp1', vp);
    ohif.setActive('vp1');
    service.start();
    const first = service.getDisplay().display;
    dispatch(vp.element, EV.IMAGE_RENDERED);
    assert.equal(seen.length, 1);
    assert.equal(service.getDisplay().display, first, 'the same image keeps its description');
    vp.imageId = 'wadors:b';
    dispatch(vp.element, EV.STACK_NEW_IMAGE);
    assert.equal(seen.length, 2);
    assert.equal(service.getDisplay().display?.info.imageId, 'wadors:b');
    vp.imageId = 'wadors:c';
    dispatch(vp.element, EV.IMAGE_RENDERED);
    assert.equal(service.getDisplay().display?.info.imageId, 'wadors:c', 'a render showing another image counts too');
  });

  test('a new viewport on the same element (OHIF makes one per display set) is the one read on its events', () => {
    const { cs, ohif, service, seen } = setup();
    const a = fakeViewport('vp1', 'wadors:a');
    ohif.viewports.set('vp1', a);
    ohif.setActive('vp1');
    service.start();
    const b = { ...fakeViewport('vp1', 'wadors:b'), element: a.element };
    b.getCurrentImageId = () => b.imageId;
    ohif.viewports.set('vp1', b);
    ohif.fire('cvs:data');
    assert.equal(service.getDisplay().display?.info.imageId, 'wadors:b');
    let reads = 0;
    const get = cs.metaData.get.bind(cs.metaData);
    cs.metaData.get = (...args: Parameters<typeof get>) => (reads++, get(...args));
    dispatch(a.element, EV.IMAGE_RENDERED);
    assert.equal(reads, 0, 'a render of the shown image costs no refresh (the replaced viewport is not consulted)');
    b.imageId = 'wadors:c';
    dispatch(a.element, EV.STACK_NEW_IMAGE);
    assert.equal(service.getDisplay().display?.info.imageId, 'wadors:c');
    assert.deepEqual(seen.map((x) => x.display?.info.imageId), ['wadors:a', 'wadors:b', 'wadors:c']);
  });

  test('no viewport yet: the reason is shown; Cornerstone enabling the element brings the image', () => {
    const { cs, ohif, service, seen } = setup();
    ohif.setActive('vp1');
    service.start();
    assert.equal(service.getDisplay().display, null);
    assert.match(service.getDisplay().error ?? '', /the active viewport shows no image/);
    const vp = fakeViewport('vp1', undefined);
    ohif.viewports.set('vp1', vp);
    dispatch(cs.eventTarget, EV.ELEMENT_ENABLED);
    assert.match(service.getDisplay().error ?? '', /has no image/, 'enabled, no stack yet');
    assert.equal(vp.listening(), 3, 'the new element is followed');
    vp.imageId = 'wadors:a';
    dispatch(vp.element, EV.IMAGE_RENDERED);
    assert.equal(service.getDisplay().display?.info.imageId, 'wadors:a');
    assert.equal(service.getDisplay().error, null);
    assert.equal(seen.length, 3);
  });

  test('the listeners move with the active viewport; the old element is no longer heard', () => {
    const { ohif, service, seen, overlayEvents } = setup();
    const a = fakeViewport('vp1', 'wadors:a');
    const b = fakeViewport('vp2', 'wadors:b');
    ohif.viewports.set('vp1', a);
    ohif.viewports.set('vp2', b);
    ohif.setActive('vp1');
    service.start();
    assert.equal(a.listening(), 3);
    ohif.setActive('vp2');
    ohif.fire('grid:active');
    assert.equal(a.listening(), 0);
    assert.equal(b.listening(), 3);
    assert.equal(service.getDisplay().viewportId, 'vp2');
    assert.ok(overlayEvents() >= 1, 'another active viewport is an overlay change for the panel');
    const n = seen.length;
    a.imageId = 'wadors:z';
    dispatch(a.element, EV.STACK_NEW_IMAGE);
    assert.equal(seen.length, n, 'the inactive viewport is not followed');
  });

  test('stop removes every listener and overlay; start follows again', () => {
    const { cs, ohif, service, seen, overlays } = setup();
    const vp = fakeViewport('vp1', 'wadors:a');
    ohif.viewports.set('vp1', vp);
    ohif.setActive('vp1');
    service.start();
    service.toggleOverlay();
    service.onModeExit();
    assert.equal(vp.listening(), 0);
    assert.equal(ohif.subscribers('grid:active') + ohif.subscribers('grid:state') + ohif.subscribers('cvs:data'), 0);
    assert.ok(overlays[0]?.destroyed);
    assert.equal(service.isOverlayVisible('vp1'), false);
    const n = seen.length;
    vp.imageId = 'wadors:b';
    dispatch(vp.element, EV.STACK_NEW_IMAGE);
    dispatch(cs.eventTarget, EV.IMAGE_LOADED);
    assert.equal(seen.length, n);
    service.onModeEnter();
    assert.equal(service.getDisplay().display?.info.imageId, 'wadors:b');
    assert.equal(vp.listening(), 3);
  });
});

describe('the service owns the overlays', () => {
  test('one overlay per viewport, made again when the viewport was replaced; two services share nothing', () => {
    const { ohif, service, overlays } = setup();
    const vp = fakeViewport('vp1', 'wadors:a');
    ohif.viewports.set('vp1', vp);
    ohif.setActive('vp1');
    assert.equal(service.toggleOverlay(), true);
    assert.equal(service.overlayFor(vp), overlays[0]);
    assert.equal(overlays[0]?.renderedEvent, EV.IMAGE_RENDERED);
    const replaced = fakeViewport('vp1', 'wadors:a');
    ohif.viewports.set('vp1', replaced);
    assert.equal(service.isOverlayVisible(), true);
    service.setOverlayVisible(false);
    assert.equal(overlays.length, 2);
    assert.ok(overlays[0]?.destroyed, 'the old viewport\'s overlay is removed');
    assert.equal(setup().service.existingOverlay('vp1'), undefined, 'no overlay state is shared between services');
  });

  test('a result is drawn with the panel\'s style on its own viewport only; null clears it', () => {
    const { ohif, service, overlays } = setup();
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    const attention = { cam: new Float32Array([0, 0.5, 1, 0.2]), width: 2, height: 2, classIndex: 0, className: 'COVID', method: 'Integrated Grad-CAM' };
    const lungMask = { mask: new Uint8Array([255, 255, 0, 255]), width: 2, height: 2 };
    service.showResult({ viewportId: 'vp2', imageId: 'wadors:a', attention, lungMask });
    assert.equal(overlays.length, 0, 'a result of another viewport is not drawn here');
    service.showResult({ viewportId: 'vp1', imageId: 'wadors:a', attention, lungMask });
    const o = overlays[0];
    assert.ok(o, 'the result made the viewport\'s overlay');
    assert.equal(o.heatmap?.label, 'grad-cam');
    assert.equal(o.heatmap?.imageId, 'wadors:a');
    assert.equal(o.heatmap?.rgba.length, 16);
    assert.equal(o.contour?.label, 'lung-contour');
    const alpha = () => Math.max(...Array.from(o.heatmap!.rgba.filter((_, i) => i % 4 === 3)));
    const atHalf = alpha();
    service.setOverlayStyle({ opacity: 1, contour: false });
    assert.ok(alpha() > atHalf + 60, `opacity raises the peak alpha (${atHalf} -> ${alpha()})`);
    assert.equal(o.contour, null, 'the contour choice removes it');
    service.showResult(null);
    assert.equal(o.heatmap, null);
    service.setOverlayStyle({ opacity: 0.5, contour: true });
    assert.equal(o.heatmap, null, 'a forgotten result is not drawn again');
  });
});

describe('classification and availability through the service', () => {
  test('the displayed image goes to the client as 8-bit grey with the chosen model\'s bundle URL', async () => {
    const calls: { url: string; width: number; height: number; data: number[] }[] = [];
    const result = { className: 'COVID' } as ClassifyResult;
    const client = {
      classify: async (url: string, image: { width: number; height: number; data: Uint8Array }) => {
        calls.push({ url, width: image.width, height: image.height, data: Array.from(image.data) });
        return result;
      },
    };
    const { ohif, service } = setup({ client: client as unknown as InferenceClient });
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    let painted = 0;
    const c = await service.classifyDisplayed('masked', { beforePixels: async () => void painted++ });
    assert.equal(painted, 1);
    assert.equal(c.result, result);
    assert.equal(c.viewportId, 'vp1');
    assert.equal(c.imageId, 'wadors:a');
    assert.equal(c.totalMs, 5);
    assert.equal(calls[0]?.url, DEFAULT_MODEL_URLS.masked);
    assert.equal(calls[0]?.width, 4);
    assert.equal(calls[0]?.height, 3);
    const expected = storedToGrey8({
      width: 4, height: 3, data: Uint8Array.from({ length: 12 }, (_, i) => i * 20), bitsStored: 8, pixelRepresentation: 0,
      photometric: 'MONOCHROME2', rescaleSlope: 1, rescaleIntercept: 0, windowCenter: 127.5, windowWidth: 256, voiLutFunction: 'LINEAR',
    });
    assert.deepEqual(calls[0]?.data, Array.from(expected.data), 'the stored values through the image\'s VOI window, as the trainer reads them');
    assert.ok((calls[0]?.data[11] ?? 0) > (calls[0]?.data[1] ?? 0));
  });

  test('an image that did not render (NaN camera, no image data) is not classified: the run says why', async () => {
    let classified = 0;
    const client = { classify: async () => { classified++; return {} as ClassifyResult; } };
    const { ohif, service } = setup({ client: client as unknown as InferenceClient });
    const nan = fakeViewport('vp1', 'wadors:a');
    nan.worldToCanvas = () => [NaN, NaN];
    ohif.viewports.set('vp1', nan);
    ohif.setActive('vp1');
    await assert.rejects(service.classifyDisplayed('raw'), /did not render in the viewport \(the viewer has no valid geometry/);
    nan.getImageData = () => undefined;
    await assert.rejects(service.classifyDisplayed('raw'), /did not render in the viewport \(no image data\)/);
    assert.equal(classified, 0, 'nothing reaches the model');
  });

  test('no viewport: the run fails with the reason, before any pixel is read', async () => {
    const { service } = setup({ client: {} as InferenceClient });
    let painted = 0;
    await assert.rejects(service.classifyDisplayed('raw', { beforePixels: async () => void painted++ }), /no active viewport/);
    assert.equal(painted, 0);
  });
});

describe('commands and toolbar go through the service', () => {
  test('toggle, show, hide, test pattern, clear; the evaluator reports the overlay', () => {
    const { ohif, overlays } = setup();
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    const { actions } = getCommandsModule(params(ohif.services));
    const [evaluator] = getToolbarModule(params(ohif.services));
    assert.equal(evaluator?.name, OVERLAY_EVALUATOR);
    assert.deepEqual(actions[COMMANDS.toggleOverlay]?.(), { ok: true, visible: true });
    assert.equal(evaluator?.evaluate({}).isActive, true);
    assert.equal(evaluator?.evaluate({ viewportId: 'vp2' }).isActive, false);
    assert.deepEqual(actions[COMMANDS.hideOverlay]?.(), { ok: true, visible: false });
    assert.deepEqual(actions[COMMANDS.showTestPattern]?.(), { ok: true, visible: true });
    assert.equal(overlays[0]?.heatmap?.label, 'test-pattern');
    assert.deepEqual(actions[COMMANDS.clearOverlay]?.(), { ok: true, visible: false });
    assert.equal(overlays[0]?.heatmap, null);
    assert.equal(evaluator?.evaluate({}).isActive, false);
  });

  test('without a viewport a command answers ok: false and notifies; without the service too', () => {
    const { ohif } = setup();
    const { actions } = getCommandsModule(params(ohif.services));
    const r = actions[COMMANDS.showOverlay]?.() as { ok: boolean; message: string };
    assert.equal(r.ok, false);
    assert.match(r.message, /no active viewport/);
    assert.deepEqual(ohif.notified, [r.message]);
    const bare = fakeServices();
    const r2 = getCommandsModule(params(bare.services)).actions[COMMANDS.toggleOverlay]?.() as { ok: boolean; message: string };
    assert.match(r2.message, /not registered/);
    assert.equal(getToolbarModule(params(bare.services))[0]?.evaluate({}).isActive, false);
  });
});

describe('an image the guard flags', () => {
  test('a blocked result draws nothing, switches the overlay off and disables the toolbar toggle until a drawn result replaces it', () => {
    const { ohif, service, overlays } = setup();
    let refreshed = 0;
    ohif.services.toolbarService.refreshToolbarState = () => void refreshed++;
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    const attention = { cam: new Float32Array([0, 0.5, 1, 0.2]), width: 2, height: 2, classIndex: 0, className: 'COVID', method: 'Integrated Grad-CAM' };
    const lungMask = { mask: new Uint8Array([255, 255, 0, 255]), width: 2, height: 2 };
    service.showResult({ viewportId: 'vp1', imageId: 'wadors:a', attention, lungMask });
    service.setOverlayVisible(true);
    const [evaluator] = getToolbarModule(params(ohif.services));
    assert.equal(evaluator?.evaluate({}).disabled, false);
    // Even handed a map, a blocked result draws none of it.
    service.showResult({ viewportId: 'vp1', imageId: 'wadors:b', attention, lungMask, blocked: true });
    const o = overlays[0];
    const heatmap = () => o?.heatmap;
    assert.equal(heatmap(), null, 'no heatmap for a flagged image');
    assert.equal(o?.contour, null, 'no lung contour either');
    assert.equal(o?.visible, false, 'the overlay is switched off');
    assert.equal(service.isOverlayBlocked('vp1'), true);
    assert.equal(service.isOverlayBlocked('vp2'), false);
    assert.deepEqual(evaluator?.evaluate({}), { disabled: true, isActive: false });
    assert.equal(refreshed, 1, 'the toolbar was asked to evaluate again');
    service.setOverlayVisible(true);
    service.setOverlayStyle({ opacity: 1, contour: true });
    assert.equal(heatmap(), null, 'showing the overlay or restyling it still draws no map');
    service.showResult({ viewportId: 'vp1', imageId: 'wadors:b', attention, lungMask });
    assert.equal(heatmap()?.label, 'grad-cam', 'shown anyway: the map is drawn');
    assert.equal(service.isOverlayBlocked('vp1'), false);
    assert.equal(evaluator?.evaluate({}).disabled, false);
    assert.equal(refreshed, 2);
  });

  test('showAnyway reaches the client', async () => {
    const seen: unknown[] = [];
    const client = {
      classify: async (_url: string, _image: unknown, opts?: { showAnyway?: boolean }) => {
        seen.push(opts?.showAnyway);
        return { className: 'COVID' } as ClassifyResult;
      },
    };
    const { ohif, service } = setup({ client: client as unknown as Partial<InferenceClient> });
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    await service.classifyDisplayed('raw');
    await service.classifyDisplayed('raw', { showAnyway: true });
    assert.deepEqual(seen, [undefined, true]);
  });
});

describe('the default model choice through the service', () => {
  test('both manifests are read once; the higher external AUC wins', async () => {
    const asked: string[] = [];
    const aucs: Record<string, number> = { [DEFAULT_MODEL_URLS.raw]: 0.58, [DEFAULT_MODEL_URLS.masked]: 0.63 };
    const fake = (async (url: string) => {
      asked.push(url);
      const base = url.replace(/manifest\.json$/, '');
      const variant = base.includes('masked') ? 'masked' : 'raw';
      return new Response(JSON.stringify({ name: variant, variant, classes: ['COVID', 'Normal'], metrics: { external: { ieee8023: { auc: aucs[base] } } } }));
    }) as typeof fetch;
    const { service } = setup({ fetch: fake });
    const c = (await service.modelList()).choice;
    assert.equal(c.id, 'masked');
    assert.equal(c.reason, 'masked model by default: external AUC 0.63 vs 0.58 (ieee8023)');
    await service.modelList();
    assert.deepEqual(asked.sort(), [`${DEFAULT_MODEL_URLS.masked}manifest.json`, `${DEFAULT_MODEL_URLS.raw}manifest.json`]);
  });
  test('a listed bundle that is not usable, or an id not listed, is not classified: the run says why', async () => {
    let classified = 0;
    const client = { classify: async () => { classified++; return {} as ClassifyResult; } };
    const fake = (async (url: string) =>
      url.includes('masked') ? new Response(JSON.stringify({ name: 'm', variant: 'lungs' })) : new Response('', { status: 404 })) as typeof fetch;
    const { ohif, service } = setup({ client: client as unknown as InferenceClient, fetch: fake });
    ohif.viewports.set('vp1', fakeViewport('vp1', 'wadors:a'));
    ohif.setActive('vp1');
    await assert.rejects(service.classifyDisplayed('masked'), /^Error: The masked model bundle cannot be used: manifest\.variant: expected "raw" or "masked"$/);
    await assert.rejects(service.classifyDisplayed('raw-4class'), /no model "raw-4class" is listed/);
    assert.equal(classified, 0);
  });
  test('a missing masked bundle keeps raw', async () => {
    const fake = (async (url: string) =>
      url.includes('masked') ? new Response('', { status: 404 })
        : new Response(JSON.stringify({ name: 'raw', variant: 'raw', classes: ['COVID', 'Normal'], metrics: { external: { x: { auc: 0.5 } } } }))) as typeof fetch;
    const { service } = setup({ fetch: fake });
    assert.equal((await service.modelList()).choice.id, 'raw');
    assert.equal(await service.availability('masked'), 'missing');
    assert.equal(await service.availability('raw'), 'available');
    assert.equal(await service.availability('nowhere'), 'missing', 'an id the list does not hold');
  });
});
