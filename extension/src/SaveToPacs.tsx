// The panel's "Save to PACS" button: the shown result as a DICOM SR in the image's study, with its attention map
// as a Secondary Capture beside it (through the service),
// or the reason saving is unavailable (a read-only folder source, a withheld result). Says what happened: saved,
// already saved for this image and model, or why the PACS did not take it; the result stays on screen throughout.
import React, { useEffect, useState } from 'react';
import type { ClassifyResult } from './inferenceProtocol.js';
import type { SaveOutcome } from './pacsSave.js';
import type { ZerovarService } from './service.js';
import type { ReportContent } from './srReport.js';

/** The extension's version, written into the report as the algorithm's version beside the bundle's checksum. */
export const ALGORITHM_VERSION = '0.1.0';

/** The report's content from a shown result. */
export function reportContent(result: ClassifyResult, shownAnyway: boolean): ReportContent {
  const f = result.facts;
  return {
    algorithmName: `zerovar COVID-19 classifier (${f.backbone})`,
    algorithmVersion: `${ALGORITHM_VERSION}, bundle ${f.name}`,
    bundleSha256: result.bundleSha256,
    variant: f.variant,
    task: `${f.task} on a frontal chest radiograph (${f.variant === 'masked' ? 'lungs only' : 'whole image'})`,
    classes: [...result.classes],
    probabilities: [...result.probabilities],
    predicted: result.className,
    ood: result.ood ? { ...result.ood } : undefined,
    shownAnyway,
  };
}

const styles = {
  button: { background: '#047857', color: 'white', border: 0, borderRadius: 4, padding: '5px 10px', cursor: 'pointer' },
  disabled: { background: '#374151', color: '#9ca3af', border: 0, borderRadius: 4, padding: '5px 10px', cursor: 'not-allowed' },
  muted: { color: '#9ca3af' },
  error: { color: '#fca5a5' },
  ok: { color: '#86efac' },
} satisfies Record<string, React.CSSProperties>;

type Status = { kind: 'idle' } | { kind: 'saving' } | SaveOutcome;

export function SaveToPacs(props: { service: ZerovarService; imageId: string; result: ClassifyResult; shownAnyway: boolean; withheld: boolean }) {
  const { service, imageId, result, shownAnyway, withheld } = props;
  const [target, setTarget] = useState<{ root: string } | { unavailable: string } | null>(null);
  // Kept with the result it belongs to: a new result (another image, model or run) starts with a fresh button.
  const [saved, setSaved] = useState<{ of: ClassifyResult; status: Status } | null>(null);
  const status: Status = saved?.of === result ? saved.status : { kind: 'idle' };
  useEffect(() => {
    let live = true;
    void service.saveTarget().then((t) => live && setTarget(t));
    return () => {
      live = false;
    };
  }, [service]);

  const unavailable = withheld
    ? 'Saving is off while the result is withheld (out of distribution): show it anyway first.'
    : !result.bundleSha256
      ? 'Saving is unavailable: the bundle\'s checksum is unknown.'
      : target && 'unavailable' in target ? target.unavailable : undefined;
  const busy = status.kind === 'saving' || target === null;
  // Whether saving is possible is known once the data source answered (or a reason against it is known already).
  const known = target !== null || unavailable !== undefined;
  const onSave = async () => {
    setSaved({ of: result, status: { kind: 'saving' } });
    setSaved({ of: result, status: await service.saveResult(imageId, reportContent(result, shownAnyway), result.attention) });
  };
  return (
    <div data-cy="zerovar-save" data-state={status.kind} data-available={known ? String(!unavailable) : undefined} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <button type="button" data-cy="zerovar-save-button" style={unavailable || busy ? styles.disabled : styles.button}
        disabled={!!unavailable || busy} title={unavailable} onClick={() => void onSave()}>
        {status.kind === 'saving' ? 'Saving…' : 'Save to PACS'}
      </button>
      {unavailable && <div data-cy="zerovar-save-unavailable" style={styles.muted}>{unavailable}</div>}
      {'message' in status && (
        <div data-cy="zerovar-save-status" data-sop={'sopInstanceUid' in status ? status.sopInstanceUid : undefined}
          role={status.kind === 'failed' ? 'alert' : 'status'} style={status.kind === 'failed' ? styles.error : status.kind === 'saved' ? styles.ok : styles.muted}>
          {status.message}
        </div>
      )}
      {'capture' in status && status.capture && (
        <div data-cy="zerovar-save-capture" data-state={status.capture.kind}
          data-sop={'sopInstanceUid' in status.capture ? status.capture.sopInstanceUid : undefined}
          role={status.capture.kind === 'failed' ? 'alert' : 'status'} style={status.capture.kind === 'failed' ? styles.error : styles.muted}>
          {status.capture.message}
        </div>
      )}
    </div>
  );
}
