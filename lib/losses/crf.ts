// Losses of a linear-chain CRF tagger: the negative log-likelihood of the
// gold tag paths (what a BiLSTM-CRF or BERT-CRF is trained on), optionally
// plus a focal loss on the per-token emissions (against tag imbalance).
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { ArgumentError } from '../errors.js';
import { focalLoss } from './index.js';

/** What the CRF losses need of a CRF (nn.CRF): its layout and its log-likelihood. */
export interface CrfLike {
  readonly numTags: number;
  readonly batchFirst: boolean;
  forward(emissions: Tensor, tags: Tensor, mask?: Tensor, options?: { reduction?: CrfReduction }): Tensor;
}

/** pytorch-crf's reductions: 'none' per sequence, 'sum', 'mean' over sequences, 'token_mean' over the masked-in tokens. */
export type CrfReduction = 'none' | 'sum' | 'mean' | 'token_mean';
const REDUCTIONS: readonly string[] = ['none', 'sum', 'mean', 'token_mean'];

export interface CrfLossOptions {
  /** How the per-sequence losses are combined (default 'mean': the mean over sequences). */
  reduction?: CrfReduction;
  /** Tag value of positions that are not words (default -100); with no mask, the mask is tags != ignoreIndex. */
  ignoreIndex?: number;
  /**
   * Adds weight * focal loss of the emissions (softmax over each token's
   * tags) to the NLL. The focal term is summed per sequence and reduced as
   * the NLL is, so weight compares like with like (1 = one focal token loss
   * per token next to the sequence's NLL).
   */
  focal?: { weight: number; gamma?: number; alpha?: number | number[] };
}

/**
 * The CRF negative log-likelihood, -crf.forward(emissions, tags, mask): the
 * training loss of a CRF tagger (BiLSTM-CRF, BERT-CRF), which scores whole
 * tag paths, so the transitions learn what may follow what (I-X after B-X).
 * emissions [T, B, K] ([B, T, K] for a batchFirst CRF, as the taggers'
 * crf is), tags int64 [T, B] / [B, T], mask bool [T, B] / [B, T] (a
 * left-aligned prefix per sequence; default: tags != -100). Tags under the
 * mask's off positions may be anything (-100 included).
 *
 * With `focal`, the combined objective NLL + weight * focal token loss of the
 * emissions: the focal term pushes each token's emission towards its tag with
 * rare tags weighted up (alpha) and easy tokens down (gamma), which helps
 * when the rare entity tags are swamped by O.
 */
export function crfLoss(crf: CrfLike, emissions: Tensor, tags: Tensor, mask?: Tensor, options: CrfLossOptions = {}): Tensor {
  const fn = 'losses.crfLoss';
  if (!crf || typeof crf.forward !== 'function' || typeof crf.numTags !== 'number')
    throw new ArgumentError(fn, 'crf must be an nn.CRF (a tagger has it as .crf)', 'crf');
  if (!(emissions instanceof Tensor) || emissions.ndim !== 3)
    throw new ArgumentError(
      fn,
      `emissions must be a 3-D float tensor, got ${emissions instanceof Tensor ? `[${emissions.shape}]` : typeof emissions}`,
      'emissions',
    );
  const layout = crf.batchFirst ? '[B, T]' : '[T, B]';
  const [d0, d1, K] = emissions.shape;
  if (K !== crf.numTags) throw new ArgumentError(fn, `emissions have ${K} tags in their last dimension but the CRF has ${crf.numTags}`, 'emissions');
  if (!(tags instanceof Tensor) || tags.ndim !== 2 || tags.shape[0] !== d0 || tags.shape[1] !== d1)
    throw new ArgumentError(fn, `tags must be int64 ${layout} = [${d0}, ${d1}], got ${tags instanceof Tensor ? `[${tags.shape}]` : typeof tags}`, 'tags');
  if (tags.dtype !== 'int64') throw new ArgumentError(fn, `tags must be int64, got ${tags.dtype}`, 'tags');
  if (mask !== undefined && (!(mask instanceof Tensor) || mask.ndim !== 2 || mask.shape[0] !== d0 || mask.shape[1] !== d1))
    throw new ArgumentError(fn, `mask must be bool ${layout} = [${d0}, ${d1}], got ${mask instanceof Tensor ? `[${mask.shape}]` : typeof mask}`, 'mask');
  const reduction = options.reduction ?? 'mean';
  if (!REDUCTIONS.includes(reduction))
    throw new ArgumentError(fn, `reduction must be one of ${REDUCTIONS.join(', ')}, got ${JSON.stringify(reduction)}`, 'reduction');
  const ignoreIndex = options.ignoreIndex ?? -100;
  const focal = options.focal;
  if (focal !== undefined && (typeof focal !== 'object' || !(typeof focal.weight === 'number' && focal.weight >= 0)))
    throw new ArgumentError(fn, `focal must be { weight >= 0, gamma?, alpha? }, got ${JSON.stringify(focal)}`, 'focal');
  return torch.tidy(() => {
    const on = mask === undefined ? tags.ne(ignoreIndex) : mask.dtype === 'bool' ? mask : mask.ne(0);
    if (tags.numel()) {
      // a tag outside 0..K-1 where the mask is on would index the transitions out of range
      const kept = torch.where(on, tags, 0);
      const lo = Number(kept.min().item());
      const hi = Number(kept.max().item());
      if (lo < 0 || hi >= K)
        throw new ArgumentError(fn, `tags hold ${lo < 0 ? lo : hi} at a position the mask keeps; tags must be in 0..${K - 1} there`, 'tags');
    }
    const safeTags = torch.where(on, tags, 0);
    const nll = crf.forward(emissions, safeTags, on, { reduction }).neg();
    if (!focal || focal.weight === 0) return nll;
    const targets = torch.where(on, tags, ignoreIndex);
    const perToken = focalLoss(emissions, targets, { gamma: focal.gamma, alpha: focal.alpha, ignoreIndex, reduction: 'none' });
    let term: Tensor;
    if (reduction === 'none') term = perToken.sum(crf.batchFirst ? 1 : 0);
    else if (reduction === 'sum') term = perToken.sum();
    else if (reduction === 'mean') term = perToken.sum().div(crf.batchFirst ? d0 : d1);
    else term = perToken.sum().div(on.sum().clamp(1));
    return nll.add(term.mul(focal.weight));
  });
}

export const crfLosses = { crfLoss } as const;
