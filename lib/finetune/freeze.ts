// Freezing: the first N blocks (or parameters matching name patterns) stop
// receiving gradients. BatchNorm layers inside frozen blocks stay in eval
// mode by default, also after model.train(), so their running statistics do
// not drift (Keras and most fine-tuning guides do this; fastai keeps them
// training: pass {trainBatchNorm: true}).
import { Module, setFrozenBatchNorm, getFrozenBatchNorm } from '../nn/module.js';
import { blocksOf } from './blocks.js';
import { ArgumentError } from '../errors.js';

export interface FreezeOptions {
  /** Freeze the first `blocks` blocks (stem first). */
  blocks?: number;
  /** Freeze every parameter whose dotted name matches one of these. */
  patterns?: Array<string | RegExp>;
  /** Keep BatchNorm in frozen blocks updating its statistics in train mode (default false). */
  trainBatchNorm?: boolean;
}

function matches(name: string, p: string | RegExp): boolean {
  if (p instanceof RegExp) return p.test(name);
  // glob: '*' any run of characters, a bare prefix matches a whole subtree
  const re = new RegExp(
    '^' +
      p
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '(\\..*)?$',
  );
  return re.test(name);
}

/** Freezes blocks or named parameters; returns the names of the frozen parameters. */
export function freeze(model: Module, options: FreezeOptions): string[] {
  if (!(model instanceof Module)) throw new ArgumentError('finetune.freeze', 'model must be an nn.Module');
  const frozen: string[] = [];
  const bnPaths: string[] = [];
  if (options.blocks !== undefined) {
    const blocks = blocksOf(model);
    if (!Number.isInteger(options.blocks) || options.blocks < 0 || options.blocks > blocks.length)
      throw new ArgumentError(
        'finetune.freeze',
        `blocks must be an integer in 0..${blocks.length} (${blocks.map((b) => b.name).join(', ')}), got ${options.blocks}`,
      );
    for (const block of blocks.slice(0, options.blocks)) {
      block.modules.forEach((m, i) => {
        const prefix = block.paths[i];
        for (const [name, p] of m.namedParameters()) {
          p.requiresGrad_(false);
          frozen.push(`${prefix}.${name}`);
        }
        for (const [name, sub] of m.namedModules()) if (/^BatchNorm/.test(sub.kind)) bnPaths.push(name ? `${prefix}.${name}` : prefix);
      });
    }
  }
  if (options.patterns?.length) {
    for (const [name, p] of model.namedParameters()) {
      if (options.patterns.some((pat) => matches(name, pat))) {
        p.requiresGrad_(false);
        if (!frozen.includes(name)) frozen.push(name);
      }
    }
  }
  if (options.blocks === undefined && !options.patterns?.length) throw new ArgumentError('finetune.freeze', 'pass {blocks: N} or {patterns: [...]}');
  setFrozenBatchNorm(model, options.trainBatchNorm ? getFrozenBatchNorm(model) : [...new Set([...getFrozenBatchNorm(model), ...bnPaths])]);
  if (model.training) model.train();
  return frozen;
}

/** Makes every parameter trainable again (or those of the given blocks) and lets BatchNorm train. */
export function unfreeze(model: Module, options: { blocks?: string[] } = {}): void {
  const blocks = blocksOf(model).filter((b) => !options.blocks || options.blocks.includes(b.name));
  for (const b of blocks) for (const m of b.modules) m.requiresGrad_(true);
  if (!options.blocks) {
    for (const p of model.parameters()) p.requiresGrad_(true);
    setFrozenBatchNorm(model, []);
  } else {
    const prefixes = blocks.flatMap((b) => b.paths);
    setFrozenBatchNorm(
      model,
      getFrozenBatchNorm(model).filter((p) => !prefixes.some((x) => p === x || p.startsWith(x + '.'))),
    );
  }
  if (model.training) model.train();
}
