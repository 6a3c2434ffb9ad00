// The "COVID-19 (research)" side panel: the displayed image, the model choice (raw / masked), Run (or auto-run),
// per-class probabilities, the model's facts from its manifest, the backend and timings, the attention overlay
// (Grad-CAM of the predicted class) with its toggle and opacity, and for a masked model the lung contour it
// classified within. Inference runs in a Web Worker; every failure
// ends as a message here, never as an exception in the viewer.
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { camToRgba } from '@zerovar/trainer/browser';
import { getActiveViewport, getCornerstone } from './cornerstone.js';
import { describeDisplayedImage, readDisplayedGrey, type DisplayedImage } from './displayedImage.js';
import { COMMANDS } from './ids.js';
import { InferenceError, sharedInferenceClient } from './inferenceClient.js';
import type { ClassifyResult } from './inferenceProtocol.js';
import { contourRgba } from './lungContour.js';
import { formatBytes, removedText } from './modelFacts.js';
import { checkAvailability, inferenceConfig, VARIANTS, type Availability, type ModelVariant } from './models.js';
import type { ExtensionParams } from './ohif-types.js';
import { existingOverlay, overlayFor, subscribeOverlays } from './overlay.js';

export type { ModelVariant } from './models.js';

type RunState =
  | { kind: 'idle' }
  | { kind: 'running'; variant: ModelVariant }
  | { kind: 'done'; variant: ModelVariant; imageId: string; result: ClassifyResult; totalMs: number }
  | { kind: 'failed'; message: string };

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const pct = (p: number) => `${(100 * p).toFixed(1)} %`;
const ms = (t: number) => `${t < 10 ? t.toFixed(1) : Math.round(t)} ms`;
const nextPaint = () => new Promise<void>((r) => requestAnimationFrame(() => setTimeout(r, 0)));

const styles = {
  panel: { padding: '10px 12px', color: '#e5e7eb', fontSize: 13, lineHeight: 1.45, display: 'flex', flexDirection: 'column', gap: 10 },
  notice: { border: '1px solid #d97706', background: 'rgba(217,119,6,0.15)', color: '#fbbf24', padding: '6px 8px', borderRadius: 4, fontWeight: 600 },
  warning: { border: '1px solid #b45309', color: '#fcd34d', padding: '4px 8px', borderRadius: 4 },
  dl: { display: 'grid', gridTemplateColumns: 'max-content 1fr', columnGap: 10, rowGap: 2, margin: 0 },
  dt: { color: '#9ca3af' },
  dd: { margin: 0 },
  button: { background: '#2563eb', color: 'white', border: 0, borderRadius: 4, padding: '6px 12px', cursor: 'pointer' },
  error: { color: '#fca5a5' },
  muted: { color: '#9ca3af' },
  select: { background: '#111827', color: '#e5e7eb', border: '1px solid #374151', borderRadius: 4, padding: '2px 4px' },
  section: { fontWeight: 600, color: '#d1d5db', marginTop: 4 },
  barTrack: { background: '#1f2937', borderRadius: 3, height: 8, overflow: 'hidden' },
} satisfies Record<string, React.CSSProperties>;

const slug = (k: string) => k.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

function Rows({ rows, cy }: { rows: [string, string | undefined][]; cy: string }) {
  return (
    <dl style={styles.dl} data-cy={cy}>
      {rows
        .filter((r): r is [string, string] => r[1] !== undefined)
        .map(([k, v]) => (
          <React.Fragment key={k}>
            <dt style={styles.dt}>{k}</dt>
            <dd style={styles.dd} data-cy={`${cy}-${slug(k)}`}>{v}</dd>
          </React.Fragment>
        ))}
    </dl>
  );
}

function Probabilities({ result }: { result: ClassifyResult }) {
  return (
    <div data-cy="zerovar-probabilities" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      {result.classes.map((c, i) => {
        const p = result.probabilities[i] ?? 0;
        const best = i === result.classIndex;
        return (
          <div key={c} data-cy={`zerovar-prob-${slug(c)}`} data-class={c} data-probability={String(p)}>
            <div style={{ display: 'flex', justifyContent: 'space-between', fontWeight: best ? 700 : 400 }}>
              <span>{c}</span>
              <span>{pct(p)}</span>
            </div>
            <div style={styles.barTrack}>
              <div style={{ width: `${Math.max(0, Math.min(100, 100 * p))}%`, height: '100%', background: best ? '#f59e0b' : '#3b82f6' }} />
            </div>
          </div>
        );
      })}
    </div>
  );
}

/** Whether the Grad-CAM map has any positive value: an all-zero map draws nothing, and the panel says so. */
function attentionEmpty(result: ClassifyResult): boolean {
  const cam = result.attention?.cam;
  if (!cam) return true;
  for (let i = 0; i < cam.length; i++) if (cam[i] > 0) return false;
  return true;
}

