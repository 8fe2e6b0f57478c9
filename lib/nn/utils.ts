// torch.nn.utils: helpers that act on a model's parameters.
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';

/**
 * torch.nn.utils.clip_grad_norm_: scales all gradients in place so that their
 * global L2 norm is at most maxNorm; returns the norm before clipping.
 * Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  if (!(typeof maxNorm === 'number' && maxNorm > 0)) throw new TypeError(`clipGradNorm: maxNorm must be a positive number, got ${maxNorm}`);
  const list = [...params];
  for (const [i, p] of list.entries()) if (!(p instanceof Tensor)) throw new TypeError(`clipGradNorm: params[${i}] is not a Tensor`);
  return torch.tidy(() => {
    const grads = list.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (!grads.length) return 0;
    const total = Math.sqrt(grads.reduce((s, g) => s + (g.pow(2).sum().item() as number), 0));
    const coef = maxNorm / (total + 1e-6); // PyTorch's epsilon
    if (coef < 1) for (const g of grads) g.mul_(coef);
    return total;
  });
}
