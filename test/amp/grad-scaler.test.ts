// GradScaler against PyTorch's semantics. Python 1.13's GradScaler is
// CUDA-only, so the reference is a step-by-step transcription of its source
// (torch/cuda/amp/grad_scaler.py with _amp_update_scale_ and
// _amp_foreach_non_finite_check_and_unscale_ spelled out) run by Debian's
// PyTorch; where a torch 2.x interpreter with CPU kernels is at hand
// (.venv-torch2, as CI builds against), torch.amp.GradScaler('cpu') itself too.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { torch, nn, optim, GradScaler } from 'finetorch';
import { flat } from '../helpers';

// The loss multiplier per iteration: 1e38 overflows the scaled gradients to inf, NaN poisons them.
const multipliers = [1, 1, 1e38, 1, 1, 1, 1, Number.NaN, 1, 1, 1, 1, 1];
const options = { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3 };

const common = `
import json, sys, torch
d = json.load(sys.stdin)
m = torch.nn.Linear(3, 2)
m.load_state_dict({'weight': torch.tensor(d['weight']).reshape(2, 3), 'bias': torch.tensor(d['bias'])})
x = torch.tensor(d['x']).reshape(4, 3)
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
o = d['options']
trace = []
`;

// The reference: GradScaler.scale/step/update as PyTorch's source does them, op by op.
const transcription = `${common}
scale = torch.tensor([float(o['initScale'])]); tracker = torch.tensor([0], dtype=torch.int32)
for mult in d['multipliers']:
    opt.zero_grad()
    loss = (m(x) ** 2).mean() * float(mult)
    (loss * scale).backward()
    inv = scale.double().reciprocal().float()
    found = torch.zeros(1)
    for p in m.parameters():
        if not torch.isfinite(p.grad).all(): found.fill_(1.0)
        p.grad.mul_(inv)
    stepped = found.item() == 0
    if stepped: opt.step()
    # _amp_update_scale_
    if found.item():
        scale.mul_(o['backoffFactor']); tracker.zero_()
    else:
        successful = tracker.item() + 1
        if successful == o['growthInterval']:
            new = scale * o['growthFactor']
            if torch.isfinite(new).all(): scale.copy_(new)
            tracker.zero_()
        else:
            tracker.fill_(successful)
    trace.append({'stepped': stepped, 'scale': scale.item(), 'tracker': tracker.item()})
print(json.dumps({'trace': trace, 'weight': m.weight.reshape(-1).tolist(), 'bias': m.bias.tolist()}))`;

// torch 2.x's own GradScaler on the CPU.
const real = `${common}
import warnings; warnings.simplefilter('ignore')
scaler = torch.amp.GradScaler('cpu', init_scale=o['initScale'], growth_factor=o['growthFactor'], backoff_factor=o['backoffFactor'], growth_interval=o['growthInterval'])
for mult in d['multipliers']:
    opt.zero_grad()
    loss = (m(x) ** 2).mean() * float(mult)
    scaler.scale(loss).backward()
    before = m.weight.detach().clone()
    scaler.step(opt)
    scaler.update()
    sd = scaler.state_dict()
    trace.append({'stepped': not torch.equal(before, m.weight.detach()), 'scale': sd['scale'], 'tracker': sd['_growth_tracker']})
print(json.dumps({'trace': trace, 'weight': m.weight.reshape(-1).tolist(), 'bias': m.bias.tolist()}))`;

const venvTorch2 = join(__dirname, '..', '..', '.venv-torch2', 'bin', 'python');

