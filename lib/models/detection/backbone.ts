// The Faster R-CNN backbone of torchvision: a ResNet-50 body with
// FrozenBatchNorm2d or BatchNorm2d (backbone.body.*) and a feature pyramid
// (backbone.fpn.*), giving the maps '0'..'3' (strides 4..32) and 'pool'
// (stride 64). Names and arithmetic follow torchvision 0.14.
import { Module } from '../../nn/module.js';
import { BatchNorm2d, Conv2d, MaxPool2d, ReLU } from '../../nn/layers.js';
import { ModuleList, Sequential } from '../../nn/containers.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ones, zeros, tensor, rand } from '../../tensor/creation.js';
import { noGrad } from '../../tensor/index.js';

/** BatchNorm2d with fixed statistics and affine parameters, all buffers (torchvision.ops.FrozenBatchNorm2d). */
export class FrozenBatchNorm2d extends Module {
  readonly eps: number;
  constructor(numFeatures: number, eps = 1e-5) {
    super();
    this.eps = eps;
    this.registerBuffer('weight', ones([numFeatures]));
    this.registerBuffer('bias', zeros([numFeatures]));
    this.registerBuffer('running_mean', zeros([numFeatures]));
    this.registerBuffer('running_var', ones([numFeatures]));
  }
  override forward(x: Tensor): Tensor {
    const b = Object.fromEntries(this.namedBuffers({ recurse: false }));
    // as torchvision: scale = w * rsqrt(var + eps), shift = b - mean * scale
    const scale = b.weight.mul(b.running_var.add(this.eps).rsqrt());
    const shift = b.bias.sub(b.running_mean.mul(scale));
    // the shift added in place: one large buffer per call, not two (add's backward needs neither operand)
    const y = x.mul(scale.reshape(1, -1, 1, 1));
    y.add_(shift.reshape(1, -1, 1, 1));
    [scale, shift, ...Object.values(b)].forEach((t) => t.dispose());
    return y;
  }
}

/**
 * The body's normalisation: 'frozen' (FrozenBatchNorm2d, torchvision's choice
 * when weights are loaded: fixed statistics, nothing trains) or 'batchnorm'
 * (nn.BatchNorm2d, torchvision's choice with no weights: batch statistics in
 * train mode, running ones in eval). Both have the same state dict names,
 * BatchNorm2d's adding num_batches_tracked.
 */
export type NormLayer = 'frozen' | 'batchnorm';
const makeNorm = (normLayer: NormLayer, c: number): Module => (normLayer === 'batchnorm' ? new BatchNorm2d(c) : new FrozenBatchNorm2d(c));

/** ResNet-50's bottleneck (stride on the 3x3 convolution, as torchvision's v1.5). */
class Bottleneck extends Module {
  private readonly layers: Module[];
  private readonly downsample?: Module;
  constructor(inPlanes: number, planes: number, stride: number, normLayer: NormLayer) {
    super();
    const out = planes * 4;
    const norm = (c: number) => makeNorm(normLayer, c);
    this.layers = [
      this.registerModule('conv1', new Conv2d(inPlanes, planes, 1, { bias: false })),
      this.registerModule('bn1', norm(planes)),
      this.registerModule('conv2', new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false })),
      this.registerModule('bn2', norm(planes)),
      this.registerModule('conv3', new Conv2d(planes, out, 1, { bias: false })),
      this.registerModule('bn3', norm(out)),
    ];
    this.registerModule('relu', new ReLU());
    if (stride !== 1 || inPlanes !== out)
      this.downsample = this.registerModule('downsample', new Sequential(new Conv2d(inPlanes, out, 1, { stride, bias: false }), norm(out)));
  }
  override forward(x: Tensor): Tensor {
    let y = x;
    this.layers.forEach((layer, i) => {
      const next = layer.forward(y);
      if (y !== x) y.dispose();
      // ReLU(inplace=True) as torchvision's bottleneck: no new buffer (the norms' backward needs their input, not output)
      if (i % 2 === 1 && i < 5) next.relu_();
      y = next;
    });
    const identity = this.downsample ? this.downsample.forward(x) : x;
    // `out += identity` as torchvision: in place on the last norm's output
    y.add_(identity);
    if (identity !== x) identity.dispose();
    return y.relu_();
  }
}

