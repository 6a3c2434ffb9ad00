// The inference worker's lung masks of the last few images it classified with a masked bundle: pressing Run
// again on the same image, or asking to see a flagged one anyway, reuses the segmenter's mask (and the image
// masked by it) instead of segmenting again. An entry is what one loaded model's segmenter made of one image's
// exact pixels, compared byte for byte: another window level, another image or another bundle (or the same
// bundle loaded again on another backend) is a miss, so a cached answer is the uncached one.
import { lungMaskedImage, type GreyImage } from '@zerovar/trainer/browser';

/** What a masked bundle needs of a model: its variant and its segmenter. */
export interface Segmenting {
  readonly masked: boolean;
  segment(image: GreyImage): GreyImage;
}

/** The classifier's input for one image: the image itself (raw bundle) or the image masked by its lungs. */
export interface ClassifierInput {
  image: GreyImage;
  /** A masked bundle's lung mask (0 or 255, at the image's size); absent for a raw bundle. */
  lungMask?: GreyImage;
  /** The mask came from the cache (this model segmented these very pixels before). */
  cached: boolean;
}

interface Entry {
  owner: Segmenting;
  image: GreyImage;
  lungMask: GreyImage;
  masked: GreyImage;
}

/** Whether two grey images have the same size and the same bytes. */
export function sameGrey(a: GreyImage, b: GreyImage): boolean {
  if (a === b) return true;
  if (a.width !== b.width || a.height !== b.height || a.data.length !== b.data.length) return false;
  const n = a.data.length;
  const aligned = a.data.byteOffset % 4 === 0 && b.data.byteOffset % 4 === 0;
  // Four bytes at a time where both buffers allow it: a full comparison is what a hit costs.
  const words = aligned ? n >> 2 : 0;
  if (words) {
    const wa = new Uint32Array(a.data.buffer, a.data.byteOffset, words);
    const wb = new Uint32Array(b.data.buffer, b.data.byteOffset, words);
    for (let i = 0; i < words; i++) if (wa[i] !== wb[i]) return false;
  }
  for (let i = words * 4; i < n; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

export class MaskCache {
  private entries: Entry[] = [];

  /** `capacity`: images kept (each holds the image, its mask and the masked image: three bytes a pixel). */
  constructor(readonly capacity = 3) {
    if (!(capacity >= 1)) throw new Error(`a mask cache needs room for one image at least (capacity ${capacity})`);
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * What `model` classifies for `image`: the image itself for a raw bundle; for a masked one the image masked by
   * its segmenter's lung mask, segmented once per image and model. The image is kept as given (not copied): the
   * caller must not change its pixels afterwards.
   */
  input(model: Segmenting, image: GreyImage): ClassifierInput {
    if (!model.masked) return { image, cached: false };
    const at = this.entries.findIndex((e) => e.owner === model && sameGrey(e.image, image));
    if (at >= 0) {
      const [hit] = this.entries.splice(at, 1);
      this.entries.unshift(hit); // most recently used first
      return { image: hit.masked, lungMask: hit.lungMask, cached: true };
    }
    const lungMask = model.segment(image);
    const masked = lungMaskedImage(image, lungMask);
    this.entries.unshift({ owner: model, image, lungMask, masked });
    this.entries.length = Math.min(this.entries.length, this.capacity);
    return { image: masked, lungMask, cached: false };
  }

  /** Forgets every mask (e.g. the models they were made with were given up). */
  clear(): void {
    this.entries = [];
  }
}