describe('GradScaler', () => {
  it('scales, skips steps with inf/NaN gradients, backs off and grows the scale as PyTorch does', async () => {
    torch.manualSeed(5);
    const model = new nn.Linear(3, 2);
    const x = torch.randn([4, 3]);
    const [w, b] = model.parameters();
    const input = { weight: flat(w), bias: flat(b), x: flat(x), multipliers: multipliers.map(String), options }; // (JSON has no NaN)
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const scaler = new GradScaler(options);
    const trace: Array<{ stepped: boolean; scale: number; tracker: number }> = [];
    for (const mult of multipliers) {
      optimizer.zeroGrad();
      const loss = model.forward(x).pow(2).mean().mul(mult);
      await scaler.scale(loss).backwardAsync();
      const stepped = await scaler.step(optimizer);
      scaler.update();
      trace.push({ stepped, scale: scaler.getScale(), tracker: scaler.getGrowthTracker() });
    }
    const references = [['transcription of PyTorch 1.13', transcription, '/usr/bin/python3']];
    if (existsSync(venvTorch2)) references.push(['torch 2.x torch.amp.GradScaler("cpu")', real, venvTorch2]);
    for (const [name, script, python] of references) {
      const ref = JSON.parse(execFileSync(python, ['-c', script], { input: JSON.stringify(input), encoding: 'utf8' }));
      expect(trace, name).toEqual(ref.trace);
      const diff = Math.max(...flat(w).map((v, i) => Math.abs(v - ref.weight[i])), ...flat(b).map((v, i) => Math.abs(v - ref.bias[i])));
      expect(diff, name).toBeLessThan(1e-6);
    }
    // the trajectory itself: two skips (inf, NaN) halve the scale; three clean steps in a row double it
    expect(trace.filter((t) => !t.stepped)).toHaveLength(2);
    expect(trace[2]).toEqual({ stepped: false, scale: 2 ** 15, tracker: 0 });
    expect(trace[5]).toEqual({ stepped: true, scale: 2 ** 16, tracker: 0 });
  });

  it('unscale() before clipping gives the plain gradients; misuse is an error naming the call', async () => {
    torch.manualSeed(6);
    const model = new nn.Linear(3, 2);
    const x = torch.randn([4, 3]);
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.1 });
    await model.forward(x).pow(2).mean().backwardAsync();
    const plain = model.parameters().map((p) => flat(p.grad!));
    optimizer.zeroGrad();
    const scaler = new GradScaler({ initScale: 1024 });
    await scaler.scale(model.forward(x).pow(2).mean()).backwardAsync();
    scaler.unscale(optimizer);
    model.parameters().forEach((p, i) => flat(p.grad!).forEach((g, j) => expect(Math.abs(g - plain[i][j])).toBeLessThan(1e-6)));
    expect(() => scaler.unscale(optimizer)).toThrow(/GradScaler.unscale: already called on this optimizer since the last update\(\)/);
    expect(await scaler.step(optimizer)).toBe(true);
    await expect(scaler.step(optimizer)).rejects.toThrow(/GradScaler.step: already called/);
    scaler.update();
    expect(() => scaler.update()).toThrow(/no inf checks were recorded/);
    expect(scaler.getScale()).toBe(1024);
    expect(() => new GradScaler({ growthFactor: 0.5 })).toThrow(/growthFactor must be > 1/);
    expect(() => new GradScaler({ growthInterval: 1.5 })).toThrow(/growthInterval must be a positive integer/);
  });

  it('stateDict and loadStateDict carry the scale and the clean-step count; a disabled scaler passes through', () => {
    const a = new GradScaler({ initScale: 8, growthInterval: 5 });
    const state = { scale: 32, growthFactor: 2, backoffFactor: 0.25, growthInterval: 5, growthTracker: 3 };
    a.loadStateDict(state);
    expect(a.stateDict()).toEqual(state);
    expect(() => a.loadStateDict({ ...state, scale: -1 })).toThrow(/scale must be positive/);
    expect(() => a.loadStateDict({ ...state, growthTracker: 'x' as unknown as number })).toThrow(/growthTracker must be a finite number/);
    const off = new GradScaler({ enabled: false });
    const loss = torch.tensor([2]);
    expect(off.scale(loss)).toBe(loss);
    expect(off.getScale()).toBe(1);
  });
});
