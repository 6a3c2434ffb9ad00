// `zerovar segmenter train|evaluate`: the lung segmenter behind the masked variant.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import type { BackendName } from '../runtime/backend.js';
import { DEFAULT_AUGMENTATION, DEFAULT_SEGMENTER_TRAINING } from '../train/options.js';
import { positiveInt, positiveNumber } from './parse.js';

async function heavy() {
  const [{ initBackend }, train] = await Promise.all([import('../runtime/backend.js'), import('../train/segmenter.js')]);
  return { initBackend, ...train };
}


function filterList(v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length < 2 || xs.some((x) => !Number.isInteger(x) || x <= 0)) {
    throw new InvalidArgumentError('--filters must list at least two positive integers, e.g. 8,16,32,64');
  }
  return xs;
}

const backendOption = () => new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu']).default('auto');

/** Adds the `segmenter` command (with `train` and `evaluate`) to the program. */
export function addSegmenterCommand(program: Command): void {
  const seg = program.command('segmenter').description('the lung segmenter used by the masked variant (train, evaluate)');
  const d = DEFAULT_SEGMENTER_TRAINING;

  seg
    .command('train')
    .description('train a small U-Net on image/mask pairs, split by patient; writes the model, segmenter.json, report.json and evaluation.png')
    .requiredOption('--dataset <dir>', 'folder with images and masks: ieee8023 CSV layout (masks/<stem>_mask.png), Kaggle <Class>/images + masks, or images/ + masks/')
    .option('--csv <file>', 'metadata CSV relative to --dataset (default: metadata.csv when present)')
    .requiredOption('--out <dir>', 'where the trained segmenter is written')
    .option('--input-size <px>', 'segmenter input side (a multiple of 8 with 4 levels)', positiveInt('--input-size'), d.inputSize)
    .option('--filters <list>', 'channels per level, top to bottleneck', filterList, d.filters)
    .option('--epochs <n>', 'training epochs', positiveInt('--epochs'), d.epochs)
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'), d.batchSize)
    .option('--lr <rate>', 'Adam learning rate (cosine-decayed to 0)', positiveNumber('--lr'), d.learningRate)
    .option('--no-augment', 'no flips, shifts, scaling, rotation or intensity jitter')
    .option('--limit <n>', 'train on at most n pairs (quick runs)', positiveInt('--limit'))
    .option('--seed <n>', 'seed of the split, initialisation, shuffling and augmentation', (v) => Number(v), d.seed)
    .addOption(backendOption())
    .option('--quiet', 'no progress output', false)
    .action(async (o: Record<string, unknown>) => {
      const { initBackend, runSegmenterJob } = await heavy();
      const backend = await initBackend(o.backend as BackendName);
      const log = o.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
      log(`backend ${backend}`);
      const r = await runSegmenterJob({
        dataset: String(o.dataset),
        csv: o.csv as string | undefined,
        out: String(o.out),
        inputSize: o.inputSize as number,
        filters: o.filters as number[],
        epochs: o.epochs as number,
        batchSize: o.batchSize as number,
        learningRate: o.lr as number,
        seed: o.seed as number,
        augmentation: o.augment === false ? null : DEFAULT_AUGMENTATION,
        limit: o.limit as number | undefined,
        log,
      });
      process.stdout.write(
        `segmenter written to ${resolve(String(o.out))}: held-out Dice ${r.test.dice.toFixed(4)}, IoU ${r.test.iou.toFixed(4)} ` +
          `on ${r.test.n} images of ${r.pairs.patients.test} patients (best epoch ${r.bestEpoch}, ${r.trainSeconds.toFixed(0)} s)\n`,
      );
    });

  seg
    .command('evaluate')
    .description('Dice and IoU of a trained segmenter against the masks of a dataset')
    .requiredOption('--model <dir>', 'segmenter folder (model.json + segmenter.json)')
    .requiredOption('--dataset <dir>', 'folder with images and masks (layouts as for train)')
    .option('--csv <file>', 'metadata CSV relative to --dataset')
    .option('--figure <file>', 'write an image | predicted | reference PNG of the first images')
    .option('--limit <n>', 'at most n pairs', positiveInt('--limit'))
    .option('--json', 'print the evaluation as JSON', false)
    .addOption(backendOption())
    .action(async (o: Record<string, unknown>) => {
      const { initBackend, loadSegmenter, segmentationPairs, evaluateSegmenter } = await heavy();
      await initBackend(o.backend as BackendName);
      const { model, meta } = await loadSegmenter(String(o.model));
      let pairs = await segmentationPairs(String(o.dataset), { csv: o.csv as string | undefined });
      if (o.limit) pairs = pairs.slice(0, o.limit as number);
      if (pairs.length === 0) throw new Error(`no image/mask pairs in ${String(o.dataset)}`);
      const ev = await evaluateSegmenter(model, pairs, meta.refinement, o.figure ? { path: resolve(String(o.figure)), rows: 6 } : undefined);
      model.dispose();
      if (o.json) process.stdout.write(JSON.stringify(ev, null, 2) + '\n');
      else {
        process.stdout.write(
          `${ev.n} images: Dice ${ev.dice.toFixed(4)} (median ${ev.medianDice.toFixed(4)}, min ${ev.minDice.toFixed(4)}, ` +
            `without post-processing ${ev.rawDice.toFixed(4)}), IoU ${ev.iou.toFixed(4)}\n`,
        );
      }
    });
}
