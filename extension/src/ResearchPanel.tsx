// The "COVID-19 (research)" side panel: the displayed image's description, the model choice, Run, the result.
// Until model bundles are wired in, Run reads the displayed image's pixels and reports what it found.
import React, { useCallback, useEffect, useState } from 'react';
import { getActiveViewport, getCornerstone } from './cornerstone.js';
import { COMMANDS } from './ids.js';
import { readImageInfo, readPixels, type ImageInfo, type PixelSummary } from './imageInfo.js';
import type { ExtensionParams } from './ohif-types.js';

export type ModelVariant = 'raw' | 'masked';

type RunState =
  | { kind: 'idle' }
  | { kind: 'running' }
  | { kind: 'done'; summary: PixelSummary; variant: ModelVariant; ms: number }
  | { kind: 'failed'; message: string };

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

const styles = {
  panel: { padding: '10px 12px', color: '#e5e7eb', fontSize: 13, lineHeight: 1.45, display: 'flex', flexDirection: 'column', gap: 10 },
  notice: { border: '1px solid #d97706', background: 'rgba(217,119,6,0.15)', color: '#fbbf24', padding: '6px 8px', borderRadius: 4, fontWeight: 600 },
  dl: { display: 'grid', gridTemplateColumns: 'max-content 1fr', columnGap: 10, rowGap: 2, margin: 0 },
  dt: { color: '#9ca3af' },
  dd: { margin: 0 },
  button: { background: '#2563eb', color: 'white', border: 0, borderRadius: 4, padding: '6px 12px', cursor: 'pointer' },
  secondary: { background: 'transparent', color: '#93c5fd', border: '1px solid #3b82f6', borderRadius: 4, padding: '4px 10px', cursor: 'pointer' },
  error: { color: '#fca5a5' },
  select: { background: '#111827', color: '#e5e7eb', border: '1px solid #374151', borderRadius: 4, padding: '2px 4px' },
} satisfies Record<string, React.CSSProperties>;

function Rows({ rows, cy }: { rows: [string, string][]; cy: string }) {
  return (
    <dl style={styles.dl} data-cy={cy}>
      {rows.map(([k, v]) => (
        <React.Fragment key={k}>
          <dt style={styles.dt}>{k}</dt>
          <dd style={styles.dd} data-cy={`${cy}-${k.toLowerCase().replace(/[^a-z]+/g, '-')}`}>{v}</dd>
        </React.Fragment>
      ))}
    </dl>
  );
}

export function ResearchPanel({ servicesManager, extensionManager, commandsManager }: ExtensionParams) {
  const services = servicesManager.services;
  const [info, setInfo] = useState<ImageInfo | null>(null);
  const [infoError, setInfoError] = useState<string | null>(null);
  const [variant, setVariant] = useState<ModelVariant>('raw');
  const [run, setRun] = useState<RunState>({ kind: 'idle' });

  const refreshInfo = useCallback(() => {
    try {
      const next = readImageInfo(getCornerstone(extensionManager), getActiveViewport(services));
      setInfo((prev) => (prev && prev.imageId === next.imageId ? prev : next));
      setInfoError(null);
    } catch (err) {
      setInfo(null);
      setInfoError(message(err));
    }
  }, [services, extensionManager]);

  useEffect(() => {
    refreshInfo();
    const grid = services.viewportGridService;
    const cvs = services.cornerstoneViewportService;
    const subs = [
      [grid, grid.EVENTS.ACTIVE_VIEWPORT_ID_CHANGED],
      [grid, grid.EVENTS.GRID_STATE_CHANGED],
      [cvs, cvs.EVENTS.VIEWPORT_DATA_CHANGED],
    ].flatMap(([service, event]) => (event ? [(service as typeof grid).subscribe(event as string, refreshInfo)] : []));
    // Image loads finish after those events; a slow poll catches the displayed image changing without one.
    const timer = window.setInterval(refreshInfo, 1000);
    return () => {
      subs.forEach((s) => s.unsubscribe());
      window.clearInterval(timer);
    };
  }, [services, refreshInfo]);

  const onRun = useCallback(() => {
    setRun({ kind: 'running' });
    // Let the "running" state paint before the (synchronous) pixel pass.
    window.setTimeout(() => {
      const t0 = performance.now();
      try {
        const { info: summary } = readPixels(getCornerstone(extensionManager), getActiveViewport(services));
        setRun({ kind: 'done', summary, variant, ms: performance.now() - t0 });
      } catch (err) {
        setRun({ kind: 'failed', message: message(err) });
      }
    }, 0);
  }, [services, extensionManager, variant]);

  const onTestOverlay = useCallback(() => {
    const r = commandsManager.runCommand(COMMANDS.showTestPattern) as { ok?: boolean; message?: string } | undefined;
    if (r && r.ok === false) setRun({ kind: 'failed', message: r.message ?? 'overlay failed' });
  }, [commandsManager]);

  return (
    <div style={styles.panel} data-cy="zerovar-panel">
      <div style={{ fontWeight: 700, fontSize: 14 }}>COVID-19 (research)</div>
      <div style={styles.notice} data-cy="zerovar-notice" role="note">
        Research use only — not for diagnosis
      </div>
      {info ? (
        <Rows
          cy="zerovar-image-info"
          rows={[
            ['Modality', info.modality],
            ['Photometric', info.photometric],
            ['Size', `${info.columns} × ${info.rows}`],
            ['Bits stored', info.bitsStored === undefined ? '?' : String(info.bitsStored)],
          ]}
        />
      ) : (
        <div data-cy="zerovar-image-info-missing" style={{ color: '#9ca3af' }}>
          {infoError ? `No image: ${infoError}` : 'Waiting for an image…'}
        </div>
      )}
      <label>
        Model{' '}
        <select style={styles.select} data-cy="zerovar-model" value={variant} onChange={(e) => setVariant(e.target.value as ModelVariant)}>
          <option value="raw">raw (whole image)</option>
          <option value="masked">masked (lungs only)</option>
        </select>
      </label>
      <div style={{ display: 'flex', gap: 8 }}>
        <button type="button" style={styles.button} data-cy="zerovar-run" onClick={onRun} disabled={run.kind === 'running'}>
          {run.kind === 'running' ? 'Running…' : 'Run'}
        </button>
        <button type="button" style={styles.secondary} data-cy="zerovar-test-overlay" onClick={onTestOverlay}>
          Test overlay
        </button>
      </div>
      <div data-cy="zerovar-result" data-state={run.kind} aria-live="polite">
        {run.kind === 'done' && (
          <>
            <Rows
              cy="zerovar-result-rows"
              rows={[
                ['Modality', run.summary.modality],
                ['Size', `${run.summary.columns} × ${run.summary.rows}`],
                ['Photometric', run.summary.photometric],
                ['Stored range', `${run.summary.min} … ${run.summary.max}`],
                ['Mean', run.summary.mean.toFixed(1)],
                ['Rescale', `${run.summary.rescaleSlope} × v + ${run.summary.rescaleIntercept}`],
                ['Window', run.summary.windowWidth === undefined ? 'none' : `C ${run.summary.windowCenter} / W ${run.summary.windowWidth}`],
                ['Pixels read', `${run.summary.count} in ${run.ms.toFixed(0)} ms`],
              ]}
            />
            <div style={{ color: '#9ca3af', marginTop: 6 }}>
              Model “{run.variant}”: no model bundle is loaded in this build, so no classification is shown.
            </div>
          </>
        )}
        {run.kind === 'failed' && (
          <div style={styles.error} data-cy="zerovar-error">
            {run.message}
          </div>
        )}
      </div>
    </div>
  );
}
