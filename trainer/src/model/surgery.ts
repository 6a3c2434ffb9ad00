// Exact structural surgery. The zero-variance criterion picks unit groups whose every exit read is constant
// (dependency.ts says which channels are tied); applyPruning rebuilds a smaller model from a modified copy of
// the layer configs, slices the weights and folds each removed constant into the next layer's bias, so the
// pruned model computes the same function. Browser-safe.
import * as tf from '@tensorflow/tfjs';
import { buildDependencyGraph, type DependencyGraph, type UnitMember } from './dependency.js';
import { buildLayerGraph, modelFromConfig, type LayerGraph, type ModelConfig } from './graph.js';

/** Per-channel moments as measured by `measureUnitStats` (train/variance.ts); only count, mean, m2 are read. */
export interface TensorStatsLike {
  count: number;
  mean: ArrayLike<number>;
  m2: ArrayLike<number>;
}
export interface UnitStatsLike {
  tensors: Record<string, TensorStatsLike>;
}

export interface PlanOptions {
  /** Largest variance that still counts as constant (default 0: exactly constant). */
  threshold?: number;
  /**
   * 'absolute' (default): the threshold is a variance. 'relative': it is a fraction of the mean variance of the
   * tensor's channels (the layer's scale). In a BatchNorm'd network the channel scales differ from layer to layer
   * (BN gamma, ReLU6 clipping, fc widths), so one absolute number means "constant" in one layer and "alive" in the
   * next; what the mean fold costs a consumer is the unit's spread next to its siblings' that the same weights
   * sum. Variance 0 is relative variance 0, so threshold 0 is the exact rule either way.
   */
  scale?: 'absolute' | 'relative';
  /** Layers whose output channels may only go when they are exactly 0 (e.g. the Grad-CAM layer). */
  protect?: string[];
  /** Per-tensor thresholds that replace `threshold` (same scale), e.g. a looser one for the dense head. */
  layerThresholds?: Record<string, number>;
}

/** A constant channel read by an exit consumer; `value` is folded into that consumer's bias. */
export interface FoldedConstant {
  tensor: string;
  channel: number;
  value: number;
}

export interface PlannedUnit {
  unitGroup: number;
  groupSet: number;
  /** Conv2D / Dense layers that lose this output filter. */
  producers: string[];
  members: UnitMember[];
  constants: FoldedConstant[];
  /** Bias folds this unit causes: exit consumer, its input channel, the constant (non-zero ones only). */
  folds: { consumer: string; channel: number; value: number }[];
}

export interface PruningPlan {
  threshold: number;
  layerThresholds?: Record<string, number>;
  scale?: 'absolute' | 'relative';
  protect: string[];
  units: PlannedUnit[];
  /** Tensor (layer output) -> removed channel indices, ascending. */
  removedChannels: Record<string, number[]>;
  /** Exit consumer -> removed input channels and the constants to fold into its bias. */
  folds: Record<string, { channel: number; value: number }[]>;
  /** Constant units kept because zero padding downstream makes them non-constant at the borders. */
  keptForPadding: number;
  /** Constant non-zero units of protected layers, kept. */
  keptProtected: number;
  /** Constant units kept so that every layer keeps at least one unit. */
  keptLastUnit: number;
  /** The unit groups behind the three counts above. */
  kept: KeptUnit[];
}

export interface KeptUnit {
  unitGroup: number;
  producers: string[];
  reason: 'padding' | 'protected' | 'last-unit';
}

/** |mean| at or below this counts as exactly 0 for padded consumers and protected layers. */
const ZERO = 1e-12;

function statsFor(stats: UnitStatsLike, tensor: string): TensorStatsLike {
  const s = stats.tensors[tensor];
  if (!s) throw new Error(`no statistics for tensor '${tensor}'; measure it with measureUnitStats`);
  if (s.count <= 0) throw new Error(`statistics for tensor '${tensor}' are empty`);
  return s;
}

/** Mean channel variance of a tensor (0 when every channel is constant). */
export function meanChannelVariance(s: TensorStatsLike): number {
  let sum = 0;
  for (let k = 0; k < s.mean.length; k++) sum += s.m2[k] / s.count;
  return s.mean.length > 0 ? sum / s.mean.length : 0;
}

/** What a threshold multiplies, per tensor: 1 (absolute) or the tensor's mean channel variance (relative), cached. */
export function varianceScale(stats: UnitStatsLike, scale: 'absolute' | 'relative'): (tensor: string) => number {
  const cache = new Map<string, number>();
  return (tensor) => {
    if (scale === 'absolute') return 1;
    let v = cache.get(tensor);
    if (v === undefined) cache.set(tensor, (v = meanChannelVariance(statsFor(stats, tensor))));
    return v;
  };
}