/** The ResNet-50 body (torchvision's IntermediateLayerGetter: conv1 .. layer4, no pool or fc). */
export class ResNet50Body extends Module {
  private readonly stem: Module[];
  readonly stages: Sequential[] = [];
  constructor(normLayer: NormLayer = 'frozen') {
    super();
    this.stem = [
      this.registerModule('conv1', new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false })),
      this.registerModule('bn1', makeNorm(normLayer, 64)),
      this.registerModule('relu', new ReLU()),
      this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 })),
    ];
    let inPlanes = 64;
    [3, 4, 6, 3].forEach((blocks, s) => {
      const planes = 64 * 2 ** s;
      const layer = new Sequential(
        ...Array.from({ length: blocks }, (_, b) => new Bottleneck(b === 0 ? inPlanes : planes * 4, planes, b === 0 && s > 0 ? 2 : 1, normLayer)),
      );
      inPlanes = planes * 4;
      this.stages.push(this.registerModule(`layer${s + 1}`, layer));
    });
  }
  /** The outputs of layer1..layer4 (strides 4, 8, 16, 32). */
  features(x: Tensor): Tensor[] {
    let y = x;
    for (const m of this.stem) {
      const next = m.forward(y);
      if (y !== x) y.dispose();
      y = next;
    }
    const outs: Tensor[] = [];
    for (const stage of this.stages) {
      y = stage.forward(y);
      outs.push(y);
    }
    return outs;
  }
}

/** The index of each output position's nearest source (ATen's upsample_nearest: floor(out * (in / out) in float32)). */
function nearestIndex(inSize: number, outSize: number, device: Tensor['device']): Tensor {
  const scale = Math.fround(inSize / outSize);
  return tensor(
    Array.from({ length: outSize }, (_, o) => Math.min(Math.floor(Math.fround(o * scale)), inSize - 1)),
    { dtype: 'int64', device },
  );
}

/** F.interpolate(x, size, mode='nearest') for [N, C, H, W]. */
function upsampleNearest(x: Tensor, height: number, width: number): Tensor {
  const rows = nearestIndex(x.shape[2], height, x.device);
  const cols = nearestIndex(x.shape[3], width, x.device);
  const a = x.indexSelect(2, rows);
  const b = a.indexSelect(3, cols);
  [rows, cols, a].forEach((t) => t.dispose());
  return b;
}

/** torchvision's FPN initialisation: kaiming_uniform_(a=1) weights (bound sqrt(3 / fan_in)), zero biases. */
function kaimingUniformA1(m: Module): void {
  noGrad(() => {
    for (const [name, p] of m.namedParameters()) {
      if (name.endsWith('bias')) p.zero_();
      else {
        const bound = Math.sqrt(3 / (p.numel() / p.shape[0]));
        const u = rand(p.shape);
        p.copy_(u.mul(2 * bound).sub(bound));
        u.dispose();
      }
    }
  });
}

/** torchvision's FeaturePyramidNetwork with LastLevelMaxPool: inner (1x1) and layer (3x3) convolutions per level. */
export class FeaturePyramidNetwork extends Module {
  private readonly inner: Module[] = [];
  private readonly layer: Module[] = [];
  private readonly pool = new MaxPool2d(1, { stride: 2 });
  constructor(inChannelsList: number[], outChannels: number) {
    super();
    const innerBlocks = this.registerModule('inner_blocks', new ModuleList());
    const layerBlocks = this.registerModule('layer_blocks', new ModuleList());
    for (const c of inChannelsList) {
      // Conv2dNormActivation without norm or activation: a Sequential around one biased conv
      const i = new Sequential(new Conv2d(c, outChannels, 1));
      const l = new Sequential(new Conv2d(outChannels, outChannels, 3, { padding: 1 }));
      for (const conv of [i, l]) kaimingUniformA1(conv);
      innerBlocks.append(i);
      layerBlocks.append(l);
      this.inner.push(i);
      this.layer.push(l);
    }
  }
  /** The pyramid from the body's outputs (finest first): maps '0'.. and 'pool'. */
  pyramid(xs: Tensor[]): Record<string, Tensor> {
    const n = xs.length;
    let last = this.inner[n - 1].forward(xs[n - 1]);
    const results: Tensor[] = [this.layer[n - 1].forward(last)];
    for (let i = n - 2; i >= 0; i--) {
      const lateral = this.inner[i].forward(xs[i]);
      const topDown = upsampleNearest(last, lateral.shape[2], lateral.shape[3]);
      last.dispose();
      last = lateral.add(topDown);
      lateral.dispose();
      topDown.dispose();
      results.unshift(this.layer[i].forward(last));
    }
    last.dispose();
    const out: Record<string, Tensor> = {};
    results.forEach((r, i) => (out[String(i)] = r));
    out.pool = this.pool.forward(results[n - 1]);
    return out;
  }
}

/** backbone: body + fpn, as torchvision's BackboneWithFPN. */
export class BackboneWithFPN extends Module {
  readonly body: ResNet50Body;
  readonly fpn: FeaturePyramidNetwork;
  readonly outChannels = 256;
  constructor(normLayer: NormLayer = 'frozen') {
    super();
    this.body = this.registerModule('body', new ResNet50Body(normLayer));
    this.fpn = this.registerModule('fpn', new FeaturePyramidNetwork([256, 512, 1024, 2048], 256));
  }
  pyramid(images: Tensor): Record<string, Tensor> {
    const feats = this.body.features(images);
    const out = this.fpn.pyramid(feats);
    feats.forEach((f) => f.dispose());
    return out;
  }
}
