// Dependency groups: which channels of which tensors stand or fall together. Channel-wise layers (BN,
// activations, padding, pooling, depthwise convs) carry channel k of their input to channel k of their output;
// Add ties channel k of all its inputs; Concatenate ties with offsets; Flatten maps channel k to every position
// that holds it. A *unit group* is one equivalence class of (tensor, channel) pairs; a *group set* is the set of
// tensors connected that way. Conv2D / Dense layers start new channel spaces (they are the groups' producers) and
// end them (their input channels are the groups' exit reads). Browser-safe; knows nothing of any criterion.
import type * as tf from '@tensorflow/tfjs';
import { buildLayerGraph, channelsOf, type LayerGraph, type LayerNode } from './graph.js';

export interface UnitMember {
  tensor: string;
  channel: number;
}

export interface UnitGroup {
  id: number;
  members: UnitMember[];
  /** Conv2D / Dense layers whose output filter is one of the members. */
  producers: string[];
  /** Why the group can never be removed (model input/output, softmax coupling...); empty when it can. */
  lockedBy: string[];
  groupSet: number;
}

/** A Conv2D / Dense layer reading a tensor: the end of that tensor's groups. */
export interface ExitRead {
  consumer: string;
  tensor: string;
  kind: 'conv' | 'dense';
  /** Conv2D with 'same' padding and a kernel larger than 1: a constant input is not constant at the borders. */
  padded: boolean;
}

export interface GroupSet {
  id: number;
  tensors: string[];
  producers: string[];
  exitConsumers: string[];
}

export interface DependencyGraph {
  layers: LayerGraph;
  channels: Map<string, number>;
  unitGroups: UnitGroup[];
  groupSets: GroupSet[];
  /** Unit group id of (tensor, channel). */
  groupOf(tensor: string, channel: number): number;
  exitReads: ExitRead[];
  /** Exit reads by the tensor they read. */
  exitReadsOf: Map<string, ExitRead[]>;
  /** Tensors that are zero-padded further on inside their group (ZeroPadding2D, 'same' depthwise convs). */
  paddingWitnesses: Set<string>;
  /** Tensors whose channels may not be removed, with the reason. */
  locked: Map<string, string>;
}

const ELEMENTWISE_ACTIVATIONS = new Set([
  'linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hardSigmoid', 'hard_sigmoid', 'tanh', 'softplus',
  'softsign', 'swish', 'mish', 'gelu', 'gelu_new', 'exponential',
]);
const COUPLING_ACTIVATIONS = new Set(['softmax', 'logSoftmax', 'log_softmax']);
const CHANNELWISE = new Set([
  'BatchNormalization', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'ZeroPadding2D', 'MaxPooling2D',
  'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Dropout', 'DepthwiseConv2D', 'Activation',
]);
const ELEMENTWISE_MERGES = new Set(['Add', 'Average', 'Maximum', 'Minimum', 'Multiply']);
const SUPPORTED = [
  'InputLayer', 'Conv2D', 'Dense', ...CHANNELWISE, ...ELEMENTWISE_MERGES, 'Concatenate', 'Flatten', 'Reshape',
  'Softmax',
];

class UnionFind {
  readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]];
      x = p[x];
    }
    return x;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

function unsupported(node: LayerNode, why?: string): Error {
  return new Error(
    `cannot plan pruning through layer '${node.name}' (${node.className})` +
      (why ? `: ${why}` : `: unsupported layer type; supported: ${SUPPORTED.join(', ')}`),
  );
}

function activationOf(node: LayerNode): string {
  const a = node.config['activation'];
  return typeof a === 'string' ? a : 'linear';
}

function checkChannelsLast(node: LayerNode): void {
  const f = node.config['dataFormat'];
  if (f !== undefined && f !== null && f !== 'channelsLast') throw unsupported(node, `data format ${String(f)}`);
}

function checkLastAxis(node: LayerNode, rank: number): void {
  const axis = node.config['axis'];
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis;
  if (a !== -1 && a !== rank - 1) throw unsupported(node, `axis ${JSON.stringify(axis)} is not the channel axis`);
}

function kernelOf(node: LayerNode): number[] {
  const k = node.config['kernelSize'];
  return Array.isArray(k) ? (k as number[]) : [k as number, k as number];
}