/** Chooses the zero-variance units to remove. Throws if the model holds a layer the planner cannot handle. */
export function planZeroVariancePruning(
  model: tf.LayersModel | DependencyGraph,
  stats: UnitStatsLike,
  options: PlanOptions = {},
): PruningPlan {
  const dep = 'unitGroups' in model ? model : buildDependencyGraph(model);
  const threshold = options.threshold ?? 0;
  const layerThresholds = options.layerThresholds ?? {};
  const protect = options.protect ?? [];
  for (const p of protect) if (!dep.channels.has(p)) throw new Error(`protected layer '${p}' is not in the model`);
  const protectSet = new Set(protect);
  const remaining = new Map(dep.channels);
  const plan: PruningPlan = {
    threshold,
    ...(options.layerThresholds && { layerThresholds: { ...options.layerThresholds } }),
    scale: options.scale ?? 'absolute',
    protect: [...protect],
    units: [],
    removedChannels: {},
    folds: {},
    keptForPadding: 0,
    keptProtected: 0,
    keptLastUnit: 0,
    kept: [],
  };
  const keep = (g: { id: number; producers: string[] }, reason: KeptUnit['reason']) => {
    plan.kept.push({ unitGroup: g.id, producers: [...g.producers], reason });
    if (reason === 'padding') plan.keptForPadding++;
    else if (reason === 'protected') plan.keptProtected++;
    else plan.keptLastUnit++;
  };
  const unitScale = varianceScale(stats, options.scale ?? 'absolute');
  const constantOf = (m: UnitMember): number | null => {
    const s = statsFor(stats, m.tensor);
    return s.m2[m.channel] / s.count <= (layerThresholds[m.tensor] ?? threshold) * unitScale(m.tensor) ? s.mean[m.channel] : null;
  };

  for (const g of dep.unitGroups) {
    if (g.lockedBy.length > 0 || g.producers.length === 0) continue;
    const reads = g.members.filter((m) => dep.exitReadsOf.has(m.tensor));
    const guarded = g.members.filter((m) => protectSet.has(m.tensor));
    if (reads.length === 0 && guarded.length === 0) continue; // read by nothing: no evidence either way
    const constants: FoldedConstant[] = [];
    let constant = true;
    for (const m of reads) {
      const c = constantOf(m);
      if (c === null) {
        constant = false;
        break;
      }
      constants.push({ ...m, value: c });
    }
    if (!constant) {
      // Constant before a zero padding, varying after it: count it, it is a unit that only padding keeps alive.
      if (g.producers.length === 1) {
        const witness = g.members.some((m) => {
          if (!dep.paddingWitnesses.has(m.tensor) || !stats.tensors[m.tensor]) return false;
          const c = constantOf(m);
          return c !== null && Math.abs(c) > ZERO;
        });
        if (witness) keep(g, 'padding');
      }
      continue;
    }
    const guardedValues = guarded.map(constantOf);
    if (guardedValues.some((c) => c === null)) continue;
    const paddedNonZero = constants.some(
      (c) => Math.abs(c.value) > ZERO && dep.exitReadsOf.get(c.tensor)!.some((r) => r.padded),
    );
    if (paddedNonZero) {
      keep(g, 'padding');
      continue;
    }
    if (guardedValues.some((c) => Math.abs(c!) > ZERO)) {
      keep(g, 'protected');
      continue;
    }
    // Never empty a tensor: every layer keeps at least one unit.
    const perTensor = new Map<string, number>();
    for (const m of g.members) perTensor.set(m.tensor, (perTensor.get(m.tensor) ?? 0) + 1);
    if ([...perTensor].some(([t, n]) => remaining.get(t)! - n < 1)) {
      keep(g, 'last-unit');
      continue;
    }
    for (const [t, n] of perTensor) remaining.set(t, remaining.get(t)! - n);
    const folds = constants
      .filter((c) => c.value !== 0)
      .flatMap((c) => dep.exitReadsOf.get(c.tensor)!.map((r) => ({ consumer: r.consumer, channel: c.channel, value: c.value })));
    plan.units.push({ unitGroup: g.id, groupSet: g.groupSet, producers: [...g.producers], members: g.members, constants, folds });
  }
  return indexUnits(plan);
}

