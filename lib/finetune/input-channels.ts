// Adapting a pretrained RGB stem to other input channels, as timm's
// adapt_input_conv does when a model is created with in_chans != 3: for one
// channel the RGB filters are summed (a grey image then gives the same
// output as the grey image repeated to RGB); for n channels the RGB filters
// are repeated ceil(n/3) times, the first n kept and scaled by 3/n (so the
// activations keep their scale).
import { ArgumentError } from '../errors.js';
import { Architecture, type StemConv } from '../models/architecture.js';
import { Module } from '../nn/module.js';
import { Conv2d } from '../nn/layers.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';

/** timm's adapt_input_conv(inChannels, weight) on a conv weight [out, in, kh, kw]: the adapted weight (a new tensor). */
export function adaptConvWeight(weight: Tensor, inChannels: number): Tensor {
  const where = 'finetune.adaptConvWeight';
  if (!Number.isInteger(inChannels) || inChannels < 1) throw new ArgumentError(where, `inChannels must be a positive integer, got ${inChannels}`);
  if (weight.ndim !== 4) throw new ArgumentError(where, `expected a conv weight [out, in, kh, kw], got shape [${weight.shape.join(', ')}]`);
  const [O, I, J, K] = weight.shape;
  return torch.noGrad(() =>
    torch.tidy(() => {
      // summed in float32, as timm does for half-precision weights
      const w = weight.detach().float();
      let out: Tensor;
      if (inChannels === 1) {
        if (I > 3) {
          // space-to-depth stems: the channels are groups of RGB
          if (I % 3 !== 0) throw new ArgumentError(where, `a ${I}-channel stem is not groups of RGB (${I} is not a multiple of 3)`);
          out = w.reshape([O, I / 3, 3, J, K]).sum(2);
        } else out = w.sum(1, true);
      } else if (inChannels !== 3) {
        if (I !== 3) throw new ArgumentError(where, `only a 3-channel (RGB) stem can be adapted to ${inChannels} channels; this one has ${I}`);
        const repeat = Math.ceil(inChannels / 3);
        out = w
          .repeat([1, repeat, 1, 1])
          .narrow(1, 0, inChannels)
          .mul(3 / inChannels);
      } else {
        if (I !== 3) throw new ArgumentError(where, `a ${I}-channel stem cannot be adapted to 3 channels`);
        out = w.clone();
      }
      return out.to(weight.dtype);
    }),
  );
}

/** What adaptInputChannels did: the stem's path and its input channels before and after. */
export interface InputChannelsAdaptation {
  path: string;
  from: number;
  to: number;
}

/**
 * Makes a model take `inChannels` input channels by rebuilding its stem
 * convolution with timm's adapt_input_conv weights (see adaptConvWeight).
 * `model` is one of our architectures (its stem is declared: ResNet conv1,
 * VGG features.0, EfficientNet features.0.0), or any module when `stem`
 * gives the convolution's path, stride and padding. The new convolution
 * keeps the old one's device, dtype, bias and requiresGrad. A stem that
 * already has `inChannels` is left as it is (from === to).
 */
export function adaptInputChannels(model: Module, inChannels: number, stem?: StemConv): InputChannelsAdaptation {
  const where = 'finetune.adaptInputChannels';
  if (!(model instanceof Module)) throw new ArgumentError(where, 'model must be an nn.Module');
  if (!Number.isInteger(inChannels) || inChannels < 1 || inChannels > 4096)
    throw new ArgumentError(where, `inChannels must be an integer in 1..4096, got ${String(inChannels)}`);
  const at = stem ?? (model instanceof Architecture ? model.stemConv() : null);
  if (!at)
    throw new ArgumentError(
      where,
      model instanceof Architecture
        ? `${model.arch} has no stem convolution to adapt (image models only)`
        : 'the model does not declare its stem: pass {path, stride, padding} of its first convolution',
    );
  const old = model.getSubmodule(at.path);
  const own = Object.fromEntries(old.namedParameters({ recurse: false }));
  const weight = own.weight;
  if (weight?.ndim !== 4) throw new ArgumentError(where, `'${at.path}' is not a Conv2d (no 4-D weight)`);
  const [out, from, kh, kw] = weight.shape;
  if (from === inChannels) return { path: at.path, from, to: inChannels };
  const adapted = adaptConvWeight(weight, inChannels);
  const fresh = new Conv2d(inChannels, out, [kh, kw], { stride: at.stride, padding: at.padding, bias: own.bias !== undefined }).to(weight.device, weight.dtype);
  const params = Object.fromEntries(fresh.namedParameters({ recurse: false }));
  torch.noGrad(() => {
    params.weight.copy_(adapted);
    if (own.bias) params.bias.copy_(own.bias);
  });
  adapted.dispose();
  params.weight.requiresGrad = weight.requiresGrad;
  if (own.bias) params.bias.requiresGrad = own.bias.requiresGrad;
  model.replaceChild(at.path, fresh);
  return { path: at.path, from, to: inChannels };
}
