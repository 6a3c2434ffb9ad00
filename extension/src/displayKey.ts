// Which image a run belongs to: the viewport and the image it showed when the run started. The panel shows a
// run's state (its result, its failure, "Running…") only while the active viewport still shows that image, and
// a result that arrives after the image changed is dropped: a result is never shown beside another image.
export type DisplayKey = string;

/** The identity of what a viewport shows (no image: the viewport alone; neither: the empty key). */
export function displayKey(viewportId: string | undefined, imageId: string | undefined): DisplayKey {
  return `${viewportId ?? ''}\n${imageId ?? ''}`;
}

/** The identity of a display snapshot (the service's DisplaySnapshot or anything shaped like it). */
export function snapshotKey(s: { viewportId?: string; display: { info: { imageId: string } } | null }): DisplayKey {
  return displayKey(s.viewportId, s.display?.info.imageId);
}