/** Fills removedChannels and folds from plan.units. */
function indexUnits(plan: PruningPlan): PruningPlan {
  plan.removedChannels = {};
  plan.folds = {};
  for (const u of plan.units) {
    for (const m of u.members) (plan.removedChannels[m.tensor] ??= []).push(m.channel);
    for (const f of u.folds) (plan.folds[f.consumer] ??= []).push({ channel: f.channel, value: f.value });
  }
  for (const list of Object.values(plan.removedChannels)) list.sort((a, b) => a - b);
  return plan;
}

/** A copy of `plan` that removes only the units for which `keep` is true. */
export function restrictPlan(plan: PruningPlan, keep: (unit: PlannedUnit) => boolean): PruningPlan {
  return indexUnits({ ...plan, units: plan.units.filter(keep), kept: [...plan.kept] });
}

/**
 * Unit groups with no outgoing weight: every exit consumer's kernel is exactly 0 on the group's input channels
 * (after feature selection, say, fc1 units that fed only unselected fc2 units). Whatever such a unit computes
 * reaches nothing, so removing it is exact and folds nothing. Locked groups and the last unit of a tensor stay.
 */
export function planUnreferencedUnits(model: tf.LayersModel): PruningPlan {
  const dep = buildDependencyGraph(model);
  const remaining = new Map(dep.channels);
  const kernels = new Map<string, { data: Float32Array | Int32Array | Uint8Array; shape: number[] }>();
  const kernelOf = (consumer: string) => {
    let k = kernels.get(consumer);
    if (!k) {
      const w = model.getLayer(consumer).getWeights()[0];
      kernels.set(consumer, (k = { data: w.dataSync(), shape: w.shape }));
    }
    return k;
  };
  // Every tap of input channel `ch` is 0 (Dense [in, out], Conv2D [kh, kw, in, out]).
  const silent = (consumer: string, ch: number): boolean => {
    const { data, shape } = kernelOf(consumer);
    const out = shape[shape.length - 1];
    const inC = shape[shape.length - 2];
    const taps = data.length / (inC * out);
    for (let t = 0; t < taps; t++) {
      const base = (t * inC + ch) * out;
      for (let o = 0; o < out; o++) if (data[base + o] !== 0) return false;
    }
    return true;
  };
  const plan: PruningPlan = {
    threshold: 0, protect: [], units: [], removedChannels: {}, folds: {}, keptForPadding: 0, keptProtected: 0, keptLastUnit: 0, kept: [],
  };
  for (const g of dep.unitGroups) {
    if (g.lockedBy.length > 0 || g.producers.length === 0) continue;
    const reads = g.members.filter((m) => dep.exitReadsOf.has(m.tensor));
    if (reads.length === 0 || !reads.every((m) => dep.exitReadsOf.get(m.tensor)!.every((r) => silent(r.consumer, m.channel)))) continue;
    const perTensor = new Map<string, number>();
    for (const m of g.members) perTensor.set(m.tensor, (perTensor.get(m.tensor) ?? 0) + 1);
    if ([...perTensor].some(([t, n]) => remaining.get(t)! - n < 1)) {
      plan.kept.push({ unitGroup: g.id, producers: [...g.producers], reason: 'last-unit' });
      plan.keptLastUnit++;
      continue;
    }
    for (const [t, n] of perTensor) remaining.set(t, remaining.get(t)! - n);
    const constants = reads.map((m) => ({ ...m, value: 0 }));
    plan.units.push({ unitGroup: g.id, groupSet: g.groupSet, producers: [...g.producers], members: g.members, constants, folds: [] });
  }
  return indexUnits(plan);
}

/**
 * Removes unreferenced units until none is left: removing one takes its incoming weights along, which can leave
 * an earlier unit with no outgoing weight in turn. Returns a new model (or `model` itself when nothing went).
 */
