// GradScaler: dynamic loss scaling for float16 training, with PyTorch's
// semantics (torch.amp.GradScaler). The loss is multiplied by the scale
// before backward so small float16 gradients do not flush to zero; unscale()
// divides the gradients back (and notes any inf/NaN), step() skips the
// optimizer step when one was found, update() halves the scale after a skipped
// step and doubles it after `growthInterval` clean steps in a row.
//   const scaler = new GradScaler();
//   await scaler.scale(loss).backwardAsync();
//   scaler.unscale(optimizer); clipGradNorm(params, 1);  // optional
//   await scaler.step(optimizer);
//   scaler.update();
// The scale lives on the host as a float32 number (PyTorch keeps it in a
// one-element float32 tensor); whether to step needs the found-inf flag on
// the host in both.
import { native } from '../native/loader.js';
import type { Optimizer } from '../optim/optimizer.js';
import { Tensor } from '../tensor/tensor.js';

export interface GradScalerOptions {
  /** Default 2 ** 16. */
  initScale?: number;
  /** Default 2. */
  growthFactor?: number;
  /** Default 0.5. */
  backoffFactor?: number;
  /** Clean steps before the scale grows. Default 2000. */
  growthInterval?: number;
  /** false makes every method a pass-through (scale() returns the loss, step() just steps). Default true. */
  enabled?: boolean;
}

/** What stateDict() returns and checkpoints keep (PyTorch's keys, camelCased). */
export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
}

type Stage = 'ready' | 'unscaled' | 'stepped';
interface PerOptimizer {
  stage: Stage;
  foundInf: boolean;
}

const f32 = Math.fround;

function positive(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new TypeError(`GradScaler: ${name} must be a positive finite number, got ${JSON.stringify(v)}`);
  return v;
}

export class GradScaler {
  private scaleValue: number;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private growthTracker = 0;
  private readonly enabled: boolean;
  private perOptimizer = new Map<Optimizer, PerOptimizer>();

  constructor(options: GradScalerOptions = {}) {
    const { initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000, enabled = true } = options;
    this.scaleValue = f32(positive(initScale, 'initScale'));
    this.growthFactor = positive(growthFactor, 'growthFactor');
    this.backoffFactor = positive(backoffFactor, 'backoffFactor');
    if (this.growthFactor <= 1) throw new TypeError(`GradScaler: growthFactor must be > 1, got ${growthFactor}`);
    if (this.backoffFactor >= 1) throw new TypeError(`GradScaler: backoffFactor must be < 1, got ${backoffFactor}`);
    if (!Number.isInteger(growthInterval) || growthInterval < 1)
      throw new TypeError(`GradScaler: growthInterval must be a positive integer, got ${growthInterval}`);
    this.growthInterval = growthInterval;
    if (typeof enabled !== 'boolean') throw new TypeError(`GradScaler: enabled must be a boolean, got ${JSON.stringify(enabled)}`);
    this.enabled = enabled;
  }

