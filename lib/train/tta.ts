// Test-time augmentation: a ForwardFn for evaluate and predict that runs the
// model on several views of each image batch (flips, five crops) and averages
// the class probabilities over the views, as fastai's Learner.tta and
// torchvision's FiveCrop/TenCrop evaluation do. It returns the log of the
// mean probability, so evaluate's cross-entropy is the NLL of the averaged
// prediction and predict's softmax gives back the mean probabilities.
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { forwardInput, type ForwardFn } from './forward.js';

export interface TtaOptions {
  /** Add the left-right mirror image of every view. */
  hflip?: boolean;
  /** Add the upside-down image of every view (with hflip too: also the image flipped both ways). */
  vflip?: boolean;
  /**
   * torchvision's FiveCrop: the four corners and the centre, in place of the
   * whole image. 'five': crops of 87.5% of the shorter side (224 of 256, the
   * ImageNet evaluation ratio); a number: crops of that many pixels a side.
   * The crops go into the model at their own size (it needs global pooling,
   * as the vision architectures have). With hflip this is TenCrop.
   */
  crops?: 'five' | number;
  /** How the model runs on one view (default forwardInput). */
  forward?: ForwardFn;
}

const KEYS = ['hflip', 'vflip', 'crops', 'forward'];

/** Checks TTA options; a bad one is a TypeError naming the field (`where` prefixes it, e.g. 'recipe.tta'). */
export function checkTtaOptions(o: unknown, where = 'tta'): TtaOptions {
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new TypeError(`${where}: expected an object like { hflip: true }, got ${JSON.stringify(o)}`);
  const given = o as Record<string, unknown>;
  const unknown = Object.keys(given).filter((k) => !KEYS.includes(k));
  if (unknown.length) throw new TypeError(`${where}: unknown option ${unknown.join(', ')} (options: ${KEYS.join(', ')})`);
  for (const k of ['hflip', 'vflip'])
    if (given[k] !== undefined && typeof given[k] !== 'boolean') throw new TypeError(`${where}.${k}: expected true or false, got ${JSON.stringify(given[k])}`);
  const c = given.crops;
  if (c !== undefined && c !== 'five' && !(typeof c === 'number' && Number.isInteger(c) && c >= 1))
    throw new TypeError(`${where}.crops: expected 'five' or a crop size in pixels (a positive integer), got ${JSON.stringify(c)}`);
  if (given.forward !== undefined && typeof given.forward !== 'function') throw new TypeError(`${where}.forward: expected a function (model, input) => Tensor`);
  return given as TtaOptions;
}

/** How many views a batch becomes under these options. */
export function ttaViewCount(o: TtaOptions): number {
  return (o.crops !== undefined ? 5 : 1) * (o.hflip ? 2 : 1) * (o.vflip ? 2 : 1);
}

/** Python's round(): halves to the even neighbour (torchvision's center_crop rounds the offset so). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's five_crop of [N, C, H, W]: top-left, top-right, bottom-left, bottom-right, centre. */
function fiveCrop(x: Tensor, size: number): Tensor[] {
  const [h, w] = x.shape.slice(-2);
  if (size > h || size > w) throw new TypeError(`tta: crops of ${size} pixels do not fit in ${h}x${w} images`);
  const crop = (top: number, left: number) => {
    const rows = x.narrow(2, top, size);
    const c = rows.narrow(3, left, size);
    rows.dispose();
    return c;
  };
  return [crop(0, 0), crop(0, w - size), crop(h - size, 0), crop(h - size, w - size), crop(roundHalfEven((h - size) / 2), roundHalfEven((w - size) / 2))];
}

/** The views of a batch [N, C, H, W]: the crops (or the batch itself), each also flipped as asked. */
function views(x: Tensor, o: TtaOptions): Tensor[] {
  let out = o.crops === undefined ? [x] : fiveCrop(x, o.crops === 'five' ? Math.floor(0.875 * Math.min(...x.shape.slice(-2))) : o.crops);
  if (o.hflip) out = out.flatMap((v) => [v, v.flip(3)]);
  if (o.vflip) out = out.flatMap((v) => [v, v.flip(2)]);
  return out;
}

/**
 * A ForwardFn for evaluate/predict (and recipe `tta`) that averages the
 * softmax probabilities over the views (see TtaOptions) and returns their
 * log, computed as logsumexp of the views' log-softmax minus log(views) so
 * that it stays finite where a probability underflows. The input must be an
 * image batch [N, C, H, W]. With no option set it is the plain forward's
 * log-softmax (the same predictions, probabilities and loss).
 */
export function tta(options: TtaOptions = {}): ForwardFn {
  const o = checkTtaOptions(options);
  const inner = o.forward ?? forwardInput;
  return async (model, input) => {
    if (!(input instanceof Tensor) || input.ndim !== 4)
      throw new TypeError(
        `tta: flips and crops apply to image batches [N, C, H, W]; got ${input instanceof Tensor ? `a tensor of shape [${input.shape.join(', ')}]` : `named inputs {${Object.keys(input).join(', ')}}`}`,
      );
    const all = views(input, o);
    const logProbs: Tensor[] = [];
    try {
      for (const v of all) {
        // no autograd: evaluation only (torch.noGrad covers the synchronous start of each call)
        const logits = await torch.noGrad(() => inner(model, v));
        const wide = logits.to('float32'); // (under autocast the logits may be bfloat16/float16)
        logProbs.push(torch.noGrad(() => wide.logSoftmax(1)));
        logits.dispose();
        wide.dispose();
      }
      return torch.noGrad(() => {
        const stacked = torch.stack(logProbs, 0);
        const lse = stacked.logsumexp(0);
        const mean = lse.sub(Math.log(all.length));
        stacked.dispose();
        lse.dispose();
        return mean;
      });
    } finally {
      for (const v of all) if (v !== input) v.dispose();
      for (const t of logProbs) t.dispose();
    }
  };
}