export function removeUnreferencedUnits(model: tf.LayersModel): { model: tf.LayersModel; removed: number } {
  let current = model;
  for (;;) {
    const plan = planUnreferencedUnits(current);
    if (plan.units.length === 0) return { model: current, removed: countUnits(model) - countUnits(current) };
    const next = applyPruning(current, plan);
    if (current !== model) current.dispose();
    current = next;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rebuilding

function keptChannels(total: number, removed: number[] | undefined): number[] {
  if (!removed || removed.length === 0) return Array.from({ length: total }, (_, i) => i);
  const drop = new Set(removed);
  const kept: number[] = [];
  for (let i = 0; i < total; i++) if (!drop.has(i)) kept.push(i);
  return kept;
}

function gatherIf(t: tf.Tensor, idx: number[], axis: number): tf.Tensor {
  if (idx.length === t.shape[axis] && idx.every((v, i) => v === i)) return t;
  const g = tf.gather(t, tf.tensor1d(idx, 'int32'), axis);
  // A fresh tensor: the wasm backend records gather's internal 4-D shape for its output, which its fused
  // conv / matmul kernels then reject as a bias ("only supports rank-1 bias").
  return tf.tensor(g.dataSync(), g.shape, g.dtype);
}

/** Bias (float64) of a Conv2D / Dense after folding removed input channels' constants. */
function foldedBias(kernel: tf.Tensor, bias: tf.Tensor | undefined, folds: { channel: number; value: number }[]): Float64Array {
  const inAxis = kernel.rank - 2;
  const out = kernel.shape[kernel.rank - 1];
  const b = new Float64Array(out);
  if (bias) b.set(bias.dataSync());
  if (folds.length === 0) return b;
  const rows = tf.tidy(() => {
    const picked = tf.gather(kernel, tf.tensor1d(folds.map((f) => f.channel), 'int32'), inAxis);
    // A constant input contributes value * (sum of the kernel taps) to every output position.
    return (kernel.rank === 4 ? picked.sum([0, 1]) : picked).dataSync();
  });
  for (const [r, f] of folds.entries()) for (let o = 0; o < out; o++) b[o] = b[o] + f.value * rows[r * out + o];
  return b;
}

interface LayerEdit {
  /** Kept output channels (or units). */
  keptOut: number[];
  /** Kept input channels, for Conv2D / Dense. */
  keptIn?: number[];
  folds: { channel: number; value: number }[];
}

function rebuild(
  graph: LayerGraph,
  config: ModelConfig,
  edits: Map<string, LayerEdit>,
  outputOrder?: Map<string, number[]>,
): tf.LayersModel {
  const fresh = modelFromConfig(config);
  for (const entry of config.layers) {
    const oldLayer = graph.model.getLayer(entry.name);
    const weights = oldLayer.getWeights();
    if (weights.length === 0) continue;
    const edit = edits.get(entry.name);
    const order = outputOrder?.get(entry.name);
    const newLayer = fresh.getLayer(entry.name);
    if (!edit && !order) {
      newLayer.setWeights(weights);
      continue;
    }
    const replaced = tf.tidy(() => {
      switch (entry.className) {
        case 'Conv2D':
        case 'Dense': {
          const kernel = weights[0];
          const keptOut = order ?? edit!.keptOut;
          const bias = foldedBias(kernel, weights[1], edit?.folds ?? []);
          let k = gatherIf(kernel, edit?.keptIn ?? keptChannels(kernel.shape[kernel.rank - 2], undefined), kernel.rank - 2);
          k = gatherIf(k, keptOut, kernel.rank - 1);
          const useBias = entry.config['useBias'] !== false;
          return useBias ? [k, gatherIf(tf.tensor1d(Float32Array.from(bias)), keptOut, 0)] : [k];
        }
        case 'DepthwiseConv2D':
          return weights.map((w) => gatherIf(w, edit!.keptOut, w.rank === 4 ? 2 : 0));
        case 'BatchNormalization':
          return weights.map((w) => gatherIf(w, edit!.keptOut, 0));
        default:
          throw new Error(`cannot slice the weights of layer '${entry.name}' (${entry.className})`);
      }
    });
    newLayer.setWeights(replaced);
    for (const t of replaced) if (!weights.includes(t)) t.dispose();
  }
  return fresh;
}

/**
 * Returns a new, smaller model without the planned units; constants are folded into the next layers' biases.
 * Layer names are kept; `model` is not modified.
 */
export function applyPruning(model: tf.LayersModel, plan: PruningPlan): tf.LayersModel {
  const dep = buildDependencyGraph(model);
  const graph = dep.layers;
  const config = JSON.parse(JSON.stringify(graph.config)) as ModelConfig;
  for (const t of Object.keys(plan.removedChannels)) if (!dep.channels.has(t)) throw new Error(`plan names unknown tensor '${t}'`);
  for (const c of Object.keys(plan.folds)) if (!graph.nodes.has(c)) throw new Error(`plan names unknown layer '${c}'`);
  const kept = (t: string) => keptChannels(dep.channels.get(t)!, plan.removedChannels[t]);
  const edits = new Map<string, LayerEdit>();
  for (const entry of config.layers) {
    const node = graph.nodes.get(entry.name)!;
    const keptOut = kept(entry.name);
    const folds = plan.folds[entry.name] ?? [];
    switch (entry.className) {
      case 'Conv2D':
      case 'Dense': {
        const keptIn = kept(node.inputs[0]);
        if (keptOut.length !== dep.channels.get(entry.name) || keptIn.length !== dep.channels.get(node.inputs[0]) || folds.length > 0) {
          edits.set(entry.name, { keptOut, keptIn, folds });
        }
        entry.config[entry.className === 'Conv2D' ? 'filters' : 'units'] = keptOut.length;
        if (folds.length > 0) entry.config['useBias'] = true;
        break;
      }
      case 'DepthwiseConv2D':
      case 'BatchNormalization':
        if (keptOut.length !== dep.channels.get(entry.name)) edits.set(entry.name, { keptOut, folds: [] });
        break;
      case 'Reshape': {
        const target = [...(entry.config['targetShape'] as number[])];
        if (target.length === 1) {
          if (target[0] !== -1) target[0] = keptOut.length;
        } else {
          target[target.length - 1] = keptOut.length;
        }
        entry.config['targetShape'] = target;
        break;
      }
      default:
        break;
    }
  }
  return rebuild(graph, config, edits);
}

/**
 * Keeps only the units `keep` (in that order) of Dense layer `layerName` and drops every layer after it: the
 * new model's single output is exactly those features.
 */
export function pruneOutputUnits(model: tf.LayersModel, layerName: string, keep: number[]): tf.LayersModel {
  const graph = buildLayerGraph(model);
  const node = graph.nodes.get(layerName);
  if (!node) throw new Error(`no layer '${layerName}' in the model`);
  if (node.className !== 'Dense') throw new Error(`layer '${layerName}' is a ${node.className}, not a Dense layer`);
  const units = node.outputShape[node.outputShape.length - 1] as number;
  if (keep.length === 0) throw new Error('keep at least one unit');
  if (new Set(keep).size !== keep.length) throw new Error('unit indices to keep must be distinct');
  for (const k of keep) if (!Number.isInteger(k) || k < 0 || k >= units) throw new Error(`unit ${k} is not in 0..${units - 1}`);
  // The layer's ancestors are all the new model needs.
  const needed = new Set<string>();
  const stack = [layerName];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    stack.push(...graph.nodes.get(n)!.inputs);
  }
  const config = JSON.parse(JSON.stringify(graph.config)) as ModelConfig;
  config.layers = config.layers.filter((l) => needed.has(l.name));
  config.inputLayers = config.inputLayers.filter(([n]) => needed.has(n));
  config.outputLayers = [[layerName, 0, 0]];
  const entry = config.layers.find((l) => l.name === layerName)!;
  entry.config['units'] = keep.length;
  return rebuild(graph, config, new Map(), new Map([[layerName, keep]]));
}

// ---------------------------------------------------------------------------------------------------------
// Counting

export interface LayerUnits {
  name: string;
  type: string;
  units: number;
}

/** Units per layer: Dense neurons, Conv2D filters, DepthwiseConv2D output channels. */
export function unitsPerLayer(model: tf.LayersModel): LayerUnits[] {
  const graph = buildLayerGraph(model);
  const out: LayerUnits[] = [];
  for (const name of graph.order) {
    const node = graph.nodes.get(name)!;
    if (node.className === 'Dense' || node.className === 'Conv2D' || node.className === 'DepthwiseConv2D') {
      out.push({ name, type: node.className, units: node.outputShape[node.outputShape.length - 1] as number });
    }
  }
  return out;
}

export function countUnits(model: tf.LayersModel): number {
  return unitsPerLayer(model).reduce((s, l) => s + l.units, 0);
}

export interface PruningSummary {
  unitsBefore: number;
  unitsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  keptForPadding: number;
  keptProtected: number;
  keptLastUnit: number;
  layers: { name: string; type: string; unitsBefore: number; unitsAfter: number }[];
}

/** Units and parameters before and after pruning, per layer (a layer missing after pruning has 0 units). */
export function pruningSummary(before: tf.LayersModel, after: tf.LayersModel, plan?: PruningPlan): PruningSummary {
  const b = unitsPerLayer(before);
  const a = new Map(unitsPerLayer(after).map((l) => [l.name, l.units]));
  return {
    unitsBefore: b.reduce((s, l) => s + l.units, 0),
    unitsAfter: [...a.values()].reduce((s, u) => s + u, 0),
    paramsBefore: before.countParams(),
    paramsAfter: after.countParams(),
    keptForPadding: plan?.keptForPadding ?? 0,
    keptProtected: plan?.keptProtected ?? 0,
    keptLastUnit: plan?.keptLastUnit ?? 0,
    layers: b.map((l) => ({ name: l.name, type: l.type, unitsBefore: l.units, unitsAfter: a.get(l.name) ?? 0 })),
  };
}
