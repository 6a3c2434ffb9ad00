// Panel hook: running the chosen model on the displayed image through the service, the run's state, drawing its
// attention map (and lung contour) with the panel's opacity and contour choice, and starting afresh when the
// displayed image changes (running again by itself when auto-run is on). Every state but idle belongs to the image
// it was started on (displayKey.ts): shown for that image only, and a result arriving after a change is dropped.
// An image the guard flags is held back: no class result and nothing drawn until the user asks to see it anyway
// (a new run that also explains it).
import { useCallback, useEffect, useRef, useState } from 'react';
import { displayKey, snapshotKey, type DisplayKey } from './displayKey.js';
import { InferenceError } from './inferenceClient.js';
import type { ClassifyResult } from './inferenceProtocol.js';
import type { ZerovarService } from './service.js';
import { availabilityText, type AvailabilityMap } from './useModelAvailability.js';

/** A run's state; `key` is the displayed image it belongs to. */
export type RunState =
  | { kind: 'idle' }
  | { kind: 'running'; key: DisplayKey; model: string }
  | { kind: 'done'; key: DisplayKey; model: string; imageId: string; result: ClassifyResult; totalMs: number; shownAnyway: boolean }
  | { kind: 'failed'; key: DisplayKey; message: string };

const IDLE: RunState = { kind: 'idle' };

/** What the panel shows for the displayed image `key`: the run's state if it belongs to that image, else idle. */
export function shownRun(run: RunState, key: DisplayKey): RunState {
  return run.kind === 'idle' || run.key === key ? run : IDLE;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const nextPaint = () => new Promise<void>((r) => requestAnimationFrame(() => setTimeout(r, 0)));

/** What the panel says about a failed run of model `id`, and whether it showed the bundle is not installed. */
export function failureText(err: unknown, id: string, modelUrl: string | undefined): { text: string; missing: boolean } {
  if (err instanceof InferenceError && err.missing) {
    return { text: `${availabilityText(id, 'missing')} (no bundle at ${modelUrl ?? 'its URL'})`, missing: true };
  }
  if (err instanceof InferenceError && err.name === 'BundleError') {
    return { text: `The ${id} model bundle was refused: ${err.message}`, missing: false };
  }
  return { text: message(err), missing: false };
}

/** Whether the Grad-CAM map has no positive value: an all-zero map draws nothing, and the panel says so. */
export function attentionEmpty(result: ClassifyResult): boolean {
  const cam = result.attention?.cam;
  if (!cam) return true;
  for (let i = 0; i < cam.length; i++) if (cam[i] > 0) return false;
  return true;
}

/** The guard flagged the result's image and the user has not asked to see it anyway: show no class result. */
export function resultWithheld(result: Pick<ClassifyResult, 'ood'>, shownAnyway: boolean): boolean {
  return result.ood?.flagged === true && !shownAnyway;
}

/**
 * Whether a result may be shown: it was made on the image Run was pressed for (`started`), and that is still
 * the image the active viewport shows (`now`).
 */
export function resultIsCurrent(started: DisplayKey, made: DisplayKey, now: DisplayKey): boolean {
  return made === started && now === started;
}

export interface ClassificationOptions {
  service: ZerovarService;
  /** The chosen model's id. */
  model: string;
  availability: AvailabilityMap;
  markMissing: (id: string) => void;
  /** The displayed image's identity (displayKey.ts): a new one drops the result. */
  displayed: DisplayKey;
  autoRun: boolean;
  opacity: number;
  contourOn: boolean;
}

export function useClassification(o: ClassificationOptions) {
  const { service, model, availability, markMissing, displayed, autoRun, opacity, contourOn } = o;
  const [run, setRun] = useState<RunState>(IDLE);
  /** Finished runs (done or failed), shown as data-runs so a caller can wait for the next outcome. */
  const [finished, setFinished] = useState(0);
  const runSeq = useRef(0);

  useEffect(() => service.setOverlayStyle({ opacity, contour: contourOn }), [service, opacity, contourOn]);

  const onRun = useCallback(async (opts: { showAnyway?: boolean } = {}) => {
    const showAnyway = opts.showAnyway === true;
    const seq = ++runSeq.current;
    const chosen = model;
    service.refreshDisplay(); // the run is for the image shown now, not a snapshot an event has yet to update
    const key = snapshotKey(service.getDisplay());
    setRun({ kind: 'running', key, model: chosen });
    try {
      if (availability[chosen] === 'missing') throw new Error(availabilityText(chosen, 'missing'));
      // "Running…" paints before the synchronous pixel pass.
      const c = await service.classifyDisplayed(chosen, { beforePixels: nextPaint, showAnyway });
      if (seq !== runSeq.current) return; // a newer run (or the image changed) superseded this one
      // The viewport is read afresh: the result must be of the image it shows now, and of the one Run was for.
      service.refreshDisplay();
      if (!resultIsCurrent(key, displayKey(c.viewportId, c.imageId), snapshotKey(service.getDisplay()))) {
        setRun(IDLE);
        return;
      }
      const blocked = resultWithheld(c.result, showAnyway);
      service.showResult({ viewportId: c.viewportId, imageId: c.imageId, attention: c.result.attention, lungMask: c.result.lungMask, blocked });
      setRun({ kind: 'done', key, model: chosen, imageId: c.imageId, result: c.result, totalMs: c.totalMs, shownAnyway: showAnyway });
      setFinished((n) => n + 1);
    } catch (err) {
      const url = (await service.model(chosen).catch(() => undefined))?.url;
      if (seq !== runSeq.current) return;
      const f = failureText(err, chosen, url);
      if (f.missing) markMissing(chosen);
      setRun({ kind: 'failed', key, message: f.text });
      setFinished((n) => n + 1);
    }
  }, [service, model, availability, markMissing]);

  // The image-change effect below must see this render's run function and auto-run choice without re-running
  // for them: it reacts to the image alone.
  const latest = useRef({ onRun, autoRun });
  useEffect(() => {
    latest.current = { onRun, autoRun };
  }, [onRun, autoRun]);

  // A new image (or another viewport): drop the old result and attention; run again when auto-run is on.
  const lastDisplayed = useRef<DisplayKey | undefined>(undefined);
  useEffect(() => {
    if (displayed === lastDisplayed.current) return;
    lastDisplayed.current = displayed;
    runSeq.current++;
    setRun(IDLE);
    service.showResult(null);
    if (service.getDisplay().display && latest.current.autoRun) void latest.current.onRun();
  }, [service, displayed]);

  /** A failure outside a run (e.g. the overlay toggle), shown where a run's failure is, for the image shown. */
  const reportFailure = useCallback(
    (text: string) => setRun({ kind: 'failed', key: snapshotKey(service.getDisplay()), message: text }),
    [service],
  );

  // Until the effect above has dropped it, a run of the previous image is already not shown.
  return { run: shownRun(run, displayed), finished, onRun, reportFailure };
}
