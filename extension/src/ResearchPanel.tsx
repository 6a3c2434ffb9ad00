// The "COVID-19 (research)" side panel: the displayed image, the model choice (raw / masked; it opens on the one
// that does best on external data and says why), Run (or auto-run), the calibrated per-class probabilities, the
// out-of-distribution guard's verdict (a flagged image gets no class result unless shown anyway, for research),
// the model's facts from its manifest, the backend and timings, the attention overlay (Grad-CAM of the predicted
// class) with its toggle and opacity, and for a masked model the lung contour it classified within. State and inference live in the extension's service; the hooks (useDisplayedImage,
// useModelAvailability, useClassification) follow it, and every failure ends as a message here, never as an
// exception in the viewer.
import React, { useCallback, useMemo, useState } from 'react';
import { snapshotKey } from './displayKey.js';
import { COMMANDS } from './ids.js';
import type { ClassifyResult } from './inferenceProtocol.js';
import {
  calibrationText, externalText, formatFraction, formatProbability, guardText, modelOptionText, oodVerdictText, operatingPointText, variantText,
} from './display.js';
import { formatBytes, removedText, type ModelFacts } from './modelFacts.js';
import type { CommandsManager, ExtensionParams } from './ohif-types.js';
import type { ZerovarService } from './service.js';
import { attentionEmpty, resultWithheld, useClassification } from './useClassification.js';
import { useDisplayedImage, useOverlayVisible } from './useDisplayedImage.js';
import { availabilityText, useModelAvailability } from './useModelAvailability.js';
import { useModelList } from './useModelList.js';
import { SaveToPacs } from './SaveToPacs.js';

const ms = (t: number) => `${t < 10 ? t.toFixed(1) : Math.round(t)} ms`;

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
  ood: { border: '1px solid #dc2626', background: 'rgba(220,38,38,0.12)', color: '#fecaca', padding: '6px 8px', borderRadius: 4 },
  secondary: { background: 'transparent', color: '#fca5a5', border: '1px solid #dc2626', borderRadius: 4, padding: '4px 10px', cursor: 'pointer', marginTop: 6 },
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
              <span>{formatProbability(p)}</span>
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

/** The guard's verdict above a result: flagged (with the way to see the result anyway), accepted, or no guard. */
function OodNote({ result, withheld, onShowAnyway }: { result: ClassifyResult; withheld: boolean; onShowAnyway: () => void }) {
  const ood = result.ood;
  if (!ood) {
    return <div data-cy="zerovar-ood-none" style={styles.muted}>This bundle has no out-of-distribution guard: it answers for any image.</div>;
  }
  if (!ood.flagged) return <div data-cy="zerovar-ood-ok" style={styles.muted}>{oodVerdictText(ood)}</div>;
  return (
    <div data-cy="zerovar-ood" role="alert" style={styles.ood}>
      <div style={{ fontWeight: 700 }}>Out of distribution</div>
      <div>{oodVerdictText(ood)}</div>
      {withheld ? (
        <>
          <div>No class result is shown and the attention overlay stays off: the model's answer would mean nothing here.</div>
          <button type="button" style={styles.secondary} data-cy="zerovar-show-anyway" onClick={onShowAnyway}>
            Show anyway (research)
          </button>
        </>
      ) : (
        <div data-cy="zerovar-ood-shown">Shown anyway, for research: this result is out of distribution and must not be read as a finding.</div>
      )}
    </div>
  );
}

/** The model's facts: test split and external figures side by side, operating point, guard and calibration. */
function Facts({ facts }: { facts: ModelFacts }) {
  const rows: [string, string | undefined][] = [
    ['Name', `${facts.name} (${facts.variant})`],
    ['Task', facts.task],
    ['Backbone', `${facts.backbone}, ${facts.inputSize} px`],
    ['Units removed', removedText(facts.unitsBefore, facts.unitsAfter)],
    ['Parameters removed', removedText(facts.paramsBefore, facts.paramsAfter)],
    ['Bundle size', formatBytes(facts.bundleBytes)],
    ['Test accuracy', facts.testAccuracy === undefined ? undefined : `${formatFraction(facts.testAccuracy)} (test split of the training sources)`],
    ['Test AUC', facts.testAuc === undefined ? undefined : facts.testAuc.toFixed(3)],
    ...facts.external.map((e): [string, string] => [`External ${e.name}`, externalText(e)]),
    ['Operating point', operatingPointText(facts.operatingPoint)],
    ['OOD guard', guardText(facts.guard)],
    ['Calibration', calibrationText(facts.calibration)],
    ['Classifier', facts.classifier],
    ['Features (k)', String(facts.k)],
  ];
  return <Rows cy="zerovar-facts" rows={rows} />;
}

function AttentionNote({ result }: { result: ClassifyResult }) {
  const empty = attentionEmpty(result);
  return (
    <div data-cy="zerovar-attention" data-empty={String(empty)} style={styles.muted}>
      {empty
        ? `Attention map is empty: no image region raised the ${result.attention?.className ?? result.className} score (nothing to overlay).`
        : `Attention map: ${result.attention!.method} of ${result.attention!.className}.`}
    </div>
  );
}

export function ResearchPanel({ servicesManager, commandsManager }: ExtensionParams) {
  const service = servicesManager.services.zerovarService;
  if (!service) {
    return <div style={{ ...styles.panel, ...styles.error }} data-cy="zerovar-panel">The COVID-19 panel's service is not registered.</div>;
  }
  return <PanelBody service={service} commandsManager={commandsManager} />;
}

