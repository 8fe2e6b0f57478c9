// Callbacks for fit that ship with the library. gradualUnfreezing: ULMFiT's
// gradual unfreezing (Howard & Ruder 2018; fastai's freeze_to), which a
// recipe's `unfreeze` field turns on.
import { blocksOf } from '../finetune/blocks.js';
import { unfreeze } from '../finetune/freeze.js';
import { unfreezeInto } from '../finetune/unfreeze.js';
import type { Callback, CallbackContext } from './trainer.js';

export interface GradualUnfreezingOptions {
  /** Unfreeze more blocks every this many epochs. */
  every: number;
  /** Blocks unfrozen each time (default 1). */
  blocks?: number;
  /** How many of the first blocks start frozen (default: the leading blocks whose parameters are all frozen when training begins). */
  frozen?: number;
  /**
   * The LR of blocks whose parameters the optimizer does not hold yet (they
   * are then added as a new param group, see finetune.unfreezeInto). Without
   * it such blocks are an error: build the optimizer over every block (as
   * recipes with `unfreeze` do) so each keeps its own LR and schedule.
   */
  lr?: number;
  weightDecay?: number;
}

export interface GradualUnfreezing extends Callback {
  /** What was unfrozen, when: one entry per epoch that unfroze blocks (names top first). */
  readonly log: Array<{ epoch: number; blocks: string[] }>;
}

/**
 * Starts from the frozen state the model is in (the first `frozen` blocks)
 * and, every `every` epochs, makes the next `blocks` frozen blocks from the
 * top trainable: epochs 0..every-1 train what was trainable, epoch `every`
 * adds the highest frozen block, and so on. Which blocks are trainable
 * depends only on the epoch, so a resumed run is in the same state.
 */
export function gradualUnfreezing(o: GradualUnfreezingOptions): GradualUnfreezing {
  const where = 'gradualUnfreezing';
  if (!Number.isInteger(o?.every) || o.every < 1) throw new TypeError(`${where}: every must be a positive integer (epochs), got ${o?.every}`);
  const perStep = o.blocks ?? 1;
  if (!Number.isInteger(perStep) || perStep < 1) throw new TypeError(`${where}: blocks must be a positive integer, got ${o.blocks}`);
  let frozen = 0;
  let names: string[] = [];
  const log: GradualUnfreezing['log'] = [];
  const unfrozen = new Set<string>();
  return {
    log,
    onTrainBegin(ctx: CallbackContext) {
      const blocks = blocksOf(ctx.model);
      names = blocks.map((b) => b.name);
      if (o.frozen !== undefined) {
        if (!Number.isInteger(o.frozen) || o.frozen < 0 || o.frozen > blocks.length)
          throw new TypeError(`${where}: frozen must be an integer in 0..${blocks.length} (${names.join(', ')}), got ${o.frozen}`);
        frozen = o.frozen;
      } else {
        frozen = 0;
        while (frozen < blocks.length && blocks[frozen].modules.every((m) => m.parameters().every((p) => !p.requiresGrad))) frozen++;
      }
    },
    onEpochBegin(ctx: CallbackContext) {
      const count = Math.min(frozen, Math.floor(ctx.epoch / o.every) * perStep);
      const want = names.slice(frozen - count, frozen).reverse(); // top first
      const fresh = want.filter((b) => !unfrozen.has(b));
      if (!fresh.length) return;
      const inOptimizer = new Set(ctx.optimizer.paramGroups.flatMap((g) => g.params.map((p) => p.id)));
      const missing = blocksOf(ctx.model)
        .filter((b) => fresh.includes(b.name))
        .filter((b) => b.modules.some((m) => m.parameters().some((p) => !inOptimizer.has(p.id))))
        .map((b) => b.name);
      if (missing.length && o.lr === undefined)
        throw new TypeError(
          `${where}: the optimizer does not hold the parameters of ${missing.join(', ')}; build it over every block (frozen ones included) or give lr for a new param group`,
        );
      if (missing.length) unfreezeInto(ctx.model, ctx.optimizer, fresh, { lr: o.lr!, weightDecay: o.weightDecay });
      else unfreeze(ctx.model, { blocks: fresh });
      fresh.forEach((b) => unfrozen.add(b));
      log.push({ epoch: ctx.epoch, blocks: fresh });
    },
  };
}