/** Analyses `model`; throws naming the first layer it cannot reason about. */
export function buildDependencyGraph(model: tf.LayersModel): DependencyGraph {
  const layers = buildLayerGraph(model);
  const channels = new Map<string, number>();
  const offset = new Map<string, number>();
  let total = 0;
  for (const name of layers.order) {
    const c = channelsOf(layers.nodes.get(name)!);
    channels.set(name, c);
    offset.set(name, total);
    total += c;
  }
  const uf = new UnionFind(total);
  const tensorUf = new UnionFind(layers.order.length);
  const tensorIndex = new Map(layers.order.map((n, i) => [n, i]));
  const tie = (a: string, b: string) => tensorUf.union(tensorIndex.get(a)!, tensorIndex.get(b)!);
  const el = (t: string, k: number) => offset.get(t)! + k;
  const locked = new Map<string, string>();
  const lock = (t: string, why: string) => {
    if (!locked.has(t)) locked.set(t, why);
  };
  const exitReads: ExitRead[] = [];
  const paddingWitnesses = new Set<string>();

  for (const name of layers.order) {
    const node = layers.nodes.get(name)!;
    const cOut = channels.get(name)!;
    const rank = node.outputShape.length;
    const sameWidth = (input: string) => {
      if (channels.get(input) !== cOut) throw unsupported(node, `channel count changes from ${channels.get(input)} to ${cOut}`);
    };
    const channelwise = (input: string) => {
      sameWidth(input);
      for (let k = 0; k < cOut; k++) uf.union(el(input, k), el(name, k));
      tie(input, name);
    };
    switch (node.className) {
      case 'InputLayer':
        lock(name, 'model input');
        break;
      case 'Conv2D':
      case 'Dense': {
        if (node.inputs.length !== 1) throw unsupported(node, 'expects one input');
        if (node.className === 'Conv2D') checkChannelsLast(node);
        const act = activationOf(node);
        if (COUPLING_ACTIVATIONS.has(act)) lock(name, `${act} activation of '${name}' couples its units`);
        else if (!ELEMENTWISE_ACTIVATIONS.has(act)) throw unsupported(node, `unknown activation '${act}'`);
        const padded = node.className === 'Conv2D' && node.config['padding'] === 'same' && kernelOf(node).some((k) => k > 1);
        exitReads.push({ consumer: name, tensor: node.inputs[0], kind: node.className === 'Conv2D' ? 'conv' : 'dense', padded });
        break;
      }
      case 'Activation':
      case 'Softmax': {
        const act = node.className === 'Softmax' ? 'softmax' : activationOf(node);
        if (COUPLING_ACTIVATIONS.has(act)) {
          // Every output depends on every input channel: neither side may lose a channel.
          sameWidth(node.inputs[0]);
          lock(node.inputs[0], `${act} in '${name}' couples its channels`);
          lock(name, `${act} in '${name}' couples its channels`);
          break;
        }
        if (!ELEMENTWISE_ACTIVATIONS.has(act)) throw unsupported(node, `unknown activation '${act}'`);
        channelwise(node.inputs[0]);
        break;
      }
      case 'DepthwiseConv2D': {
        checkChannelsLast(node);
        const dm = (node.config['depthMultiplier'] as number | undefined) ?? 1;
        if (dm !== 1) throw unsupported(node, `depth multiplier ${dm} (only 1 is supported)`);
        const act = activationOf(node);
        if (!ELEMENTWISE_ACTIVATIONS.has(act)) throw unsupported(node, `activation '${act}'`);
        channelwise(node.inputs[0]);
        if (node.config['padding'] === 'same' && kernelOf(node).some((k) => k > 1)) paddingWitnesses.add(node.inputs[0]);
        break;
      }
      case 'BatchNormalization':
        checkLastAxis(node, rank);
        channelwise(node.inputs[0]);
        break;
      case 'ZeroPadding2D':
        checkChannelsLast(node);
        channelwise(node.inputs[0]);
        paddingWitnesses.add(node.inputs[0]);
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D':
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
        checkChannelsLast(node);
        channelwise(node.inputs[0]);
        break;
      case 'ReLU':
      case 'LeakyReLU':
      case 'ELU':
      case 'ThresholdedReLU':
      case 'Dropout':
        channelwise(node.inputs[0]);
        break;
      case 'Add':
      case 'Average':
      case 'Maximum':
      case 'Minimum':
      case 'Multiply':
        for (const input of node.inputs) channelwise(input);
        break;
      case 'Concatenate': {
        checkLastAxis(node, rank);
        let off = 0;
        for (const input of node.inputs) {
          const c = channels.get(input)!;
          for (let k = 0; k < c; k++) uf.union(el(input, k), el(name, off + k));
          tie(input, name);
          off += c;
        }
        if (off !== cOut) throw unsupported(node, `concatenated width ${off} != ${cOut}`);
        break;
      }
      case 'Flatten':
      case 'Reshape': {
        const input = node.inputs[0];
        const cIn = channels.get(input)!;
        const target = node.config['targetShape'] as number[] | undefined;
        const flattens = node.className === 'Flatten' || (target !== undefined && target.length === 1);
        if (flattens) {
          // channels-last flattening: element i holds channel i mod cIn.
          if (cOut % cIn !== 0) throw unsupported(node, `output width ${cOut} is not a multiple of ${cIn}`);
          for (let i = 0; i < cOut; i++) uf.union(el(input, i % cIn), el(name, i));
          tie(input, name);
        } else if (cIn === cOut) {
          channelwise(input);
        } else {
          throw unsupported(node, 'reshape moves the channel axis');
        }
        break;
      }
      default:
        throw unsupported(node);
    }
  }
  for (const o of layers.outputs) lock(o, `'${o}' is a model output`);

  // Collect unit groups (classes of the element union-find), numbered by first appearance.
  const rootToGroup = new Map<number, number>();
  const groupIds = new Int32Array(total);
  const unitGroups: UnitGroup[] = [];
  for (const name of layers.order) {
    const base = offset.get(name)!;
    const node = layers.nodes.get(name)!;
    const isProducer = node.className === 'Conv2D' || node.className === 'Dense';
    for (let k = 0; k < channels.get(name)!; k++) {
      const root = uf.find(base + k);
      let id = rootToGroup.get(root);
      if (id === undefined) {
        id = unitGroups.length;
        rootToGroup.set(root, id);
        unitGroups.push({ id, members: [], producers: [], lockedBy: [], groupSet: tensorUf.find(tensorIndex.get(name)!) });
      }
      groupIds[base + k] = id;
      const g = unitGroups[id];
      g.members.push({ tensor: name, channel: k });
      if (isProducer) g.producers.push(name);
      const why = locked.get(name);
      if (why !== undefined && !g.lockedBy.includes(why)) g.lockedBy.push(why);
    }
  }

  const exitReadsOf = new Map<string, ExitRead[]>();
  for (const r of exitReads) exitReadsOf.set(r.tensor, [...(exitReadsOf.get(r.tensor) ?? []), r]);

  // Group sets: tensors tied by channel-wise layers, renumbered densely.
  const setIds = new Map<number, number>();
  const groupSets: GroupSet[] = [];
  for (const name of layers.order) {
    const root = tensorUf.find(tensorIndex.get(name)!);
    let id = setIds.get(root);
    if (id === undefined) {
      id = groupSets.length;
      setIds.set(root, id);
      groupSets.push({ id, tensors: [], producers: [], exitConsumers: [] });
    }
    const s = groupSets[id];
    s.tensors.push(name);
    const cls = layers.nodes.get(name)!.className;
    if (cls === 'Conv2D' || cls === 'Dense') s.producers.push(name);
    for (const r of exitReadsOf.get(name) ?? []) s.exitConsumers.push(r.consumer);
  }
  for (const g of unitGroups) g.groupSet = setIds.get(g.groupSet)!;

  return {
    layers,
    channels,
    unitGroups,
    groupSets,
    groupOf: (tensor, channel) => {
      const base = offset.get(tensor);
      if (base === undefined || channel < 0 || channel >= channels.get(tensor)!) {
        throw new Error(`no channel ${channel} in tensor '${tensor}'`);
      }
      return groupIds[base + channel];
    },
    exitReads,
    exitReadsOf,
    paddingWitnesses,
    locked,
  };
}

/** Tensors whose statistics the zero-variance planner needs: exit reads, padding witnesses, protected layers. */
export function statTensorNames(dep: DependencyGraph, protect: string[] = []): string[] {
  const names = new Set<string>();
  for (const r of dep.exitReads) names.add(r.tensor);
  for (const t of dep.paddingWitnesses) names.add(t);
  for (const p of protect) {
    if (!dep.channels.has(p)) throw new Error(`protected layer '${p}' is not in the model`);
    names.add(p);
  }
  // Model inputs never lose channels; measuring them is wasted work.
  for (const i of dep.layers.inputs) names.delete(i);
  return dep.layers.order.filter((n) => names.has(n));
}