  isEnabled(): boolean {
    return this.enabled;
  }
  /** The current scale (1 when disabled). */
  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
  }
  getGrowthTracker(): number {
    return this.growthTracker;
  }

  /** loss * scale, a new tensor (the loss itself when disabled). */
  scale(loss: Tensor): Tensor {
    if (!(loss instanceof Tensor)) throw new TypeError('GradScaler.scale: expected a Tensor');
    if (!this.enabled) return loss;
    return loss.mul(this.scaleValue);
  }

  private stateOf(optimizer: Optimizer): PerOptimizer {
    let s = this.perOptimizer.get(optimizer);
    if (!s) this.perOptimizer.set(optimizer, (s = { stage: 'ready', foundInf: false }));
    return s;
  }

  /**
   * Divides the optimizer's gradients by the scale in place (unscale_), noting
   * whether any is inf or NaN. Call it before clipping gradients; step() calls
   * it when you have not.
   */
  unscale(optimizer: Optimizer): void {
    if (!this.enabled) return;
    const s = this.stateOf(optimizer);
    if (s.stage === 'unscaled') throw new Error('GradScaler.unscale: already called on this optimizer since the last update()');
    if (s.stage === 'stepped') throw new Error('GradScaler.unscale: called after step() (call update() first)');
    const grads: Tensor[] = [];
    for (const g of optimizer.paramGroups)
      for (const p of g.params) {
        const grad = p.grad;
        if (grad) grads.push(grad);
      }
    // PyTorch: inv_scale = scale.double().reciprocal().float()
    s.foundInf = native.ampUnscale(
      grads.map((t) => t.handle),
      f32(1 / this.scaleValue),
    );
    for (const g of grads) g.dispose();
    s.stage = 'unscaled';
  }

  /** Unscales if needed, then steps the optimizer unless a gradient was inf/NaN. Resolves to whether it stepped. */
  async step(optimizer: Optimizer): Promise<boolean> {
    if (!this.enabled) {
      await optimizer.stepAsync();
      return true;
    }
    const s = this.stateOf(optimizer);
    if (s.stage === 'stepped') throw new Error('GradScaler.step: already called on this optimizer since the last update()');
    if (s.stage === 'ready') this.unscale(optimizer);
    s.stage = 'stepped';
    if (s.foundInf) return false;
    await optimizer.stepAsync();
    return true;
  }

  /**
   * Updates the scale from this iteration's checks (_amp_update_scale_): an
   * inf/NaN multiplies it by backoffFactor and restarts the count; otherwise
   * `growthInterval` clean steps in a row multiply it by growthFactor (kept
   * only if finite). `newScale` sets it instead.
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    if (newScale !== undefined) {
      this.scaleValue = f32(positive(newScale, 'update(newScale)'));
    } else {
      const checks = [...this.perOptimizer.values()].filter((s) => s.stage !== 'ready');
      if (!checks.length) throw new Error('GradScaler.update: no inf checks were recorded before update() (call step() or unscale() first)');
      if (checks.some((s) => s.foundInf)) {
        this.scaleValue = f32(this.scaleValue * this.backoffFactor);
        this.growthTracker = 0;
      } else if (this.growthTracker + 1 === this.growthInterval) {
        const grown = f32(this.scaleValue * this.growthFactor);
        if (Number.isFinite(grown)) this.scaleValue = grown;
        this.growthTracker = 0;
      } else {
        this.growthTracker++;
      }
    }
    this.perOptimizer = new Map();
  }

  stateDict(): GradScalerState {
    return {
      scale: this.getScale(),
      growthFactor: this.growthFactor,
      backoffFactor: this.backoffFactor,
      growthInterval: this.growthInterval,
      growthTracker: this.growthTracker,
    };
  }

  loadStateDict(state: GradScalerState, where = 'GradScaler.loadStateDict'): void {
    if (!state || typeof state !== 'object') throw new TypeError(`${where}: expected {scale, growthFactor, backoffFactor, growthInterval, growthTracker}`);
    const num = (k: keyof GradScalerState) => {
      const v = state[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${where}: ${k} must be a finite number, got ${JSON.stringify(v)}`);
      return v;
    };
    const scale = num('scale');
    const growthInterval = num('growthInterval');
    const growthTracker = num('growthTracker');
    if (scale <= 0) throw new TypeError(`${where}: scale must be positive, got ${scale}`);
    if (!Number.isInteger(growthInterval) || growthInterval < 1)
      throw new TypeError(`${where}: growthInterval must be a positive integer, got ${growthInterval}`);
    if (!Number.isInteger(growthTracker) || growthTracker < 0)
      throw new TypeError(`${where}: growthTracker must be a non-negative integer, got ${growthTracker}`);
    const growthFactor = num('growthFactor');
    const backoffFactor = num('backoffFactor');
    if (growthFactor <= 1 || backoffFactor <= 0 || backoffFactor >= 1)
      throw new TypeError(`${where}: growthFactor must be > 1 and backoffFactor in (0, 1), got ${growthFactor} and ${backoffFactor}`);
    Object.assign(this, { scaleValue: f32(scale), growthFactor, backoffFactor, growthInterval, growthTracker });
  }
}