function PanelBody({ service, commandsManager }: { service: ZerovarService; commandsManager: CommandsManager }) {
  const snapshot = useDisplayedImage(service);
  const { display, error: displayError } = snapshot;
  const overlayOn = useOverlayVisible(service);
  const list = useModelList(service);
  const choice = list?.choice;
  // Until the user picks one, the model is the service's choice (raw while the list is being read).
  const [picked, setPicked] = useState<string | null>(null);
  const model = picked ?? choice?.id ?? 'raw';
  const entry = list?.models.find((m) => m.id === model);
  const ids = useMemo(() => list?.models.map((m) => m.id) ?? [], [list]);
  const { availability, markMissing } = useModelAvailability(service, model, ids);
  const [autoRun, setAutoRun] = useState(false);
  const [opacity, setOpacity] = useState(0.5);
  const [contourOn, setContourOn] = useState(true);
  const { run, finished, onRun, reportFailure } = useClassification({
    service, model, availability, markMissing, displayed: snapshotKey(snapshot), autoRun, opacity, contourOn,
  });

  const onAutoRun = useCallback((on: boolean) => {
    setAutoRun(on);
    if (on && display && run.kind === 'idle') void onRun();
  }, [display, run.kind, onRun]);

  // Through the command, as the toolbar button does: one path for showing and hiding the overlay.
  const onOverlayToggle = useCallback((on: boolean) => {
    const r = commandsManager.runCommand(on ? COMMANDS.showOverlay : COMMANDS.hideOverlay) as { ok?: boolean; message?: string } | undefined;
    if (r && r.ok === false) reportFailure(r.message ?? 'overlay failed');
  }, [commandsManager, reportFailure]);

  const missingText = entry?.error ? `${model} model cannot be used: ${entry.error}` : availabilityText(model, availability[model]);
  const facts = run.kind === 'done' ? run.result.facts : undefined;
  const withheld = run.kind === 'done' && resultWithheld(run.result, run.shownAnyway);
  const oodState = run.kind !== 'done' ? undefined : !run.result.ood ? 'unguarded' : run.result.ood.flagged ? 'flagged' : 'accepted';

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
        <select style={{ ...styles.select, maxWidth: '100%' }} data-cy="zerovar-model" value={model} onChange={(e) => setPicked(e.target.value)}>
          {list ? list.models.map((m) => (
            <option key={m.id} value={m.id} disabled={m.error !== undefined} data-variant={m.variant} data-task={m.task}>
              {modelOptionText(m, availability[m.id])}
            </option>
          )) : <option value={model}>reading the model list…</option>}
        </select>
      </label>
      {entry?.task && entry.variant && (
        <div data-cy="zerovar-model-about" data-variant={entry.variant} data-classes={entry.classes?.length}>
          <Rows cy="zerovar-about" rows={[['Task', entry.task], ['Input', variantText(entry.variant)]]} />
        </div>
      )}
      {choice && (
        <div data-cy="zerovar-model-choice" data-model={choice.id} data-variant={choice.variant} style={styles.muted}>{choice.reason}</div>
      )}
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
      <div data-cy="zerovar-result" data-state={run.kind} data-runs={finished} data-image={run.kind === 'done' ? run.imageId : undefined} data-ood={oodState} data-withheld={String(withheld)} aria-live="polite">
        {run.kind === 'running' && <div style={styles.muted}>Classifying with the {run.model} model…</div>}
        {run.kind === 'done' && (
          <div style={{ display: 'flex', flexDirection: 'column', gap: 8 }}>
            <OodNote result={run.result} withheld={withheld} onShowAnyway={() => void onRun({ showAnyway: true })} />
            {!withheld && (
              <>
                <div data-cy="zerovar-predicted" data-class={run.result.className} style={{ fontSize: 15 }}>
                  Predicted: <b>{run.result.className}</b> ({formatProbability(run.result.probabilities[run.result.classIndex] ?? 0)})
                  {run.result.ood?.flagged ? ' — out of distribution' : ''}
                </div>
                <Probabilities result={run.result} />
                <AttentionNote result={run.result} />
              </>
            )}
            <Rows
              cy="zerovar-run-info"
              rows={[
                ['Backend', run.result.backend],
                ['Backend choice', run.result.backendWhy || undefined],
                ['Skipped', run.result.skipped.length ? run.result.skipped.join('; ') : undefined],
                ['Inference', `${ms(run.result.classifyMs)} + Grad-CAM ${withheld ? 'skipped' : ms(run.result.explainMs)}`],
                ['Segmentation', !run.result.lungMask ? undefined : run.result.segmentCached
                  ? `cached: the mask of this very image (${ms(run.result.segmentMs)})`
                  : `${ms(run.result.segmentMs)} (part of the inference)`],
                ['Model load', run.result.cold ? `${ms(run.result.loadMs)} (first use)` : 'cached'],
                ['Total', ms(run.totalMs)],
              ]}
            />
            <SaveToPacs service={service} imageId={run.imageId} result={run.result} shownAnyway={run.shownAnyway} withheld={withheld} />
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
          <input type="checkbox" data-cy="zerovar-overlay-toggle" checked={overlayOn && !withheld} disabled={withheld}
            onChange={(e) => onOverlayToggle(e.target.checked)} /> Attention overlay (integrated Grad-CAM of the predicted class)
          {withheld ? ' — off for an out-of-distribution image' : ''}
        </label>
        {run.kind === 'done' && run.result.lungMask && !withheld && (
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
          <Facts facts={facts} />
        </>
      )}
    </div>
  );
}