function AttentionNote({ result }: { result: ClassifyResult }) {
  const empty = attentionEmpty(result);
  return (
    <div data-cy="zerovar-attention" data-empty={String(empty)} style={styles.muted}>
      {empty
        ? `Attention map is empty: no image region raised the ${result.attention?.className ?? result.className} score (nothing to overlay).`
        : `Attention map: Grad-CAM of ${result.attention!.className}.`}
    </div>
  );
}

function availabilityText(variant: ModelVariant, a: Availability | undefined): string | undefined {
  if (a === 'missing') return `${variant} model not available`;
  if (a === 'error') return `${variant} model: its server did not answer`;
  return undefined;
}

export function ResearchPanel({ servicesManager, extensionManager, commandsManager }: ExtensionParams) {
  const services = servicesManager.services;
  const config = useMemo(() => inferenceConfig(), []);
  const client = useMemo(() => sharedInferenceClient(config), [config]);
  const [display, setDisplay] = useState<DisplayedImage | null>(null);
  const [displayError, setDisplayError] = useState<string | null>(null);
  const [variant, setVariant] = useState<ModelVariant>('raw');
  const [availability, setAvailability] = useState<Partial<Record<ModelVariant, Availability>>>({});
  const [run, setRun] = useState<RunState>({ kind: 'idle' });
  const [autoRun, setAutoRun] = useState(false);
  const [overlayOn, setOverlayOn] = useState(false);
  const [opacity, setOpacity] = useState(0.5);
  const [contourOn, setContourOn] = useState(true);
  /** Finished runs (done or failed), shown as data-runs so a caller can wait for the next outcome. */
  const [finished, setFinished] = useState(0);
  const runSeq = useRef(0);
  /** What the last run drew on the viewport: its attention map and, for a masked model, its lung mask. */
  const lastDrawn = useRef<{ viewportId: string; imageId: string; attention?: ClassifyResult['attention']; lungMask?: ClassifyResult['lungMask'] } | null>(null);

  const renderedEvent = useCallback(() => {
    try {
      return getCornerstone(extensionManager).Enums.Events.IMAGE_RENDERED;
    } catch {
      return undefined;
    }
  }, [extensionManager]);

  const refreshDisplay = useCallback(() => {
    try {
      const next = describeDisplayedImage(getCornerstone(extensionManager), getActiveViewport(services));
      setDisplay((prev) => (prev && prev.info.imageId === next.info.imageId ? prev : next));
      setDisplayError(null);
    } catch (err) {
      setDisplay(null);
      setDisplayError(message(err));
    }
    try {
      setOverlayOn(existingOverlay(services.viewportGridService.getActiveViewportId())?.isVisible() ?? false);
    } catch {
      // no viewport yet
    }
  }, [services, extensionManager]);

  useEffect(() => {
    refreshDisplay();
    const grid = services.viewportGridService;
    const cvs = services.cornerstoneViewportService;
    const subs = [
      [grid, grid.EVENTS.ACTIVE_VIEWPORT_ID_CHANGED],
      [grid, grid.EVENTS.GRID_STATE_CHANGED],
      [cvs, cvs.EVENTS.VIEWPORT_DATA_CHANGED],
    ].flatMap(([service, event]) => (event ? [(service as typeof grid).subscribe(event as string, refreshDisplay)] : []));
    // Image loads finish after those events; a slow poll catches the displayed image changing without one.
    const timer = window.setInterval(refreshDisplay, 1000);
    const unsubOverlay = subscribeOverlays((o) => {
      if (o.viewport.id === services.viewportGridService.getActiveViewportId()) setOverlayOn(o.isVisible());
    });
    return () => {
      subs.forEach((s) => s.unsubscribe());
      window.clearInterval(timer);
      unsubOverlay();
    };
  }, [services, refreshDisplay]);

  // Which bundles are installed (a HEAD request each; re-checked when the choice changes).
  useEffect(() => {
    let live = true;
    setAvailability((a) => ({ ...a, [variant]: a[variant] ?? 'checking' }));
    void checkAvailability(config.models[variant]).then((a) => live && setAvailability((prev) => ({ ...prev, [variant]: a })));
    return () => {
      live = false;
    };
  }, [config, variant]);
  useEffect(() => {
    for (const v of VARIANTS) {
      void checkAvailability(config.models[v]).then((a) => setAvailability((prev) => ({ ...prev, [v]: prev[v] === undefined || prev[v] === 'checking' ? a : prev[v] })));
    }
  }, [config]);

  const paintOverlay = useCallback(() => {
    const last = lastDrawn.current;
    if (!last) return;
    try {
      const viewport = getActiveViewport(services);
      if (viewport.id !== last.viewportId) return;
      const overlay = overlayFor(viewport, renderedEvent());
      const a = last.attention;
      overlay.setHeatmap(a ? {
        width: a.width, height: a.height, rgba: camToRgba(a.cam, a.width, a.height, { opacity }), label: 'grad-cam', imageId: last.imageId,
      } : null);
      const m = last.lungMask;
      overlay.setContour(m && contourOn ? {
        width: m.width, height: m.height, rgba: contourRgba(m.mask, m.width, m.height), label: 'lung-contour', imageId: last.imageId,
      } : null);
    } catch {
      // the viewport went away; nothing to draw on
    }
  }, [services, renderedEvent, opacity, contourOn]);

  useEffect(paintOverlay, [paintOverlay]);

  const onRun = useCallback(async () => {
    const seq = ++runSeq.current;
    const chosen = variant;
    setRun({ kind: 'running', variant: chosen });
    try {
      if (availability[chosen] === 'missing') throw new Error(availabilityText(chosen, 'missing'));
      const cs = getCornerstone(extensionManager);
      const viewport = getActiveViewport(services);
      const d = describeDisplayedImage(cs, viewport);
      await nextPaint(); // let "Running…" appear before the synchronous pixel pass
      const grey = readDisplayedGrey(cs, viewport, d);
      const t0 = performance.now();
      const result = await client.classify(config.models[chosen], grey, { explain: true });
      const totalMs = performance.now() - t0;
      if (seq !== runSeq.current) return; // a newer run (or the image changed) superseded this one
      lastDrawn.current = { viewportId: viewport.id, imageId: d.info.imageId, attention: result.attention, lungMask: result.lungMask };
      paintOverlay();
      setRun({ kind: 'done', variant: chosen, imageId: d.info.imageId, result, totalMs });
      setFinished((n) => n + 1);
    } catch (err) {
      if (seq !== runSeq.current) return;
      let text = message(err);
      if (err instanceof InferenceError && err.missing) {
        text = `${availabilityText(chosen, 'missing')} (no bundle at ${config.models[chosen]})`;
        setAvailability((a) => ({ ...a, [chosen]: 'missing' }));
      } else if (err instanceof InferenceError && err.name === 'BundleError') {
        text = `The ${chosen} model bundle was refused: ${err.message}`;
      }
      setRun({ kind: 'failed', message: text });
      setFinished((n) => n + 1);
    }
  }, [variant, availability, extensionManager, services, client, config, paintOverlay]);

  // A new image: drop the old result and attention; run again when auto-run is on.
  const imageId = display?.info.imageId;
  const lastImage = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (imageId === lastImage.current) return;
    lastImage.current = imageId;
    runSeq.current++;
    lastDrawn.current = null;
    setRun({ kind: 'idle' });
    try {
      const overlay = existingOverlay(services.viewportGridService.getActiveViewportId());
      overlay?.setHeatmap(null);
      overlay?.setContour(null);
    } catch {
      // nothing to clear
    }
    if (imageId && autoRun) void onRun();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [imageId]);

  const onAutoRun = useCallback((on: boolean) => {
    setAutoRun(on);
    if (on && display && run.kind === 'idle') void onRun();
  }, [display, run.kind, onRun]);

  const onOverlayToggle = useCallback((on: boolean) => {
    const r = commandsManager.runCommand(on ? COMMANDS.showOverlay : COMMANDS.hideOverlay) as { ok?: boolean; message?: string } | undefined;
    if (r && r.ok === false) setRun({ kind: 'failed', message: r.message ?? 'overlay failed' });
  }, [commandsManager]);

  const missingText = availabilityText(variant, availability[variant]);
  const facts = run.kind === 'done' ? run.result.facts : undefined;

  return (
    <div style={styles.panel} data-cy="zerovar-panel">
      <div style={{ fontWeight: 700, fontSize: 14 }}>COVID-19 (research)</div>
      <div style={styles.notice} data-cy="zerovar-notice" role="note">
        Research use only — not for diagnosis
      </div>
      {display ? (
        <Rows
          cy="zerovar-image-info"
          rows={[
            ['Modality', display.info.modality],
            ['Body part', display.facts.bodyPart],
            ['Photometric', display.info.photometric],
            ['Size', `${display.info.columns} × ${display.info.rows}`],
            ['Bits stored', display.info.bitsStored === undefined ? '?' : String(display.info.bitsStored)],
          ]}
        />
      ) : (
        <div data-cy="zerovar-image-info-missing" style={styles.muted}>
          {displayError ? `No image: ${displayError}` : 'Waiting for an image…'}
        </div>
      )}
      {display && (display.assessment.warnings.length > 0 || display.assessment.error) && (
        <div data-cy="zerovar-warnings" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          {display.assessment.warnings.map((w) => (
            <div key={w} style={styles.warning} role="alert">{w}</div>
          ))}
          {display.assessment.error && <div style={{ ...styles.warning, ...styles.error }} role="alert">{display.assessment.error}</div>}
        </div>
      )}
      <label>
        Model{' '}
        <select style={styles.select} data-cy="zerovar-model" value={variant} onChange={(e) => setVariant(e.target.value as ModelVariant)}>
          <option value="raw">raw (whole image){availability.raw === 'missing' ? ' — not available' : ''}</option>
          <option value="masked">masked (lungs only){availability.masked === 'missing' ? ' — not available' : ''}</option>
        </select>
      </label>
      {missingText && (
        <div data-cy="zerovar-model-status" style={styles.error}>{missingText}</div>
      )}
      <div style={{ display: 'flex', gap: 12, alignItems: 'center' }}>
        <button type="button" style={styles.button} data-cy="zerovar-run" onClick={() => void onRun()} disabled={run.kind === 'running'}>
          {run.kind === 'running' ? 'Running…' : 'Run'}
        </button>
        <label>
          <input type="checkbox" data-cy="zerovar-auto-run" checked={autoRun} onChange={(e) => onAutoRun(e.target.checked)} /> Auto-run on
          image change
        </label>
      </div>
      <div data-cy="zerovar-result" data-state={run.kind} data-runs={finished} aria-live="polite">
        {run.kind === 'running' && <div style={styles.muted}>Classifying with the {run.variant} model…</div>}
        {run.kind === 'done' && (
          <div style={{ display: 'flex', flexDirection: 'column', gap: 8 }}>
            <div data-cy="zerovar-predicted" data-class={run.result.className} style={{ fontSize: 15 }}>
              Predicted: <b>{run.result.className}</b> ({pct(run.result.probabilities[run.result.classIndex] ?? 0)})
            </div>
            <Probabilities result={run.result} />
            <AttentionNote result={run.result} />
            <Rows
              cy="zerovar-run-info"
              rows={[
                ['Backend', run.result.backend],
                ['Skipped', run.result.skipped.length ? run.result.skipped.join('; ') : undefined],
                ['Inference', `${ms(run.result.classifyMs)} + Grad-CAM ${ms(run.result.explainMs)}`],
                ['Segmentation', run.result.lungMask ? `${ms(run.result.segmentMs)} (part of the inference)` : undefined],
                ['Model load', run.result.cold ? `${ms(run.result.loadMs)} (first use)` : 'cached'],
                ['Total', ms(run.totalMs)],
              ]}
            />
          </div>
        )}
        {run.kind === 'failed' && (
          <div style={styles.error} data-cy="zerovar-error" role="alert">
            {run.message}
          </div>
        )}
      </div>
      <div style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
        <label>
          <input type="checkbox" data-cy="zerovar-overlay-toggle" checked={overlayOn} onChange={(e) => onOverlayToggle(e.target.checked)} /> Attention
          overlay (Grad-CAM of the predicted class)
        </label>
        {run.kind === 'done' && run.result.lungMask && (
          <label>
            <input type="checkbox" data-cy="zerovar-contour-toggle" checked={contourOn} onChange={(e) => setContourOn(e.target.checked)} /> Lung
            contour (the region the masked model classified)
          </label>
        )}
        <label style={{ display: 'flex', gap: 8, alignItems: 'center' }}>
          Opacity
          <input type="range" min={0.1} max={1} step={0.05} value={opacity} data-cy="zerovar-opacity"
            onChange={(e) => setOpacity(Number(e.target.value))} />
          <span>{Math.round(opacity * 100)} %</span>
        </label>
      </div>
      {facts && (
        <>
          <div style={styles.section}>Model</div>
          <Rows
            cy="zerovar-facts"
            rows={[
              ['Name', `${facts.name} (${facts.variant})`],
              ['Backbone', `${facts.backbone}, ${facts.inputSize} px`],
              ['Units removed', removedText(facts.unitsBefore, facts.unitsAfter)],
              ['Parameters removed', removedText(facts.paramsBefore, facts.paramsAfter)],
              ['Bundle size', formatBytes(facts.bundleBytes)],
              ['Test accuracy', facts.testAccuracy === undefined ? undefined : pct(facts.testAccuracy)],
              ['Test AUC', facts.testAuc === undefined ? undefined : facts.testAuc.toFixed(3)],
              ['Classifier', facts.classifier],
              ['Features (k)', String(facts.k)],
            ]}
          />
        </>
      )}
    </div>
  );
}
